"""Load models: how an experiment's levels send their requests (the config's `load` section and the schedule of
an open-loop level).

- `closed` (the default): `concurrency` workers, each sending its next request when its last one ended.
- `rate`: an open loop at each target rate, whether or not the server keeps up: send times drawn in advance
  (Poisson, gamma with a burstiness factor, or constant), with a cap on requests in flight.
- `sweep`: the closed-loop levels first, then a ladder of rates from the lowest to the highest rate those levels
  measured on each bucket (as GuideLLM's sweep), stopping a bucket's ladder at its first saturated rate.

Every open-loop request row records its intended and its actual send time, so a client that falls behind its
schedule (coordinated omission) shows per request and the marts can mark the level invalid.
"""

from __future__ import annotations

import random
from typing import Annotated, Literal

from pydantic import Field, model_validator

from collector.config_base import MAX_CONCURRENCY, MAX_SECONDS, Strict

MAX_RATE_PER_S = 1_000_000.0
DEFAULT_MAX_IN_FLIGHT = 1024
Arrival = Literal["poisson", "gamma", "constant"]


class ClosedLoad(Strict):
    """A closed loop over the experiment's concurrency_levels (the default)."""

    model: Literal["closed"] = Field(default="closed", description="closed: `concurrency` requests kept in flight.")


class _OpenLoop(Strict):
    arrival: Arrival = Field(
        default="poisson",
        description="How send times are drawn: poisson (exponential gaps), gamma (gaps with shape `burstiness`), "
        "or constant (evenly spaced).",
    )
    burstiness: float = Field(
        default=1.0,
        gt=0,
        le=1000,
        description="Shape of the gamma gaps (arrival: gamma): 1 is Poisson, below 1 burstier, above 1 more even "
        "(vLLM's --burstiness).",
    )
    max_in_flight: int = Field(
        default=DEFAULT_MAX_IN_FLIGHT,
        ge=1,
        le=MAX_CONCURRENCY,
        description="Cap on requests in flight; a send that waits for a slot is late (the row shows by how much). "
        "Recorded as the level's `concurrency`.",
    )
    seed: int = Field(default=0, description="Seed of the send times (each level draws its own from it).")
    level_duration_s: float | None = Field(
        default=None,
        gt=0,
        le=MAX_SECONDS,
        description="Stop scheduling a level's sends after this many seconds, even before requests_per_level.",
    )

    @model_validator(mode="after")
    def _burstiness_with_gamma(self) -> _OpenLoop:
        if self.burstiness != 1.0 and self.arrival != "gamma":
            raise ValueError(f"burstiness applies to arrival: gamma only (arrival is {self.arrival})")
        return self


class RateLoad(_OpenLoop):
    """An open loop at each of the given target rates, one level per rate and bucket."""

    model: Literal["rate"] = Field(description="rate: requests sent at a target rate, whether or not answered.")
    rates_per_s: list[Annotated[float, Field(gt=0, le=MAX_RATE_PER_S)]] = Field(
        min_length=1, description="Target request rates, requests per second, one level each."
    )

    @model_validator(mode="after")
    def _distinct(self) -> RateLoad:
        if len(set(self.rates_per_s)) != len(self.rates_per_s):
            raise ValueError("rates_per_s has duplicates")
        return self


class SweepLoad(_OpenLoop):
    """The closed-loop levels, then `rate_count` rates per bucket from the lowest to the highest rate they
    measured (the ceiling), lowest first; a bucket's ladder stops at its first saturated rate."""

    model: Literal["sweep"] = Field(description="sweep: closed-loop levels, then a ladder of open-loop rates.")
    rate_count: int = Field(default=5, ge=1, le=100, description="Rates in each bucket's ladder.")


LoadModel = Annotated[ClosedLoad | RateLoad | SweepLoad, Field(discriminator="model")]


def ladder(floor_per_s: float, ceiling_per_s: float, count: int) -> list[float]:
    """A sweep's rates: `count` evenly spaced steps above the floor, the last at the ceiling (3 significant
    figures, duplicates dropped: a floor equal to the ceiling gives the ceiling alone)."""
    steps = [floor_per_s + (ceiling_per_s - floor_per_s) * k / count for k in range(1, count + 1)]
    rounded = [float(f"{r:.3g}") for r in steps if r > 0]
    return sorted(set(rounded))


def schedule_seed(seed: str | int, experiment: str, bucket: str, rate_per_s: float, repeat: int = 1) -> str:
    """The string seeding one level's schedule: its own per experiment, bucket, rate and repeat (a repeat draws a
    new schedule, so the spread across repeats includes the arrivals' own noise; the first repeat's is the seed a
    level had before repeats existed)."""
    base = f"{seed}:{experiment}:{bucket}:{rate_per_s}"
    return base if repeat == 1 else f"{base}:{repeat}"


def send_offsets_s(
    count: int, rate_per_s: float, arrival: Arrival, burstiness: float, seed: str, within_s: float | None = None
) -> list[float]:
    """Intended send times of an open-loop level, seconds from its start: the first at 0, then gaps of mean
    1 / rate drawn by `arrival` (gamma: shape `burstiness`, scale 1 / (rate x burstiness), as vLLM's client).
    At most `count`, and none after `within_s`. Seeded by a string, so each level has its own reproducible draw."""
    rng = random.Random(seed)
    offsets: list[float] = []
    t = 0.0
    for _ in range(count):
        if within_s is not None and t > within_s:
            break
        offsets.append(t)
        if arrival == "constant":
            t += 1 / rate_per_s
        elif arrival == "poisson":
            t += rng.expovariate(rate_per_s)
        else:
            t += rng.gammavariate(burstiness, 1 / (rate_per_s * burstiness))
    return offsets


# A rate level is saturated when the queue grows through it: the median TTFT (end-to-end latency where a reply is
# not streamed) of its last third of successful requests, in send order, is at least this many times that of its
# first third. The marts' is_saturated applies the same rule (dbt var saturation_latency_growth, held equal to this
# by a test); the collector needs it during the run, to stop raising a sweep's rate.
SATURATION_GROWTH = 2.0
SATURATION_MIN_REQUESTS = 6  # fewer successes than this: too few to tell (the marts' flag is null)


def _median(xs: list[float]) -> float:
    ys = sorted(xs)
    mid = len(ys) // 2
    return ys[mid] if len(ys) % 2 else (ys[mid - 1] + ys[mid]) / 2


def is_saturated(successes: list[tuple[int, float]]) -> bool | None:
    """The saturation rule over a level's successes as (send order, TTFT or latency s): thirds as SQL's ntile(3)
    cuts them (the first thirds take the remainder). None when there are too few to tell."""
    n = len(successes)
    if n < SATURATION_MIN_REQUESTS:
        return None
    ordered = [latency for _, latency in sorted(successes)]
    first = n // 3 + (1 if n % 3 > 0 else 0)
    last = n // 3
    return _median(ordered[-last:]) >= SATURATION_GROWTH * _median(ordered[:first])
