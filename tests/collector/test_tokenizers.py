"""Model tokenizers behind the TokenCounter interface: counts as a server makes them, one load per process,
the named fallback, per-experiment prompt counts, and a tokenizer that cannot be loaded as one config error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from collector.config import load_config
from collector.payloads import experiment_prompts
from collector.tokens import (
    SimpleTokenCounter,
    TransformersTokenCounter,
    count_prompt,
    experiment_counters,
    load_tokenizer,
)
from tests.conftest import config_dict, run_cli, sim_experiment, write_config
from tests.tokenizer_builder import build_tokenizer_folder, hand_count, hand_count_chat

TEXT = "The model server answers a question about the river"  # 9 pieces, one of them one character


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tokenizer_folder(tmp_path_factory.mktemp("tok") / "tiny")


def test_completion_text_is_counted_without_special_tokens(tok_dir: Path) -> None:
    counter = load_tokenizer(str(tok_dir))
    assert hand_count(TEXT) == 17
    assert counter.count(TEXT) == 17
    assert counter.name == f"transformers:{tok_dir}"


def test_text_prompt_gets_the_default_special_tokens_and_chat_goes_through_the_template(tok_dir: Path) -> None:
    counter = load_tokenizer(str(tok_dir))
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": TEXT}]
    assert count_prompt(counter, TEXT, None, "completions") == 17 + 1  # <s>
    assert count_prompt(counter, TEXT, None, "chat") == hand_count_chat([{"role": "user", "content": TEXT}]) == 20
    assert count_prompt(counter, None, tuple(messages), "chat") == hand_count_chat(messages) == 2 + 4 + 2 + 17 + 1


def test_tokenizer_without_a_chat_template_counts_chat_as_joined_text(tmp_path: Path) -> None:
    counter = load_tokenizer(str(build_tokenizer_folder(tmp_path / "plain", chat_template=False)))
    # "user: <text>" with <s>: the role piece "user:" is two tokens.
    assert count_prompt(counter, TEXT, None, "chat") == 1 + 2 + 17


def test_a_tokenizer_is_loaded_once_per_process(tok_dir: Path) -> None:
    assert load_tokenizer(str(tok_dir)) is load_tokenizer(str(tok_dir))


def test_builtin_counter_counts_the_message_contents(tok_dir: Path) -> None:
    messages = ({"role": "user", "content": "Hi, there"},)
    assert count_prompt(SimpleTokenCounter(), None, messages, "chat") == 3


def _two_experiments(work: Path, tok_dir: Path) -> Path:
    cfg = config_dict(
        [
            sim_experiment("own", tokenizer=str(tok_dir.relative_to(work))),
            sim_experiment("fallback", model_id="example-org/not-cached-model"),
        ]
    )
    return write_config(work / "c.yml", cfg)


def test_each_experiment_counts_its_prompts_with_its_own_tokenizer(tmp_path: Path) -> None:
    tok = build_tokenizer_folder(tmp_path / "tokenizers" / "tiny")
    path = _two_experiments(tmp_path, tok)
    config = load_config(path)
    assert config.experiments[0].tokenizer == str(tok.resolve())  # relative to the config's folder
    counters = experiment_counters(config, path)
    assert isinstance(counters["own"], TransformersTokenCounter)
    assert counters["own"].name == f"transformers:{tok.resolve()}"  # the folder the config names, not another
    assert counters["fallback"].name == (
        "simple-regex (fallback: no tokenizer for example-org/not-cached-model in the local Hugging Face cache)"
    )
    prompts, generated = experiment_prompts(config, counters)
    # Each experiment's synthetic prompts are generated for its own tokenizer, and counted by it as sent.
    assert [g["counter"] for g in generated["short"]] == [counters["own"].name, counters["fallback"].name]
    for own, fallback in zip(prompts["own"]["short"], prompts["fallback"]["short"], strict=True):
        assert own.text is not None and fallback.text is not None
        assert own.client_tokens == hand_count_chat([{"role": "user", "content": own.text}])
        words = fallback.text.split()
        # The synthetic prose has words and sentence-ending periods, each period one more regex token.
        assert fallback.client_tokens == len(words) + sum(w.endswith(".") for w in words)
        assert 20 <= fallback.client_tokens < 60


BAD_TOKENIZERS: dict[str, Any] = {
    "missing_folder": ("./no-such-folder", "tokenizer folder not found"),
    "empty_folder": ("empty", "no tokenizer in folder"),
    "junk_folder": ("junk", "cannot load a tokenizer from folder"),
    "hub_id_not_cached": ("example-org/not-cached-model", "not in the local Hugging Face cache"),
}


@pytest.mark.parametrize("case", list(BAD_TOKENIZERS))
def test_a_tokenizer_that_cannot_be_loaded_is_one_line_and_no_run_folder(tmp_path: Path, case: str) -> None:
    value, expected = BAD_TOKENIZERS[case]
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "tokenizer.json").write_text("{not json")
    (tmp_path / "junk" / "tokenizer_config.json").write_text('{"tokenizer_class": "PreTrainedTokenizerFast"}')
    cfg = config_dict([sim_experiment("a"), sim_experiment("b", tokenizer=value)])
    path = write_config(tmp_path / "bad.yml", cfg)
    results = tmp_path / "results"
    proc = run_cli("run", "--config", str(path), "--results-dir", str(results))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "experiments[1].tokenizer: " in lines[0] and expected in lines[0], lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not results.exists()  # refused before anything was written
