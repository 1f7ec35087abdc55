"""Token-length distributions (uniform, fixed, normal, or a real bucket's lengths), one model for the lengths of
synthetic prompts and of their outputs, and the seeded draw from it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal

from pydantic import Field, model_validator

from collector.config_base import MAX_TOKENS, Strict

# The keys each distribution reads; every other length key given with it is an error, so a config never
# holds a setting that silently does nothing.
KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {  # distribution: (required, optional)
    "uniform": (("min_tokens", "max_tokens"), ()),
    "fixed": (("tokens",), ()),
    "normal": (("mean_tokens", "stddev_tokens"), ("min_tokens", "max_tokens")),
    "lengths_of": (("lengths_of",), ()),
}
_LENGTH_KEYS = ("tokens", "min_tokens", "max_tokens", "mean_tokens", "stddev_tokens", "lengths_of")


class LengthDistribution(Strict):
    """Token lengths: uniform over [min_tokens, max_tokens), fixed (`tokens`) or normal (clipped, at least 1)."""

    distribution: Literal["uniform", "fixed", "normal"] = Field(
        default="uniform", description="Shape of the lengths: uniform, fixed or normal."
    )
    tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS, description="The one length of `fixed`.")
    min_tokens: int | None = Field(
        default=None,
        ge=1,
        le=MAX_TOKENS,
        description="Shortest length (uniform: required; normal: optional lower clip), in tokens.",
    )
    max_tokens: int | None = Field(
        default=None,
        ge=2,
        le=MAX_TOKENS,
        description="Longest length, exclusive like FMBench's filters (uniform: required; normal: optional upper "
        "clip).",
    )
    mean_tokens: float | None = Field(default=None, gt=0, le=MAX_TOKENS, description="Mean length of `normal`.")
    stddev_tokens: float | None = Field(
        default=None, ge=0, le=MAX_TOKENS, description="Standard deviation of `normal`, in tokens."
    )

    @model_validator(mode="after")
    def _keys_of_distribution(self) -> LengthDistribution:
        required, optional = KEYS[self.distribution]
        for key in required:
            if getattr(self, key, None) is None:
                raise ValueError(f"{key} is required with distribution: {self.distribution}")
        for key in _LENGTH_KEYS:
            if key not in required + optional and getattr(self, key, None) is not None:
                uses = ", ".join(required + optional)
                raise ValueError(f"{key} is not used by distribution: {self.distribution} (it takes {uses})")
        if self.min_tokens is not None and self.max_tokens is not None and self.max_tokens <= self.min_tokens:
            raise ValueError(f"max_tokens ({self.max_tokens}) must be greater than min_tokens ({self.min_tokens})")
        return self

    def shortest(self) -> int | None:
        """The shortest length a draw can give, when the config alone says it (not for lengths_of)."""
        if self.distribution == "fixed":
            return self.tokens
        if self.distribution == "uniform":
            return self.min_tokens
        if self.distribution == "normal":
            return self.min_tokens or 1
        return None


def draw_length(dist: LengthDistribution, rng: random.Random, lengths: Sequence[int] | None = None) -> int:
    """One length drawn from `dist`; `lengths` are the measured lengths a `lengths_of` distribution samples."""
    if dist.distribution == "uniform":
        assert dist.min_tokens is not None and dist.max_tokens is not None
        return rng.randrange(dist.min_tokens, dist.max_tokens)
    if dist.distribution == "fixed":
        assert dist.tokens is not None
        return dist.tokens
    if dist.distribution == "normal":
        assert dist.mean_tokens is not None and dist.stddev_tokens is not None
        value = round(rng.gauss(dist.mean_tokens, dist.stddev_tokens))
        if dist.min_tokens is not None:
            value = max(value, dist.min_tokens)
        if dist.max_tokens is not None:
            value = min(value, dist.max_tokens - 1)
        return max(value, 1)
    if not lengths:
        raise ValueError(f"distribution {dist.distribution} needs the lengths of another bucket, and none were given")
    return lengths[rng.randrange(len(lengths))]


def stats(values: Sequence[int], digits: int = 3) -> dict[str, float | int | None]:
    """min, mean (rounded to `digits`) and max of token lengths, for provenance (None when there are none)."""
    if not values:
        return {"min": None, "mean": None, "max": None}
    return {"min": min(values), "mean": round(sum(values) / len(values), digits), "max": max(values)}
