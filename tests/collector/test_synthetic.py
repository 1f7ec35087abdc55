"""Synthetic prompts hold the exact lengths as sent with a real (byte-level BPE) tokenizer, record any drift, share
a prefix, follow a real bucket's lengths, and carry per-prompt output limits that a server honours."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.apis import openai
from collector.config import InferenceParameters, SyntheticPayload, load_config
from collector.errors import ConfigError
from collector.loadgen import Target
from collector.payloads import Prompt, load_all, read_jsonl
from collector.runner import collect
from collector.synthetic import generate
from collector.tokens import DEFAULT_COUNTER, TransformersTokenCounter, count_prompt, load_tokenizer
from tests.conftest import config_dict, config_error, sim_experiment, write_config
from tests.tokenizer_builder import build_bpe_tokenizer_folder, build_tokenizer_folder

STYLES = ("chat", "completions")


@pytest.fixture(scope="module")
def bpe(tmp_path_factory: pytest.TempPathFactory) -> TransformersTokenCounter:
    return load_tokenizer(str(build_bpe_tokenizer_folder(tmp_path_factory.mktemp("bpe"))))


def _template(counter: TransformersTokenCounter, style: str) -> int:
    return count_prompt(counter, "", None, style)


def _recounts(prompts: list[Any], counter: TransformersTokenCounter, style: str) -> list[int]:
    """Each prompt counted again, as it is sent, independently of the generator."""
    return [count_prompt(counter, p.text, p.messages, style) for p in prompts]


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize(
    "spec",
    [
        {"distribution": "fixed", "tokens": 64},
        {"min_tokens": 30, "max_tokens": 300},
        {"distribution": "normal", "mean_tokens": 120, "stddev_tokens": 40, "min_tokens": 30, "max_tokens": 400},
    ],
    ids=["fixed", "uniform", "normal"],
)
def test_token_id_prompts_have_their_target_length_as_sent(
    bpe: TransformersTokenCounter, style: str, spec: dict[str, Any]
) -> None:
    synthetic = SyntheticPayload(**spec, count=40, seed=5)
    prompts, prov = generate(synthetic, bpe, style)
    counts = _recounts(prompts, bpe, style)
    assert counts == [p.client_tokens for p in prompts]
    assert prov["generator"] == "token-ids" and prov["vocabulary"]["plain_words"] is True
    assert prov["drift"] == {"prompts_off_target": 0, "mean_abs_tokens": 0.0, "max_abs_tokens": 0, "off_target": []}
    assert prov["measured_tokens"] == prov["target_tokens"]
    if spec.get("distribution") == "fixed":
        assert set(counts) == {64}
    else:
        assert min(counts) >= 30 and max(counts) < spec["max_tokens"]
    if spec.get("distribution") == "normal":
        assert 100 < sum(counts) / len(counts) < 140
        assert len(set(counts)) > 10  # a spread, not one length


@settings(max_examples=8, deadline=None)
@given(
    style=st.sampled_from(STYLES),
    tokens=st.integers(min_value=1, max_value=200),
    prefix=st.integers(min_value=0, max_value=40),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_every_prompt_is_on_target_or_its_drift_is_recorded(
    bpe: TransformersTokenCounter, style: str, tokens: int, prefix: int, seed: int
) -> None:
    prefix = min(prefix, tokens)
    prompts, prov = generate(
        SyntheticPayload(distribution="fixed", tokens=tokens, prefix_tokens=prefix, count=6, seed=seed), bpe, style
    )
    counts = _recounts(prompts, bpe, style)
    off = {o["index"]: o for o in prov["drift"]["off_target"]}
    for i, count in enumerate(counts):
        if i in off:
            assert (off[i]["target"], off[i]["measured"]) == (tokens, count) != (tokens, tokens)
        else:
            assert count == tokens
    assert prov["drift"]["max_abs_tokens"] == max(abs(c - tokens) for c in counts)
    if tokens >= _template(bpe, style) + prefix:
        assert not off  # reachable targets are hit exactly


def test_a_target_below_the_chat_template_is_the_template_alone_with_the_drift_recorded(
    bpe: TransformersTokenCounter,
) -> None:
    template = _template(bpe, "chat")
    prompts, prov = generate(SyntheticPayload(distribution="fixed", tokens=3, count=4), bpe, "chat")
    assert [p.text for p in prompts] == [""] * 4
    assert [p.client_tokens for p in prompts] == [template] * 4
    assert prov["template_tokens"] == template
    assert prov["drift"]["prompts_off_target"] == 4
    assert prov["drift"]["max_abs_tokens"] == prov["drift"]["mean_abs_tokens"] == template - 3


def test_a_word_level_vocabulary_falls_back_to_all_ids_and_records_its_drift(tmp_path: Path) -> None:
    counter = load_tokenizer(str(build_tokenizer_folder(tmp_path / "wl")))
    spec = SyntheticPayload(min_tokens=10, max_tokens=80, count=30, seed=1)
    prompts, prov = generate(spec, counter, "completions")
    assert prov["vocabulary"]["plain_words"] is False
    counts = _recounts(prompts, counter, "completions")
    assert counts == [p.client_tokens for p in prompts]
    listed = {o["index"]: o["measured"] for o in prov["drift"]["off_target"]}
    assert all(counts[i] == measured for i, measured in listed.items())
    assert prov["drift"]["prompts_off_target"] == len(listed)
    assert prov["measured_tokens"]["min"] == min(counts) and prov["measured_tokens"]["max"] == max(counts)


@pytest.mark.parametrize("style", STYLES)
def test_same_seed_same_prompts_other_seed_other_prompts(bpe: TransformersTokenCounter, style: str) -> None:
    def texts(seed: int) -> list[str | None]:
        spec = SyntheticPayload(min_tokens=20, max_tokens=90, count=8, seed=seed, prefix_tokens=10)
        return [p.text for p in generate(spec, bpe, style)[0]]

    assert texts(3) == texts(3) != texts(4)


@pytest.mark.parametrize("style", STYLES)
def test_shared_prefix_is_identical_across_prompts_and_counted_in_their_length(
    bpe: TransformersTokenCounter, style: str
) -> None:
    spec = SyntheticPayload(distribution="fixed", tokens=80, prefix_tokens=32, count=12, seed=9)
    prompts, prov = generate(spec, bpe, style)
    assert prov["prefix_tokens"] == 32
    ids = [bpe.tokenizer.encode(p.text, add_special_tokens=False) for p in prompts]
    assert len({tuple(i[:32]) for i in ids}) == 1  # the same 32 tokens open every prompt
    assert len({tuple(i[32:]) for i in ids}) == 12  # and the rest differs
    prefix_text = bpe.tokenizer.decode(ids[0][:32])
    assert all(p.text.startswith(prefix_text) for p in prompts)
    assert _recounts(prompts, bpe, style) == [80] * 12


def test_words_prompts_with_a_prefix_are_exact_for_the_built_in_counter() -> None:
    spec = SyntheticPayload(min_tokens=40, max_tokens=90, prefix_tokens=25, count=10, seed=2)
    prompts, prov = generate(spec, DEFAULT_COUNTER, "chat")
    assert prov["generator"] == "words" and prov["drift"]["prompts_off_target"] == 0
    words = [p.text.split() for p in prompts if p.text]
    assert len({tuple(w[:20]) for w in words}) == 1
    assert all(40 <= DEFAULT_COUNTER.count(p.text or "") < 90 for p in prompts)


def test_lengths_of_reproduces_the_given_lengths_distribution(bpe: TransformersTokenCounter) -> None:
    given_lengths = [40] * 10 + [75] * 30 + [130] * 60
    spec = SyntheticPayload(distribution="lengths_of", lengths_of="real", count=400, seed=11)
    prompts, prov = generate(spec, bpe, "completions", given_lengths)
    shares = Counter(p.client_tokens for p in prompts)
    assert set(shares) == {40, 75, 130}
    assert abs(shares[40] / 400 - 0.1) < 0.05
    assert abs(shares[75] / 400 - 0.3) < 0.07
    assert abs(shares[130] / 400 - 0.6) < 0.07
    assert prov["drift"]["prompts_off_target"] == 0


def test_lengths_of_a_file_bucket_through_the_config(tmp_path: Path) -> None:
    rows = [{"prompt": " ".join(["word"] * n)} for n in (5, 5, 5, 17, 17, 90)]
    (tmp_path / "real.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    cfg = config_dict([sim_experiment(payloads=["like_real"])])
    cfg["payloads"] = [
        {"name": "real", "file": "real.jsonl"},
        {"name": "like_real", "synthetic": {"distribution": "lengths_of", "lengths_of": "real", "count": 60}},
    ]
    cfg["report"]["dataset_of_interest"] = "like_real"
    buckets = load_all(load_config(write_config(tmp_path / "c.yml", cfg)))
    assert {p.client_tokens for p in buckets["like_real"]} == {5, 17, 90}


def test_output_tokens_draw_a_max_tokens_per_prompt(bpe: TransformersTokenCounter) -> None:
    spec = SyntheticPayload(
        distribution="fixed", tokens=50, count=30, output_tokens={"min_tokens": 5, "max_tokens": 60}
    )
    prompts, prov = generate(spec, bpe, "chat")
    outputs = [p.max_tokens for p in prompts]
    assert all(o is not None and 5 <= o < 60 for o in outputs)
    assert len(set(outputs)) > 5
    assert prov["output_tokens"]["min"] == min(outputs)  # type: ignore[type-var]
    # The prompts are the same with or without output lengths: those draw from their own stream.
    plain = generate(spec.model_copy(update={"output_tokens": None}), bpe, "chat")[0]
    assert [p.text for p in plain] == [p.text for p in prompts] and {p.max_tokens for p in plain} == {None}


def test_jsonl_rows_may_carry_their_own_max_tokens(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "one two", "max_tokens": 7}\n{"prompt": "three"}\n')
    assert [p.max_tokens for p in read_jsonl(path)] == [7, None]


@pytest.mark.parametrize("value", ["0", "-3", "true", '"7"', "2.5"])
def test_a_bad_max_tokens_in_a_jsonl_row_names_file_and_line(tmp_path: Path, value: str) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "fine"}\n{"prompt": "x", "max_tokens": ' + value + "}\n")
    with pytest.raises(ConfigError, match=r"p\.jsonl:2: bad payload row: 'max_tokens' must be an integer") as info:
        read_jsonl(path)
    assert "\n" not in str(info.value)


def _sql(results: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(results / "tokenbench.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_per_prompt_max_tokens_and_min_tokens_are_honoured_by_the_simulator(tmp_path: Path) -> None:
    out = {"min_tokens": 3, "max_tokens": 30}
    cfg = config_dict(
        [
            # ignore_eos: every reply is exactly its prompt's own max_tokens
            sim_experiment(
                name="eos",
                payloads=["out"],
                concurrency_levels=[4],
                requests_per_level=12,
                warmup_requests_per_level=0,
                inference_parameters={"max_tokens": 40, "ignore_eos": True},
                endpoint={"type": "simulated", "speedup": 100, "mean_output_tokens": 2},
            ),
            # min_tokens: replies that would end after ~2 tokens go on to 20, or to a prompt's lower limit (capped)
            sim_experiment(
                name="min",
                payloads=["short", "out"],
                concurrency_levels=[4],
                requests_per_level=12,
                warmup_requests_per_level=0,
                inference_parameters={"max_tokens": 40, "min_tokens": 20},
                endpoint={"type": "simulated", "speedup": 100, "mean_output_tokens": 2},
            ),
        ]
    )
    cfg["payloads"].append({"name": "out", "synthetic": {"min_tokens": 10, "max_tokens": 40, "output_tokens": out}})
    outcome = collect(write_config(tmp_path / "c.yml", cfg), tmp_path / "results")
    assert outcome.status == "completed"
    drawn = generate(SyntheticPayload.model_validate(cfg["payloads"][-1]["synthetic"]), DEFAULT_COUNTER, "chat")[0]
    rows = _sql(
        tmp_path / "results",
        "select experiment_name, payload_file, prompt_index, max_tokens, server_completion_tokens, status "
        "from raw.requests",
    )
    assert {r[5] for r in rows} == {"success"}
    for name, bucket, index, max_tokens, completion, _ in rows:
        if bucket == "out":
            assert max_tokens == drawn[index].max_tokens
        if name == "eos":
            assert completion == max_tokens
        elif bucket == "short":
            assert (max_tokens, completion) == (40, 20)
        else:
            assert completion == min(20, max_tokens)
    assert len({r[3] for r in rows if r[1] == "out"}) > 3


def _config_error(tmp_path: Path, synthetic: dict[str, Any] | None = None, **params: Any) -> str:
    cfg = config_dict([sim_experiment(inference_parameters={"max_tokens": 40, **params})])
    if synthetic is not None:
        cfg["payloads"][0]["synthetic"] = synthetic
    return config_error(tmp_path, cfg=cfg).removeprefix(f"{tmp_path / 'bad.yml'}: ")


@pytest.mark.parametrize(
    ("synthetic", "expected"),
    [
        ({"distribution": "fixed"}, "payloads[0].synthetic: tokens is required with distribution: fixed"),
        (
            {"distribution": "fixed", "tokens": 50, "max_tokens": 60},
            "payloads[0].synthetic: max_tokens is not used by distribution: fixed (it takes tokens)",
        ),
        (
            {"distribution": "normal", "mean_tokens": 50},
            "payloads[0].synthetic: stddev_tokens is required with distribution: normal",
        ),
        ({"min_tokens": 10}, "payloads[0].synthetic: max_tokens is required with distribution: uniform"),
        (
            {"distribution": "fixed", "tokens": 50, "prefix_tokens": 51},
            "payloads[0].synthetic: prefix_tokens (51) is longer than the shortest prompt (50 tokens)",
        ),
        (
            {"min_tokens": 20, "max_tokens": 60, "prefix_tokens": 30},
            "payloads[0].synthetic: prefix_tokens (30) is longer than the shortest prompt (20 tokens)",
        ),
        (
            {"distribution": "lengths_of", "lengths_of": "nope"},
            "payloads[0].synthetic.lengths_of: unknown bucket 'nope' (known: short, en_500-1000)",
        ),
        (
            {"distribution": "lengths_of", "lengths_of": "en_500-1000"},
            "payloads[0].synthetic.lengths_of: bucket 'en_500-1000' is not a file bucket",
        ),
        (
            {
                "min_tokens": 20,
                "max_tokens": 60,
                "output_tokens": {"distribution": "fixed", "tokens": 5, "mean_token": 3},
            },
            "payloads[0].synthetic.output_tokens.mean_token: unknown key (did you mean 'mean_tokens'?)",
        ),
    ],
)
def test_bad_synthetic_settings_are_one_line_naming_the_field(
    tmp_path: Path, synthetic: dict[str, Any], expected: str
) -> None:
    assert _config_error(tmp_path, synthetic).startswith(expected)


def test_min_tokens_above_max_tokens_is_an_error(tmp_path: Path) -> None:
    message = _config_error(tmp_path, min_tokens=50)
    assert message.startswith("experiments[0].inference_parameters: min_tokens (50) must not exceed max_tokens (40)")


def test_min_tokens_for_a_wire_format_without_it_is_an_error(tmp_path: Path) -> None:
    cfg = config_dict([sim_experiment(inference_parameters={"max_tokens": 40, "min_tokens": 5})])
    cfg["experiments"][0]["endpoint"]["api_style"] = "tgi"
    path = write_config(tmp_path / "bad.yml", cfg)
    with pytest.raises(ConfigError, match=r"experiments\[0\]: inference_parameters.min_tokens: api_style tgi has no"):
        load_config(path)


def test_min_tokens_is_sent_and_capped_to_a_prompts_own_max_tokens() -> None:
    params = InferenceParameters(max_tokens=100, min_tokens=20)
    target = Target(
        "run", "exp", "m", "openai", "http://127.0.0.1:9/v1", "chat", "m", True, {}, None, 1, params,
        aiohttp.ClientTimeout(total=1), DEFAULT_COUNTER,
    )  # fmt: skip
    bodies = {
        limit: openai.request_body("chat", "m", p, target.params_for(p), True)
        for limit, p in (
            (None, Prompt(0, "hi", None, 1)),
            (8, Prompt(1, "hi", None, 1, 8)),
            (60, Prompt(2, "x", None, 1, 60)),
        )
    }
    assert [(b["max_tokens"], b["min_tokens"]) for b in bodies.values()] == [(100, 20), (8, 8), (60, 20)]
    assert target.params_for(Prompt(3, "y", None, 1, 8)) is target.params_for(Prompt(4, "z", None, 1, 8))
    assert "min_tokens" not in openai.request_body("chat", "m", Prompt(0, "hi", None, 1), InferenceParameters(), True)


def test_provenance_is_json_with_the_keys_the_caller_records(bpe: TransformersTokenCounter) -> None:
    spec = SyntheticPayload(
        min_tokens=30, max_tokens=60, count=5, prefix_tokens=8, output_tokens={"tokens": 9, "distribution": "fixed"}
    )
    _, prov = generate(spec, bpe, "chat")
    assert json.loads(json.dumps(prov)) == prov
    assert set(prov) == {
        "generator", "counter", "api_style", "spec", "seed", "count", "prefix_tokens", "template_tokens",
        "vocabulary", "target_tokens", "measured_tokens", "drift", "output_tokens",
    }  # fmt: skip
    assert (prov["counter"], prov["api_style"], prov["count"], prov["seed"]) == (bpe.name, "chat", 5, 0)
    assert prov["spec"]["output_tokens"]["tokens"] == 9 and prov["output_tokens"] == {"min": 9, "mean": 9.0, "max": 9}
