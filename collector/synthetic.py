"""Synthetic prompts of exact token lengths as sent: built from the experiment tokenizer's own token ids (or from
English words with the built-in counter), with an optional shared prefix and per-prompt output lengths.
"""

from __future__ import annotations

import random
import re
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from collector.config import SyntheticPayload
from collector.errors import ConfigError
from collector.lengths import draw_length, stats
from collector.payloads import Prompt
from collector.tokens import TokenCounter, TransformersTokenCounter, count_prompt

# Plain English words: each is one token for the default counter, and common enough to be a single
# BPE token for real tokenizers too, so synthetic lengths stay close under either.
_WORDS = (  # noqa: SIM905 (one readable block of words)
    "the of and to in is was for on that with as by at from his her it an were are which this be or has "
    "had not but their first one new after also two they its who been other when time year into more all "
    "during only over most city would some school there up may state between about world him such where "
    "years three used made national part well many then these later while under south team north people "
    "both west since known war early second through before being high including government east work "
    "until each however life several end family music house three game name being four film same age "
    "best often river small large old series number public following around group members based court "
    "law party history received local island church center day place season own field area general "
    "system began released long will water form library model server token request budget latency price "
    "performance answer question context document "
).split()

# A vocabulary piece that starts a word (byte-level BPE's 'Ġ', SentencePiece's '▁') and is plain letters: a run of
# such pieces decodes to words split at spaces, which the tokenizer's pre-tokenizer splits back the same way.
_WORD_START = re.compile(r"^(Ġ|▁)[A-Za-z]+$")
# Fewer word pieces than this (a word-level or character vocabulary): any non-special id is drawn instead.
MIN_PLAIN_WORDS = 32
# Re-renders per prompt while adjusting its id count to the target: one or two suffice when pieces round-trip.
MAX_RENDERS = 8
OFF_TARGET_LISTED = 50


@dataclass(frozen=True)
class _Vocabulary:
    ids: tuple[int, ...]
    plain_words: bool  # the ids are word pieces that round-trip; else every non-special id (drift more likely)


_VOCABULARIES: weakref.WeakKeyDictionary[TransformersTokenCounter, _Vocabulary] = weakref.WeakKeyDictionary()


def _vocabulary(counter: TransformersTokenCounter) -> _Vocabulary:
    """The ids synthetic prompts are drawn from, chosen once per tokenizer."""
    if counter in _VOCABULARIES:
        return _VOCABULARIES[counter]
    tok = counter.tokenizer
    special = set(tok.all_special_ids) | set(getattr(tok, "added_tokens_decoder", {}))
    ids = sorted(i for i in set(tok.get_vocab().values()) if i not in special)
    pieces = tok.convert_ids_to_tokens(ids)
    words = [i for i, piece in zip(ids, pieces, strict=True) if isinstance(piece, str) and _WORD_START.match(piece)]
    if words:  # keep the pieces that encode back to themselves alone
        texts = [tok.decode([i], clean_up_tokenization_spaces=False) for i in words]
        encoded = tok(texts, add_special_tokens=False)["input_ids"]
        words = [i for i, back in zip(words, encoded, strict=True) if list(back) == [i]]
    vocab = _Vocabulary(tuple(words), True) if len(words) >= MIN_PLAIN_WORDS else _Vocabulary(tuple(ids), False)
    if not vocab.ids:
        raise ConfigError(f"tokenizer {counter.source!r} has no non-special tokens to build prompts from")
    _VOCABULARIES[counter] = vocab
    return vocab


class _IdPrompts:
    """Prompts of a target length as sent, from token ids: decode, re-count as sent, adjust the id count."""

    def __init__(self, counter: TransformersTokenCounter, api_style: str, prefix_ids: list[int]) -> None:
        self.counter = counter
        self.api_style = api_style
        self.vocab = _vocabulary(counter)
        self.prefix_ids = prefix_ids
        self.template_tokens = self.rendered("")  # what the wire format adds: a BOS, the chat template

    def decode(self, ids: list[int]) -> str:
        return str(self.counter.tokenizer.decode(ids, clean_up_tokenization_spaces=False))

    def rendered(self, text: str) -> int:
        return count_prompt(self.counter, text, None, self.api_style)

    def make(self, rng: random.Random, target: int) -> tuple[str, int]:
        """(text, its count as sent) as close to `target` as the tokenizer allows; exact unless the target is
        below the template plus prefix, or pieces merge across a boundary in a way adjusting cannot undo."""
        body: list[int] = []
        k = max(0, target - self.template_tokens - len(self.prefix_ids))
        best: tuple[str, int] | None = None
        seen: set[int] = set()
        for _ in range(MAX_RENDERS):
            if len(body) < k:
                body.extend(rng.choices(self.vocab.ids, k=k - len(body)))
            text = self.decode(self.prefix_ids + body[:k])
            count = self.rendered(text)
            seen.add(k)
            if best is None or abs(count - target) < abs(best[1] - target):
                best = (text, count)
            if count == target:
                break
            step = max(0, k + target - count)
            if step == k:
                break  # k is 0: the template and the prefix alone are longer than the target
            if step in seen:
                # Oscillating around the target (a piece costs two tokens where it meets its neighbour): draw
                # another last piece at the longer length rather than keep toggling between the two.
                k = max(k, step)
                body[k - 1] = rng.choice(self.vocab.ids)
            else:
                k = step
        assert best is not None
        return best


