"""`collector prepare`: LongBench-shaped, plain and chat rows from JSONL, CSV, Parquet or a datasets folder,
rendered by a template, counted by the experiment's tokenizer (built here), filtered into buckets, written with
their provenance; every bad input is one line naming the file, row or field, and nothing is half-written.

Expected counts come from the built tokenizer's hand-countable rule (tests/tokenizer_builder.py), not from the
collector's counting code."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import duckdb
import pytest

from collector.config import load_config
from collector.errors import ConfigError
from collector.prepare.build import ensure_prepared, plan, provenance_path, why_prepare
from collector.prepare.sources import hf_rows, parse_hf
from collector.prepare.spec import QA_INSTRUCTION
from collector.prepare.templates import llama2, llama3, mistral
from collector.tokens import experiment_counters
from tests.conftest import REPO, config_dict, run_cli, sim_experiment, write_config
from tests.tokenizer_builder import build_tokenizer_folder, hand_count, hand_count_chat

MODEL = "example-org/model-not-in-any-cache"
WORD = "river"  # two tokens of the built tokenizer


def longbench_rows() -> list[dict[str, Any]]:
    """Rows in LongBench's shape with contexts of 5, 10, ... 100 words; every fourth one in Chinese."""
    rows = []
    for i in range(20):
        rows.append(
            {
                "input": f"question {i} about the river?",
                "context": " ".join([WORD] * (5 * (i + 1))),
                "answers": [f"answer {i}"],
                "length": 5 * (i + 1),
                "dataset": "fixture",
                "language": "zh" if i % 4 == 3 else "en",
                "_id": f"id-{i}",
            }
        )
    return rows


