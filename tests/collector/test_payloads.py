"""Payload buckets: synthetic prompts hold the lengths they promise; JSONL rows in FMBench's formats load."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.config import SyntheticPayload
from collector.errors import ConfigError
from collector.payloads import read_jsonl
from collector.synthetic import generate
from collector.tokens import DEFAULT_COUNTER
from tests.conftest import REPO


@settings(max_examples=40, deadline=None)
@given(
    low=st.integers(min_value=1, max_value=1500),
    width=st.integers(min_value=1, max_value=800),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_synthetic_prompts_lie_in_their_token_range(low: int, width: int, seed: int) -> None:
    spec = SyntheticPayload(min_tokens=low, max_tokens=low + width, count=5, seed=seed)
    prompts, _ = generate(spec, DEFAULT_COUNTER, "completions")
    assert len(prompts) == 5
    for p in prompts:
        assert low <= DEFAULT_COUNTER.count(p.text) < low + width
        assert p.client_tokens == DEFAULT_COUNTER.count(p.text)


def test_default_buckets_spread_over_their_ranges() -> None:
    spec = SyntheticPayload(min_tokens=500, max_tokens=1000, count=50, seed=2)
    lengths = [p.client_tokens for p in generate(spec, DEFAULT_COUNTER, "completions")[0]]
    assert min(lengths) >= 500 and max(lengths) < 1000
    assert 650 < sum(lengths) / len(lengths) < 850  # uniform over the range, mean near 750


def test_same_seed_same_prompts_other_seed_other_prompts() -> None:
    a = generate(SyntheticPayload(min_tokens=10, max_tokens=50, count=3, seed=7), DEFAULT_COUNTER, "chat")[0]
    b = generate(SyntheticPayload(min_tokens=10, max_tokens=50, count=3, seed=7), DEFAULT_COUNTER, "chat")[0]
    c = generate(SyntheticPayload(min_tokens=10, max_tokens=50, count=3, seed=8), DEFAULT_COUNTER, "chat")[0]
    assert [p.text for p in a] == [p.text for p in b] != [p.text for p in c]


def test_jsonl_accepts_fmbench_inputs_prompt_and_chat_rows(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    rows = [
        {"inputs": "one two three", "ground_truth": ["x"]},
        {"prompt": "four five"},
        {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "six seven eight"}]},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    prompts = read_jsonl(path)
    assert [p.client_tokens for p in prompts] == [3, 2, 5]
    assert prompts[0].as_messages() == [{"role": "user", "content": "one two three"}]
    assert prompts[2].as_text() == "system: be brief\nuser: six seven eight"
    assert prompts[2].as_messages()[1] == {"role": "user", "content": "six seven eight"}


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("{not json", "not JSON (Expecting property name enclosed in double quotes, column 2)"),
        ('{"text": "x"}', "expected a string 'inputs' or 'prompt', or 'messages' as a list of {role, content}"),
        ("[1, 2]", "each line must be a JSON object"),
    ],
)
def test_bad_jsonl_row_names_file_and_line(tmp_path: Path, line: str, why: str) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"inputs": "fine"}\n' + line + "\n")
    with pytest.raises(ConfigError) as info:
        read_jsonl(path)
    assert str(info.value) == f"{path}:2: bad payload row: {why}"


def test_shipped_fmbench_format_samples_hold_their_bucket_lengths() -> None:
    for name, low, high in (("payload_en_1-500.jsonl", 1, 500), ("payload_en_500-1000.jsonl", 500, 1000)):
        prompts = read_jsonl(REPO / "configs" / "payloads" / name)
        assert len(prompts) == 20
        assert all(low <= p.client_tokens < high for p in prompts), name


def test_existing_synthetic_configs_give_the_same_prompts_as_before_length_distributions() -> None:
    """The built-in counter's word prompts of a uniform bucket are byte for byte those of earlier versions, so runs
    of an unchanged config stay comparable (fingerprints taken from the generator before distributions existed)."""
    expected = {
        (10, 50, 3, 7): "042c9cde2c0784b509fa5214f6be0fce868c2fb10b1a901436181000a247208a",
        (500, 1000, 5, 4): "49e8a82684d66bbd84dcaf31b1aba7098b52f5edff13392d30fe7c9509c94d53",
    }
    for (low, high, count, seed), digest in expected.items():
        spec = SyntheticPayload(min_tokens=low, max_tokens=high, count=count, seed=seed)
        prompts, _ = generate(spec, DEFAULT_COUNTER, "completions")
        assert hashlib.sha256("\n".join(p.text or "" for p in prompts).encode()).hexdigest() == digest
