"""Continuous-batching engine of the simulator: a vLLM-like scheduler whose step durations follow a
roofline model of the GPUs, driven either in virtual time (tests) or in real time (the HTTP server).

Cost model (per engine step, aggregated over the tensor-parallel GPUs):
- prefill of the admitted prompts: 2 * params * prompt_tokens / (peak BF16 FLOP/s * prefill_efficiency)
  + request_overhead_s per admitted request + step_overhead_s; it yields each admitted request's first token;
- decode of the running batch: (weight bytes + KV bytes of every running sequence's current length)
  / (memory bandwidth * decode_efficiency) + step_overhead_s; it yields one token per running sequence.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from collector.errors import ConfigError
from collector.sim.metrics import SimMetrics
from collector.sim.profiles import ServerProfile, resolve_hardware
from collector.sim.settings import SimSettings

# Words the default token counter counts as exactly one token each; generated text is " word" per token,
# so a client counting the completion text gets the server's completion_tokens.
VOCABULARY: tuple[str, ...] = (
    "the", "model", "server", "token", "batch", "cache", "memory", "request", "latency", "stream",
    "prompt", "answer", "data", "time", "first", "next", "value", "result", "system", "query",
    "fast", "slow", "large", "small", "clear", "simple", "steady", "quiet", "bright", "early",
    "river", "stone", "cloud", "forest", "city", "road", "light", "water", "paper", "window",
    "runs", "reads", "writes", "waits", "moves", "holds", "builds", "finds", "keeps", "makes",
    "and", "of", "to", "in", "on", "with", "for", "from", "over", "under",
    "then", "again", "still", "here",
)  # fmt: skip

# In real time, a loop that fell this far behind its schedule (seconds) restarts the schedule from now
# instead of running the missed steps back to back.
_MAX_LAG_S = 1.0

FinishReason = Literal["stop", "length"]


class RequestRejected(ValueError):
    """A request the engine can never run (prompt plus max_tokens beyond the model's usable context)."""


@dataclass(frozen=True)
class EngineConfig:
    """Resolved cost-model and scheduler numbers for one simulated server."""

    flops_per_prompt_token: float
    prefill_flops_per_s: float
    weight_bytes: float
    kv_bytes_per_token: float
    decode_bytes_per_s: float
    step_overhead_s: float
    request_overhead_s: float
    kv_capacity_tokens: int
    max_model_len: int
    max_num_seqs: int
    max_num_batched_tokens: int
    mean_output_tokens: float
    seed: int

    @classmethod
    def from_profile(cls, profile: ServerProfile, settings: SimSettings) -> EngineConfig:
        defaults = profile.defaults

        def pick(override: float | None, default: float) -> float:
            return default if override is None else override

        usable_bytes = profile.memory_bytes * settings.gpu_memory_utilization
        kv_bytes = usable_bytes - profile.model.weight_bytes
        kv_tokens = int(kv_bytes // profile.model.kv_bytes_per_token) if kv_bytes > 0 else 0
        if kv_tokens < 1:
            raise ConfigError(
                f"model {profile.model_key} leaves no room for a KV cache on {profile.describe()} at "
                f"gpu_memory_utilization {settings.gpu_memory_utilization} "
                f"(weights {profile.model.weight_bytes / 1e9:.1f} GB, usable {usable_bytes / 1e9:.1f} GB)"
            )
        prefill_eff = pick(settings.prefill_efficiency, defaults.prefill_efficiency)
        decode_eff = pick(settings.decode_efficiency, defaults.decode_efficiency)
        return cls(
            flops_per_prompt_token=2.0 * profile.model.parameters,
            prefill_flops_per_s=profile.peak_flops * prefill_eff,
            weight_bytes=profile.model.weight_bytes,
            kv_bytes_per_token=profile.model.kv_bytes_per_token,
            decode_bytes_per_s=profile.memory_bandwidth_bytes_per_s * decode_eff,
            step_overhead_s=pick(settings.step_overhead_s, defaults.step_overhead_s),
            request_overhead_s=pick(settings.request_overhead_s, defaults.request_overhead_s),
            kv_capacity_tokens=kv_tokens,
            max_model_len=min(profile.model.max_position_embeddings, kv_tokens),
            max_num_seqs=settings.max_num_seqs,
            max_num_batched_tokens=settings.max_num_batched_tokens,
            mean_output_tokens=settings.mean_output_tokens,
            seed=settings.seed,
        )

    @classmethod
    def from_settings(cls, settings: SimSettings) -> EngineConfig:
        profile = resolve_hardware(settings.instance_type, settings.model, settings.tensor_parallel)
        return cls.from_profile(profile, settings)

    def prefill_duration_s(self, prompt_tokens: list[int]) -> float:
        compute_s = self.flops_per_prompt_token * sum(prompt_tokens) / self.prefill_flops_per_s
        return compute_s + self.request_overhead_s * len(prompt_tokens) + self.step_overhead_s

    def decode_duration_s(self, context_tokens: int) -> float:
        read_bytes = self.weight_bytes + self.kv_bytes_per_token * context_tokens
        return read_bytes / self.decode_bytes_per_s + self.step_overhead_s


@dataclass(eq=False)
class Sequence:
    """One request inside the engine."""

    request_id: int
    prompt_tokens: int
    max_tokens: int
    natural_tokens: int  # where the seeded end-of-sequence falls; >= max_tokens when ignore_eos
    arrival_s: float
    rng: random.Random = field(repr=False)
    generated: int = 0
    first_token_s: float | None = None
    finish_s: float | None = None
    finish_reason: FinishReason | None = None
    cancelled: bool = False

    @property
    def target_tokens(self) -> int:
        return min(self.max_tokens, self.natural_tokens)

    @property
    def reserved_tokens(self) -> int:
        """KV slots held from admission to the end: the worst case, prompt plus max_tokens."""
        return self.prompt_tokens + self.max_tokens

    @property
    def context_tokens(self) -> int:
        return self.prompt_tokens + self.generated


@dataclass(frozen=True)
class Step:
    """One engine iteration: a prefill of newly admitted sequences or a decode of all running ones."""

    kind: Literal["prefill", "decode"]
    sequences: tuple[Sequence, ...]
    duration_s: float


@dataclass(frozen=True)
class TokenEvent:
    """One generated token; `finish_reason` is set on a sequence's last token."""

    sequence: Sequence
    index: int
    text: str
    finish_reason: FinishReason | None


def draw_natural_length(rng: random.Random, mean: float) -> int:
    """Geometric length on 1, 2, ... with the given mean: every token ends the sequence with p = 1/mean."""
    if mean <= 1.0:
        return 1
    p = 1.0 / mean
    return 1 + math.floor(math.log(1.0 - rng.random()) / math.log(1.0 - p))


class Engine:
    """Pure scheduling logic: FIFO admission bounded by KV reservations, prefill-first steps, no clock."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []
        self.kv_reserved_tokens = 0
        self._next_id = 0

    def submit(
        self, prompt_tokens: int, max_tokens: int, ignore_eos: bool, now_s: float, min_tokens: int = 0
    ) -> Sequence:
        """Queue a request; raises `RequestRejected` if it could never be admitted. The reply ends no sooner than
        `min_tokens` (vLLM's min_tokens: end-of-sequence is suppressed until then), and never after max_tokens."""
        if prompt_tokens < 0 or max_tokens < 1:
            raise RequestRejected("prompt_tokens must be >= 0 and max_tokens >= 1")
        if prompt_tokens + max_tokens > self.config.max_model_len:
            raise RequestRejected(
                f"This model's maximum context length is {self.config.max_model_len} tokens. However, you "
                f"requested {prompt_tokens + max_tokens} tokens ({prompt_tokens} in the messages, "
                f"{max_tokens} in the completion). Please reduce the length of the messages or completion."
            )
        request_id = self._next_id
        self._next_id += 1
        # Per-request stream: the same seed and arrival order give the same lengths and words.
        rng = random.Random(f"tokenbench-sim:{self.config.seed}:{request_id}")
        natural = draw_natural_length(rng, self.config.mean_output_tokens)
        seq = Sequence(
            request_id=request_id,
            prompt_tokens=prompt_tokens,
            max_tokens=max_tokens,
            natural_tokens=max(natural, max_tokens) if ignore_eos else max(natural, min_tokens),
            arrival_s=now_s,
            rng=rng,
        )
        self.waiting.append(seq)
        return seq

    def cancel(self, seq: Sequence) -> None:
        """Drop a request wherever it is and free its KV reservation; a no-op once it has finished."""
        if seq.finish_reason is not None or seq.cancelled:
            return
        seq.cancelled = True
        if seq in self.waiting:
            self.waiting.remove(seq)
        elif seq in self.running:
            self.running.remove(seq)
            self.kv_reserved_tokens -= seq.reserved_tokens

    @property
    def is_idle(self) -> bool:
        return not self.waiting and not self.running

    def _admit(self) -> list[Sequence]:
        admitted: list[Sequence] = []
        batched = 0
        cfg = self.config
        while self.waiting:
            seq = self.waiting[0]
            if len(self.running) + len(admitted) >= cfg.max_num_seqs:
                break
            if self.kv_reserved_tokens + seq.reserved_tokens > cfg.kv_capacity_tokens:
                break
            # A prompt longer than the token budget still runs, alone, as vLLM does without chunking.
            if admitted and batched + seq.prompt_tokens > cfg.max_num_batched_tokens:
                break
            self.waiting.popleft()
            admitted.append(seq)
            batched += seq.prompt_tokens
            self.kv_reserved_tokens += seq.reserved_tokens
        return admitted

    def next_step(self) -> Step | None:
        """Schedule the next step (admitting waiting requests if KV allows); None when idle."""
        admitted = self._admit()
        if admitted:
            self.running.extend(admitted)
            duration = self.config.prefill_duration_s([s.prompt_tokens for s in admitted])
            return Step("prefill", tuple(admitted), duration)
        if self.running:
            context = sum(s.context_tokens for s in self.running)
            return Step("decode", tuple(self.running), self.config.decode_duration_s(context))
        return None

    def complete_step(self, step: Step, now_s: float) -> list[TokenEvent]:
        """Apply a finished step at model time `now_s`: one token per (still present) sequence."""
        events: list[TokenEvent] = []
        for seq in step.sequences:
            if seq.cancelled or seq.finish_reason is not None:
                continue
            index = seq.generated
            seq.generated += 1
            if seq.first_token_s is None:
                seq.first_token_s = now_s
            text = " " + VOCABULARY[seq.rng.randrange(len(VOCABULARY))]
            reason: FinishReason | None = None
            if seq.generated >= seq.target_tokens:
                reason = "length" if seq.generated >= seq.max_tokens else "stop"
                seq.finish_reason = reason
                seq.finish_s = now_s
                self.running.remove(seq)
                self.kv_reserved_tokens -= seq.reserved_tokens
            events.append(TokenEvent(seq, index, text, reason))
        return events


@dataclass(frozen=True)
class RequestTiming:
    """One finished request of a virtual-time run; times in modeled seconds from the run's start."""

    request_id: int
    start_s: float
    first_token_s: float
    end_s: float
    prompt_tokens: int
    completion_tokens: int
    finish_reason: FinishReason

    @property
    def ttft_s(self) -> float:
        return self.first_token_s - self.start_s

    @property
    def e2e_s(self) -> float:
        return self.end_s - self.start_s


def simulate_closed_loop(
    settings: SimSettings | EngineConfig,
    concurrency: int,
    n_requests: int,
    prompt_tokens: int,
    output_tokens: int,
    *,
    ignore_eos: bool = True,
) -> list[RequestTiming]:
    """Run `concurrency` clients that each send a new request the moment their previous one ends,
    until `n_requests` have been sent, in virtual time (no sleeping; `speedup` does not apply).

    Returns one timing per request, in completion order.
    """
    if concurrency < 1 or n_requests < 1:
        raise ValueError("concurrency and n_requests must be >= 1")
    config = settings if isinstance(settings, EngineConfig) else EngineConfig.from_settings(settings)
    engine = Engine(config)
    now = 0.0
    sent = 0
    results: list[RequestTiming] = []
    while sent < min(concurrency, n_requests):
        engine.submit(prompt_tokens, output_tokens, ignore_eos, now)
        sent += 1
    while (step := engine.next_step()) is not None:
        now += step.duration_s
        for event in engine.complete_step(step, now):
            if event.finish_reason is None:
                continue
            seq = event.sequence
            assert seq.first_token_s is not None
            results.append(
                RequestTiming(
                    request_id=seq.request_id,
                    start_s=seq.arrival_s,
                    first_token_s=seq.first_token_s,
                    end_s=now,
                    prompt_tokens=seq.prompt_tokens,
                    completion_tokens=seq.generated,
                    finish_reason=event.finish_reason,
                )
            )
            if sent < n_requests:
                engine.submit(prompt_tokens, output_tokens, ignore_eos, now)
                sent += 1
    return results


@dataclass(eq=False)
class RequestStream:
    """A request submitted to the real-time engine; its tokens arrive on `events` as steps complete."""

    sequence: Sequence
    events: asyncio.Queue[TokenEvent]
    arrived_s: float = field(default_factory=time.monotonic)  # for the server-side latency histograms


class RealtimeEngine:
    """Drives an `Engine` in real time: each step ends at an absolute deadline on the loop's clock, so
    sleep overshoot does not accumulate; new requests join at the next step boundary."""

    def __init__(self, config: EngineConfig, speedup: float = 1.0) -> None:
        if speedup < 1.0:
            raise ValueError("speedup must be >= 1")
        self.engine = Engine(config)
        self.speedup = speedup
        self.model_time_s = 0.0  # modeled seconds of work done (idle time excluded)
        self.metrics = SimMetrics()  # served at /metrics under vLLM's names
        self._streams: dict[int, RequestStream] = {}
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="tokenbench-sim-engine")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def submit(self, prompt_tokens: int, max_tokens: int, ignore_eos: bool, min_tokens: int = 0) -> RequestStream:
        """Queue a request; raises `RequestRejected` if it could never run."""
        seq = self.engine.submit(prompt_tokens, max_tokens, ignore_eos, self.model_time_s, min_tokens)
        stream = RequestStream(seq, asyncio.Queue())
        self._streams[seq.request_id] = stream
        if self._wake is not None:
            self._wake.set()
        return stream

    def cancel(self, stream: RequestStream) -> None:
        """Forget a request (client gone or finished); frees its KV reservation if it was still running."""
        self.engine.cancel(stream.sequence)
        self._streams.pop(stream.sequence.request_id, None)

    def _observe_scheduled(self, step: Step) -> None:
        now = time.monotonic()
        for seq in step.sequences:
            stream = self._streams.get(seq.request_id)
            if stream is not None:
                self.metrics.queue.observe(now - stream.arrived_s)

    def _observe_token(self, event: TokenEvent, stream: RequestStream | None) -> None:
        """Count one generated token (and, on a request's first, its prompt), as vLLM's counters do."""
        metrics = self.metrics
        metrics.generation_tokens += 1
        if event.index == 0:
            metrics.prompt_tokens += event.sequence.prompt_tokens
        if stream is None:
            return
        now = time.monotonic()
        if event.index == 0:
            metrics.ttft.observe(now - stream.arrived_s)
        if event.finish_reason is not None:
            metrics.e2e.observe(now - stream.arrived_s)
            metrics.request_success += 1

    async def _run(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        while True:
            step = self.engine.next_step()
            if step is None:
                deadline = None
                self._wake.clear()
                await self._wake.wait()
                continue
            now = loop.time()
            start = deadline if deadline is not None and now - deadline < _MAX_LAG_S else now
            deadline = start + step.duration_s / self.speedup
            if step.kind == "prefill":
                self._observe_scheduled(step)
            delay = deadline - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.model_time_s += step.duration_s
            for event in self.engine.complete_step(step, self.model_time_s):
                stream = self._streams.get(event.sequence.request_id)
                self._observe_token(event, stream)
                if stream is None:
                    continue
                stream.events.put_nowait(event)
                if event.finish_reason is not None:
                    del self._streams[event.sequence.request_id]