def _text_of_length(rng: random.Random, target: int, counter: TokenCounter) -> str:
    """Prose of exactly `target` tokens when the counter allows it (else the longest below it)."""
    if target <= 0:
        return ""
    words: list[str] = []
    while len(words) < target * 2:
        sentence = [rng.choice(_WORDS) for _ in range(rng.randint(6, 18))]
        sentence[0] = sentence[0].capitalize()
        sentence[-1] += "."
        words.extend(sentence)
    lo, hi = 1, len(words)  # largest word count whose text has <= target tokens
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if counter.count(" ".join(words[:mid])) <= target:
            lo = mid
        else:
            hi = mid - 1
    text = " ".join(words[:lo])
    # A sentence end can make the next word cost two tokens; top up with single words to hit the target.
    count = counter.count(text)
    tries = 0
    while count < target and tries < 50:
        candidate = f"{text} {rng.choice(_WORDS)}"
        new_count = counter.count(candidate)
        if new_count <= target:
            text, count = candidate, new_count
        else:
            tries += 1
    return text


def generate(
    spec: SyntheticPayload, counter: TokenCounter, api_style: str, lengths: Sequence[int] | None = None
) -> tuple[list[Prompt], dict[str, Any]]:
    """`spec.count` prompts whose lengths as sent in `api_style` hit lengths drawn from the spec, and the
    provenance of how they were made (JSON-serialisable). `lengths` (used by distribution: lengths_of only) are
    the other bucket's prompt token counts, counted as sent with the same counter."""
    if spec.distribution == "lengths_of" and not lengths:
        raise ConfigError(f"synthetic.lengths_of: no prompt lengths of bucket {spec.lengths_of!r} were given")
    # One stream for targets and text, as before prefixes and output lengths existed (the same seed gives the
    # same prompts as earlier versions); the prefix and the output lengths draw from streams of their own.
    rng = random.Random(spec.seed)
    prefix_rng = random.Random(f"{spec.seed}:prefix")
    output_rng = random.Random(f"{spec.seed}:output_tokens")
    by_ids = isinstance(counter, TransformersTokenCounter)
    if isinstance(counter, TransformersTokenCounter):
        prefix_ids = prefix_rng.choices(_vocabulary(counter).ids, k=spec.prefix_tokens)
        maker = _IdPrompts(counter, api_style, prefix_ids)
        template_tokens = maker.template_tokens
    else:
        prefix = _text_of_length(prefix_rng, spec.prefix_tokens, counter)
        template_tokens = count_prompt(counter, "", None, api_style)
    targets: list[int] = []
    measured: list[int] = []
    outputs: list[int] = []
    prompts: list[Prompt] = []
    for i in range(spec.count):
        target = draw_length(spec, rng, lengths)
        if isinstance(counter, TransformersTokenCounter):
            text, count = maker.make(rng, target)
        else:
            # Word counts add up under a word counter, so the prefix plus a body of the rest is exact.
            body = _text_of_length(rng, target - spec.prefix_tokens, counter)
            text = f"{prefix} {body}" if prefix and body else prefix or body
            count = count_prompt(counter, text, None, api_style)
        max_tokens = draw_length(spec.output_tokens, output_rng) if spec.output_tokens is not None else None
        prompts.append(Prompt(i, text, None, count, max_tokens))
        targets.append(target)
        measured.append(count)
        if max_tokens is not None:
            outputs.append(max_tokens)
    provenance: dict[str, Any] = {
        "generator": "token-ids" if by_ids else "words",
        "counter": counter.name,
        "api_style": api_style,
        "spec": spec.model_dump(mode="json"),
        "seed": spec.seed,
        "count": len(prompts),
        "prefix_tokens": spec.prefix_tokens,
        "template_tokens": template_tokens,
        "vocabulary": _vocabulary_provenance(counter) if by_ids else None,
        "target_tokens": stats(targets),
        "measured_tokens": stats(measured),
        "drift": _drift(targets, measured),
        "output_tokens": stats(outputs) if spec.output_tokens is not None else None,
    }
    return prompts, provenance


def _vocabulary_provenance(counter: TokenCounter) -> dict[str, Any]:
    assert isinstance(counter, TransformersTokenCounter)
    vocab = _vocabulary(counter)
    return {"ids": len(vocab.ids), "plain_words": vocab.plain_words}


def _drift(targets: Sequence[int], measured: Sequence[int]) -> dict[str, Any]:
    """How far the prompts as sent are from their targets: nothing is rounded away or hidden."""
    off = [(i, t, m) for i, (t, m) in enumerate(zip(targets, measured, strict=True)) if t != m]
    diffs = [abs(t - m) for t, m in zip(targets, measured, strict=True)]
    return {
        "prompts_off_target": len(off),
        "mean_abs_tokens": round(sum(diffs) / len(diffs), 3) if diffs else 0.0,
        "max_abs_tokens": max(diffs, default=0),
        "off_target": [{"index": i, "target": t, "measured": m} for i, t, m in off[:OFF_TARGET_LISTED]],
    }