def qa_text(row: dict[str, Any]) -> str:
    return QA_INSTRUCTION.replace("{context}", row["context"]).replace("{input}", row["input"])


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tok(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tokenizer_folder(tmp_path_factory.mktemp("tok") / "tiny").resolve()


def prepared_config(work: Path, tok: Path, buckets: list[dict[str, Any]], api_style: str = "chat", **exp: Any) -> Path:
    experiment = sim_experiment("own", model_id=MODEL, tokenizer=str(tok), payloads=[b["name"] for b in buckets], **exp)
    experiment["endpoint"]["api_style"] = api_style
    cfg = config_dict([experiment], payloads=buckets)
    cfg["report"]["dataset_of_interest"] = buckets[0]["name"]
    return write_config(work / "prepare.yml", cfg)


def bucket(name: str, source: str | list[str], **prepare: Any) -> dict[str, Any]:
    return {"name": name, "file": f"prepared/{name}.jsonl", "prepare": {"source": source, **prepare}}


def prepare(path: Path, force: bool = True) -> dict[str, dict[str, Any]]:
    config = load_config(path)
    return ensure_prepared(config, experiment_counters(config, path), force=force)


def read_prepared(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_longbench_rows_fill_buckets_by_rendered_chat_length_and_language_with_the_experiments_tokenizer(
    tmp_path: Path, tok: Path
) -> None:
    rows = longbench_rows()
    write_jsonl(tmp_path / "longbench.jsonl", rows)
    lengths = {r["_id"]: hand_count_chat([{"role": "user", "content": qa_text(r)}]) for r in rows}
    low, high = sorted(lengths.values())[5], sorted(lengths.values())[15]
    path = prepared_config(
        tmp_path,
        tok,
        [bucket("en_mid", "longbench.jsonl", template="chat", language="en", min_tokens=low, max_tokens=high)],
    )
    provenance = prepare(path)["en_mid"]
    written = read_prepared(tmp_path / "prepared" / "en_mid.jsonl")
    expected = [r for r in rows if r["language"] == "en" and low <= lengths[r["_id"]] < high]
    assert len(written) == len(expected) > 3
    for row, src in zip(written, expected, strict=True):
        # Chat endpoints get messages (the server applies the template); the count is through that template.
        assert row["messages"] == [{"role": "user", "content": qa_text(src)}]
        assert row["ground_truth"] == src["answers"] and row["question"] == src["input"]
        assert row["source"].endswith(f"longbench.jsonl:{rows.index(src) + 1}")
    counts = [lengths[r["_id"]] for r in expected]
    assert provenance["prompt_tokens"] == {
        "min": min(counts),
        "mean": round(sum(counts) / len(counts), 1),
        "max": max(counts),
    }
    assert provenance["rows_read"] == 20 and provenance["rows_in_language"] == 15
    assert provenance["rows_kept"] == len(expected)
    assert provenance["settings"]["tokenizer"] == f"transformers:{tok}"
    assert provenance["settings"]["template"] == "chat" and provenance["instruction"] == QA_INSTRUCTION
    on_disk = json.loads(provenance_path(tmp_path / "prepared" / "en_mid.jsonl").read_text())
    assert on_disk == provenance


def test_named_template_writes_text_counted_with_the_bos_the_server_adds(tmp_path: Path, tok: Path) -> None:
    rows = [{"text": f"tell me about the {' '.join(['river'] * n)}"} for n in (1, 10, 40)]
    write_jsonl(tmp_path / "plain.jsonl", rows)
    path = prepared_config(
        tmp_path, tok, [bucket("b", "plain.jsonl", template="llama3", max_tokens=40)], api_style="completions"
    )
    provenance = prepare(path)["b"]
    written = read_prepared(tmp_path / "prepared" / "b.jsonl")
    texts = [llama3([{"role": "user", "content": r["text"]}]) for r in rows]
    assert [w["inputs"] for w in written] == [t for t in texts if 1 + hand_count(t) < 40]
    assert len(written) == 2 and not written[0]["inputs"].startswith("<|begin_of_text|>")
    assert provenance["prompt_tokens"]["max"] == 1 + hand_count(texts[1])  # the tokenizer's <s>, then the text


def test_chat_template_to_a_text_endpoint_is_rendered_text_without_the_bos(tmp_path: Path, tok: Path) -> None:
    write_jsonl(
        tmp_path / "chat.jsonl",
        [{"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "why the river"}]}],
    )
    path = prepared_config(tmp_path, tok, [bucket("c", "chat.jsonl", template="chat")], api_style="completions")
    prepare(path)
    assert read_prepared(tmp_path / "prepared" / "c.jsonl")[0]["inputs"] == (
        "<|system|>be brief<|end|><|user|>why the river<|end|><|assistant|>"
    )


def test_model_family_templates_render_their_documented_formats() -> None:
    messages = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "U1"},
        {"role": "assistant", "content": "A1"},
        {"role": "user", "content": "U2"},
    ]
    assert llama3(messages[1:2]) == (
        "<|start_header_id|>user<|end_header_id|>\n\nU1<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    assert llama2(messages) == "[INST] <<SYS>>\nS\n<</SYS>>\n\nU1 [/INST] A1 </s><s>[INST] U2 [/INST]"
    assert mistral(messages) == "[INST] S\n\nU1 [/INST]A1</s>[INST] U2 [/INST]"


def test_csv_parquet_and_a_datasets_folder_give_the_same_bucket_as_jsonl(tmp_path: Path, tok: Path) -> None:
    rows = [{k: v for k, v in r.items() if k in ("input", "context", "language")} for r in longbench_rows()]
    write_jsonl(tmp_path / "d.jsonl", rows)
    with (tmp_path / "d.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["input", "context", "language"])
        writer.writeheader()
        writer.writerows(rows)
    duckdb.execute(
        f"copy (select * from read_json('{tmp_path / 'd.jsonl'}')) to '{tmp_path / 'd.parquet'}' (format parquet)"
    )
    folder = tmp_path / "hf_folder"
    folder.mkdir()
    write_jsonl(folder / "test.jsonl", rows)
    outputs = []
    for source in ("d.jsonl", "d.csv", "d.parquet"):
        path = prepared_config(tmp_path, tok, [bucket("x", source, language="en", count=8, seed=5)])
        prepare(path)
        outputs.append(
            [{k: v for k, v in r.items() if k != "source"} for r in read_prepared(tmp_path / "prepared" / "x.jsonl")]
        )
    from_folder = [r.fields for r in hf_rows(str(folder), None, "test")]  # datasets.load_dataset, no hub
    assert from_folder == rows
    assert outputs[0] == outputs[1] == outputs[2] and len(outputs[0]) == 8


def test_sampling_is_seeded_and_keeps_source_order(tmp_path: Path, tok: Path) -> None:
    write_jsonl(tmp_path / "d.jsonl", longbench_rows())
    kept = []
    for seed in (1, 1, 2):
        prepare(prepared_config(tmp_path, tok, [bucket("x", "d.jsonl", count=5, seed=seed)]))
        kept.append([r["source"] for r in read_prepared(tmp_path / "prepared" / "x.jsonl")])
    assert kept[0] == kept[1] != kept[2]
    assert all(k == sorted(k, key=lambda s: int(s.rsplit(":", 1)[1])) for k in kept)


def test_cli_prepares_every_bucket_and_prints_its_token_statistics(tmp_path: Path, tok: Path) -> None:
    write_jsonl(tmp_path / "d.jsonl", longbench_rows())
    path = prepared_config(
        tmp_path,
        tok,
        [bucket("short", "d.jsonl", max_tokens=120), bucket("long", "d.jsonl", min_tokens=120, count=500)],
    )
    proc = run_cli("prepare", "--config", str(path))
    assert proc.returncode == 0, proc.stderr
    prepared, sent = proc.stdout.split("\n\n")
    lines = prepared.splitlines()
    assert lines[0].split()[:7] == ["bucket", "rows", "read", "kept", "asked", "tokens", "min"]
    by_name = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(by_name) == {"short", "long"}
    for name in ("short", "long"):
        recorded = json.loads(provenance_path(tmp_path / "prepared" / f"{name}.jsonl").read_text())
        tokens = recorded["prompt_tokens"]
        assert by_name[name][4:7] == [f"{tokens['min']:,}", f"{tokens['mean']:,.1f}", f"{tokens['max']:,}"]
    assert by_name["long"][3] == "500" and int(by_name["long"][2]) < 500  # fewer rows passed than count asked
    assert by_name["short"][3] == "all"
    assert "preparing" in proc.stderr and "(asked for)" in proc.stderr
    # Then every bucket as each experiment counts it: the same prompts, so the same figures here.
    sent_rows = {line.split()[1]: line.split() for line in sent.splitlines()[1:]}
    assert sent_rows["short"][3:6] == by_name["short"][4:7] and sent_rows["long"][3:6] == by_name["long"][4:7]


def test_run_prepares_a_missing_file_keeps_an_up_to_date_one_and_redoes_a_stale_one(tmp_path: Path, tok: Path) -> None:
    write_jsonl(tmp_path / "d.jsonl", longbench_rows())
    path = prepared_config(tmp_path, tok, [bucket("x", "d.jsonl", max_tokens=80)])
    config = load_config(path)
    (p,) = plan(config, experiment_counters(config, path))
    assert why_prepare(p) == "missing"
    prepare(path, force=False)
    assert why_prepare(p) is None
    stamp = p.file.stat().st_mtime_ns
    prepare(path, force=False)
    assert p.file.stat().st_mtime_ns == stamp  # up to date: not rewritten
    with p.file.open("a") as fh:
        fh.write('{"inputs": "edited by hand"}\n')
    assert why_prepare(p) == "changed since it was prepared"
    write_jsonl(tmp_path / "d.jsonl", longbench_rows()[:10])
    assert why_prepare(p) == "prepared from other settings, sources or tokenizer"
    prepare(path, force=False)
    assert why_prepare(p) is None
    # Redone from the new source: its rows under 80 tokens as rendered (62 and 72: the first two), counted by hand.
    kept = [r for r in longbench_rows()[:10] if hand_count_chat([{"role": "user", "content": qa_text(r)}]) < 80]
    assert (
        [row["question"] for row in read_prepared(p.file)]
        == [r["input"] for r in kept]
        == [
            "question 0 about the river?",
            "question 1 about the river?",
        ]
    )


# --- bad input: one line naming the file, row or field; nothing half-written ---------------------------------


def _error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        prepare(path)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_a_dataset_file_that_does_not_exist_fails_at_load_naming_the_source(tmp_path: Path, tok: Path) -> None:
    path = prepared_config(tmp_path, tok, [bucket("x", ["d.jsonl", "missing.parquet"])])
    write_jsonl(tmp_path / "d.jsonl", longbench_rows())
    with pytest.raises(
        ConfigError, match=r"payloads\[0\]\.prepare\.source\[1\]: dataset file not found: .*missing\.parquet"
    ):
        load_config(path)


def test_a_template_field_missing_from_a_row_names_the_row_and_field(tmp_path: Path, tok: Path) -> None:
    write_jsonl(tmp_path / "d.jsonl", [{"input": "a", "context": "b"}, {"input": "c"}])
    path = prepared_config(tmp_path, tok, [bucket("x", "d.jsonl")])
    assert _error(path).endswith("d.jsonl:2: the instruction's {context} is not a field of the row (fields: input)")


def test_a_bucket_left_empty_by_its_filters_is_an_error_with_the_lengths_seen(tmp_path: Path, tok: Path) -> None:
    write_jsonl(tmp_path / "d.jsonl", longbench_rows())
    path = prepared_config(tmp_path, tok, [bucket("x", "d.jsonl", language="en", min_tokens=5000)])
    message = _error(path)
    # The lengths seen are those of the 15 English rows as rendered through the chat template, counted by hand.
    english = [r for r in longbench_rows() if r["language"] == "en"]
    seen = [hand_count_chat([{"role": "user", "content": qa_text(r)}]) for r in english]
    assert (min(seen), max(seen)) == (62, 243)
    assert message == (
        f"payloads[0] (x): no row of {tmp_path / 'd.jsonl'} in language en has a rendered prompt of [5,000, ∞) "
        f"tokens with transformers:{tok} (20 rows read, rendered lengths {min(seen)} to {max(seen)}): the bucket "
        "would be empty"
    )
    assert not (tmp_path / "prepared" / "x.jsonl").exists()


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [
        ("d.jsonl", b'{"input": "a", "context": "b"}\n{"input": "\xff"}\n', r"d\.jsonl:2: not UTF-8 text"),
        ("d.jsonl", b'{"input": "a", "context": "b"}\n{"input": \n', r"d\.jsonl:2: not JSON"),
        ("d.jsonl", b'{"input": "a", "context": "b"}\n[1]\n', r"d\.jsonl:2: a row must be a JSON object"),
        ("d.csv", b'input,context\na,b\nc,"d\xfe"\n', r"d\.csv:3: not UTF-8 text"),
        ("d.csv", b"input,context\na,b\nc,d,e\n", r"d\.csv:3: more fields than the header names"),
        ("d.parquet", b"PAR1 not really", r"d\.parquet: cannot read Parquet"),
        ("d.txt", b"hello\n", r"d\.txt: unknown dataset format \.txt"),
    ],
)
def test_a_malformed_or_non_utf8_row_names_its_file_and_row(
    tmp_path: Path, tok: Path, name: str, content: bytes, why: str
) -> None:
    (tmp_path / name).write_bytes(content)
    path = prepared_config(tmp_path, tok, [bucket("x", name)])
    assert __import__("re").search(why, _error(path))


def test_a_failed_prepare_leaves_the_previous_file_and_no_temporary(tmp_path: Path, tok: Path) -> None:
    write_jsonl(tmp_path / "d.jsonl", longbench_rows())
    path = prepared_config(tmp_path, tok, [bucket("x", "d.jsonl")])
    prepare(path)
    before = (tmp_path / "prepared" / "x.jsonl").read_bytes()
    write_jsonl(tmp_path / "d.jsonl", [*longbench_rows(), {"input": "no context"}])
    _error(path)
    assert (tmp_path / "prepared" / "x.jsonl").read_bytes() == before
    assert sorted(os.listdir(tmp_path / "prepared")) == ["x.jsonl", "x.jsonl.provenance.json"]


def test_experiments_that_count_a_bucket_differently_must_name_its_tokenizer(tmp_path: Path, tok: Path) -> None:
    write_jsonl(tmp_path / "d.jsonl", longbench_rows())
    cfg = config_dict(
        [
            sim_experiment("own", model_id=MODEL, tokenizer=str(tok), payloads=["x"]),
            sim_experiment("fallback", model_id=MODEL, payloads=["x"]),
        ],
        payloads=[bucket("x", "d.jsonl")],
    )
    cfg["report"]["dataset_of_interest"] = "x"
    path = write_config(tmp_path / "two.yml", cfg)
    assert "its experiments count tokens differently" in _error(path)
    cfg["payloads"][0]["prepare"]["tokenizer"] = str(tok)
    prepare(write_config(path, cfg))  # the bucket's own tokenizer settles it
    cfg["payloads"][0]["prepare"]["tokenizer"] = str(tmp_path / "no-such-folder")
    with pytest.raises(ConfigError, match=r"payloads\[0\]\.prepare\.tokenizer: tokenizer folder not found"):
        load_config(write_config(path, cfg))


def test_a_text_template_for_a_chat_endpoint_is_refused(tmp_path: Path, tok: Path) -> None:
    write_jsonl(tmp_path / "d.jsonl", longbench_rows())
    path = prepared_config(tmp_path, tok, [bucket("x", "d.jsonl", template="llama3")], api_style="chat")
    assert "template llama3 writes text prompts, but own send chat messages" in _error(path)


def test_hub_sources_are_parsed_and_a_missing_split_is_one_line(tmp_path: Path) -> None:
    assert parse_hf("hf:THUDM/LongBench/2wikimqa_e/test") == ("THUDM/LongBench", "2wikimqa_e", "test")
    assert parse_hf("hf:org/name/train") == ("org/name", None, "train")
    with pytest.raises(ConfigError, match="hf:org/name/split or hf:org/name/subset/split"):
        parse_hf("hf:just-a-name")
    folder = tmp_path / "ds"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", [{"text": "a"}])
    with pytest.raises(ConfigError, match=r"cannot read the dataset: .*split") as info:
        list(hf_rows(str(folder), None, "no_such_split"))
    assert "\n" not in str(info.value)


def test_the_reference_configs_buckets_prepare_from_longbench_rows_into_their_ranges(tmp_path: Path, tok: Path) -> None:
    """configs/llama3-1-8b-g5-ec2.yml with its hub sources and gated tokenizer swapped for local stand-ins."""
    rows = [{**r, "context": " ".join([WORD] * (20 * (i + 1)))} for i, r in enumerate(longbench_rows() * 3)]
    write_jsonl(tmp_path / "longbench.jsonl", rows)
    config = load_config(REPO / "configs" / "llama3-1-8b-g5-ec2.yml")
    buckets = [
        b.model_copy(
            update={
                "file": tmp_path / b.file.name,
                "prepare": b.prepare.model_copy(update={"source": [str(tmp_path / "longbench.jsonl")]}),
            }
        )
        for b in config.payloads
        if b.file is not None and b.prepare is not None
    ]
    exps = [e.model_copy(update={"tokenizer": str(tok)}) for e in config.experiments]
    config = config.model_copy(update={"payloads": buckets, "experiments": exps})
    provenance = ensure_prepared(config, experiment_counters(config, tmp_path / "x.yml"))
    for b in buckets:
        stats = provenance[b.name]["prompt_tokens"]
        assert b.prepare.min_tokens <= stats["min"] and stats["max"] < b.prepare.max_tokens
        for row in read_prepared(b.file):
            assert row["inputs"].startswith("<|start_header_id|>user<|end_header_id|>\n\nYou are an assistant")
            assert b.prepare.min_tokens <= 1 + hand_count(row["inputs"]) < b.prepare.max_tokens


def test_a_full_disk_fails_prepare_in_one_line_and_leaves_the_previous_file(tmp_path: Path, tok: Path) -> None:
    from tests.collector.faults import fill, tmpfs

    write_jsonl(tmp_path / "d.jsonl", longbench_rows())
    with tmpfs(tmp_path / "disk", 1) as disk:
        cfg_path = prepared_config(tmp_path, tok, [{**bucket("x", "d.jsonl"), "file": str(disk / "x.jsonl")}])
        prepare(cfg_path)
        before = (disk / "x.jsonl").read_bytes()
        fill(disk)
        proc = run_cli("prepare", "--config", str(cfg_path))
        assert proc.returncode != 0
        (line,) = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
        assert "payloads[0] (x): cannot write" in line and "No space left on device" in line
        assert (disk / "x.jsonl").read_bytes() == before
        assert sorted(os.listdir(disk)) == ["filler", "x.jsonl", "x.jsonl.provenance.json"]


def test_a_killed_prepares_temporary_is_removed_by_the_next_one(tmp_path: Path, tok: Path) -> None:
    import subprocess
    import sys

    write_jsonl(tmp_path / "d.jsonl", longbench_rows())
    path = prepared_config(tmp_path, tok, [bucket("x", "d.jsonl")])
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / "prepared").mkdir()
    orphan = tmp_path / "prepared" / f".x.jsonl.{dead.stdout.strip()}.tmp"
    orphan.write_text("half a file")
    other = tmp_path / "prepared" / f".x.jsonl.{os.getppid()}.tmp"  # a running process's: maybe still writing
    other.write_text("in progress")
    prepare(path)
    assert not orphan.exists() and other.read_text() == "in progress"
    other.unlink()
    assert sorted(os.listdir(tmp_path / "prepared")) == ["x.jsonl", "x.jsonl.provenance.json"]
