"""The load generator: a closed loop of `concurrency` workers, each sending its next request as soon as its last
one finished, or an open loop sending each request at its scheduled time (collector/load_models.py); every
request lands as exactly one raw row whatever happens to it.

The HTTP client is aiohttp: it met the client-overhead targets where httpx did not
(see benchmarks/client_overhead.py and the README's "Client overhead").
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from types import ModuleType
from typing import Any, ClassVar

import aiohttp

from collector.apis import MalformedResponse, StreamError, Usage, request_url, wire_format
from collector.apis.common import StreamStateBase
from collector.clock import RunClock, iso_utc
from collector.config import InferenceParameters
from collector.fdlimit import raise_open_file_limit
from collector.payloads import Prompt
from collector.schema import RequestRow
from collector.shares import Share, SlotSequences, share_of
from collector.tokens import TokenCounter

ERROR_BODY_LIMIT = 300
MESSAGE_LIMIT = 500
# Bounds on what one reply may make us hold: an SSE line (one event) and a whole body. A longer line or body
# becomes a malformed_response row as soon as the bound is passed, and its connection is dropped unread.
MAX_EVENT_BYTES = 1 << 20
MAX_RESPONSE_BYTES = 64 << 20
MAX_CHUNK_OFFSETS = 100_000  # content chunk times kept per request (a 100k-token reply's; bounds the row)
# Errors of the collector's own host (out of descriptors, memory, buffers or local ports), not the endpoint's.
CLIENT_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM, errno.EADDRNOTAVAIL})


@dataclass(frozen=True)
class Target:
    """Everything a worker needs to send requests of one experiment."""

    run_id: str
    experiment_name: str
    model_id: str
    endpoint_type: str
    base_url: str
    api_style: str
    served_model_name: str
    stream: bool
    headers: dict[str, str]
    instance_type: str | None
    instance_count: int
    params: InferenceParameters
    timeout: aiohttp.ClientTimeout
    counter: TokenCounter
    # A cheap GET (the endpoint's health route) that opens a closed-loop level's connections before it is measured.
    prime_url: str | None = None
    # Which client process of a sharded run sends (collector/shares.py): share `shard_index` of `shard_count`.
    shard_index: int = 0
    shard_count: int = 1
    # True for the managed AWS kinds (collector/aws/target.py), whose requests go through boto3, not aiohttp.
    managed: ClassVar[bool] = False

    async def send_managed(
        self,
        level: Level,
        prompt: Prompt,
        clock: RunClock,
        worker_index: int,
        sequence_in_level: int,
        land: Callable[[RequestRow], None],
        intended_ns: int | None = None,
    ) -> RequestRow:
        raise NotImplementedError  # collector.aws.target.ManagedTarget sends them

    @cached_property
    def wire(self) -> ModuleType:
        """The wire-format module of api_style (collector/apis)."""
        return wire_format(self.api_style)

    @cached_property
    def _params_by_max_tokens(self) -> dict[int, InferenceParameters]:
        return {}

    def params_for(self, prompt: Prompt) -> InferenceParameters:
        """The sampling parameters of one prompt: its own max_tokens where it has one (min_tokens capped to it),
        built once per distinct value, so every wire format sends it without knowing prompts have limits."""
        if prompt.max_tokens is None or prompt.max_tokens == self.params.max_tokens:
            return self.params
        cache = self._params_by_max_tokens
        params = cache.get(prompt.max_tokens)
        if params is None:
            update: dict[str, Any] = {"max_tokens": prompt.max_tokens}
            if self.params.min_tokens is not None:
                update["min_tokens"] = min(self.params.min_tokens, prompt.max_tokens)
            params = cache[prompt.max_tokens] = self.params.model_copy(update=update)
        return params

    @cached_property
    def url(self) -> str:
        return request_url(self.base_url, self.api_style, self.served_model_name, self.stream)

    @cached_property
    def request_headers(self) -> dict[str, str]:
        # identity: a compressed reply costs CPU on both ends and lets a proxy hold back SSE events to compress
        # them, distorting TTFT. Decompression stays on for servers that compress anyway.
        return {"Accept-Encoding": "identity", **self.headers}

    @cached_property
    def secrets(self) -> tuple[str, ...]:
        """Credential values in the headers (a bearer token, an API key), as a server might echo them."""
        found: set[str] = set()
        for name, value in self.headers.items():
            lower = name.lower()
            if lower in ("authorization", "proxy-authorization"):
                found.update((value, value.split(None, 1)[-1]))
            elif "key" in lower or "token" in lower or "secret" in lower:
                found.add(value)
        variants = {v for s in found for v in (s, json.dumps(s)[1:-1], s.replace("/", "\\/"))}
        # Longest first, so a whole "Bearer <key>" goes before its key; too-short values would mangle messages.
        return tuple(sorted((v for v in variants if len(v) >= 8), key=len, reverse=True))


@dataclass(frozen=True)
class Level:
    """One (bucket, concurrency) cell of the sweep."""

    payload_file: str
    prompts: Sequence[Prompt]
    concurrency: int  # closed loop: requests kept in flight; open loop: the cap on them
    requests: int
    warmup: int
    target_rate_rps: float | None = None  # set for an open-loop level
    send_offsets_s: Sequence[float] = ()  # an open-loop level's schedule: intended sends, s from its start
    repeat_index: int = 1  # which run of the level this is (an experiment's repeats_per_level)

    @property
    def load_model(self) -> str:
        return "closed" if self.target_rate_rps is None else "rate"

    def share(self, index: int = 0, count: int = 1) -> Share:
        """Share `index` of `count` of this level (collector/shares.py); share 0 of 1 is the whole level."""
        schedule = None if self.target_rate_rps is None else len(self.send_offsets_s)
        return share_of(self.concurrency, self.warmup, self.requests, schedule, index, count)


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:MESSAGE_LIMIT]


def scrub(text: str, secrets: Sequence[str]) -> str:
    """Replace each secret in text by ***, including a prefix of one cut off by truncation at the end."""
    for secret in secrets:
        text = text.replace(secret, "***")
    for secret in secrets:
        for k in range(min(len(secret) - 1, len(text)), 3, -1):
            if text.endswith(secret[:k]):
                return text[:-k] + "***"
    return text


def _client_errno(exc: BaseException) -> int | None:
    """The errno of a host resource fault anywhere in exc's chain (aiohttp wraps the OSError), else None."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return None
        code = getattr(seen, "errno", None)
        if code in CLIENT_ERRNOS:
            return int(code)
        seen = getattr(seen, "os_error", None) or seen.__cause__ or seen.__context__
    return None


def _client_fault(code: int, exc: BaseException) -> str:
    what = os.strerror(code)
    if code in (errno.EMFILE, errno.ENFILE):
        advice = "the collector ran out of file descriptors: raise `ulimit -n` or lower the concurrency"
    elif code == errno.EADDRNOTAVAIL:
        advice = "the collector's host ran out of local ports for new connections"
    else:
        advice = "the collector's host ran out of memory or socket buffers"
    name = errno.errorcode.get(code, str(code))
    return f"client fault, not the endpoint's ({name}: {what}): {advice}; {_short(exc)}"[:MESSAGE_LIMIT]


def client_session(concurrency: int) -> aiohttp.ClientSession:
    """The run's one HTTP client, sized for `concurrency` requests in flight.

    Raises the process's open-file limit first where the hard limit allows, and warns on stderr (one line)
    when it still cannot hold that many sockets.
    """
    warning = raise_open_file_limit(concurrency)
    if warning:
        print(warning, file=sys.stderr)
    connector = aiohttp.TCPConnector(limit=concurrency + 8, limit_per_host=0, ttl_dns_cache=300)
    # Decompression on: it costs nothing on an uncompressed reply (aiohttp adds a decoder only when the
    # reply has a Content-Encoding), and a server or proxy that compresses anyway still gets parsed.
    return aiohttp.ClientSession(connector=connector, auto_decompress=True)


def wire_request_id(request_id: str) -> str:
    """The X-Request-Id sent with a request: a UUID derived from its raw request_id (uuid5 in the URL namespace),
    since some servers (llama-cpp-python's) refuse any other shape there with a bare 400."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, request_id))


async def send_one(
    session: aiohttp.ClientSession,
    target: Target,
    level: Level,
    prompt: Prompt,
    clock: RunClock,
    worker_index: int,
    sequence_in_level: int,
    land: Callable[[RequestRow], None],
    intended_ns: int | None = None,
) -> RequestRow:
    """Send one request, land it as one raw row and return the row. `intended_ns` (perf counter) is when an
    open-loop schedule meant to send it.

    Every failure becomes an error row; only cancellation propagates, after its row has landed.
    """
    if target.managed:  # Bedrock, SageMaker: through boto3 in a worker thread
        return await target.send_managed(level, prompt, clock, worker_index, sequence_in_level, land, intended_ns)
    # Serialised before the clock starts: TTFT should time the endpoint, not our JSON encoder.
    wire = target.wire
    body = json.dumps(
        wire.request_body(target.api_style, target.served_model_name, prompt, target.params_for(prompt), target.stream)
    ).encode()
    state = wire.StreamState(target.api_style)
    out = RequestOutcome(request_id=clock.request_id(target.run_id), state=state)
    # The id travels as X-Request-Id, so a server's logs and traces can be joined to the raw row.
    headers = {**target.request_headers, "X-Request-Id": wire_request_id(out.request_id)}
    out.started_ns = time.time_ns()
    t0 = time.perf_counter_ns()
    try:
        async with session.post(target.url, data=body, headers=headers, timeout=target.timeout) as resp:
            out.http_status = resp.status
            if resp.status >= 300:
                detail = (await resp.content.read(ERROR_BODY_LIMIT)).decode("utf-8", "replace")
                out.fail("http_error", f"HTTP {resp.status}: {detail.strip()}"[:MESSAGE_LIMIT])
            elif target.stream:
                # Read whatever arrived and split it into lines ourselves (cheaper than line iteration), and
                # read to the end: a body left unread after [DONE] would cost the connection its reuse.
                pending = b""
                received = 0
                sse = wire.SSE  # else jsonlines: every non-blank line is an event
                offsets = out.content_offsets_ns = []
                async for data in resp.content.iter_any():
                    now = time.perf_counter_ns() - t0
                    received += len(data)
                    lines = (pending + data).split(b"\n")
                    pending = lines.pop()
                    for line in lines:
                        if sse:
                            if not line.startswith(b"data:"):
                                continue  # event separators, comments
                        elif not line.strip():
                            continue
                        if out.first_chunk_ns is None:
                            out.first_chunk_ns = now
                        if state.feed(line):
                            out.last_content_ns = now
                            if out.first_content_ns is None:
                                out.first_content_ns = now
                            if len(offsets) < MAX_CHUNK_OFFSETS:
                                offsets.append(now)
                    # Checked per read, not per event: a line can exceed the bound by at most one read.
                    if len(pending) > MAX_EVENT_BYTES or received > MAX_RESPONSE_BYTES:
                        resp.close()  # drop the connection rather than read the rest
                        raise MalformedResponse(_oversized(len(pending), received))
                if pending:
                    state.feed(pending)
                if not state.complete:
                    out.fail(
                        "stream_cut", f"stream ended after {state.chunk_count} events without {_END[target.api_style]}"
                    )
            else:
                out.text, out.finish_reason, out.usage = wire.parse_completion(
                    await _read_bounded(resp), target.api_style
                )
    except asyncio.CancelledError:
        out.fail("cancelled", "run interrupted before the response completed")
        raise
    except TimeoutError as exc:
        out.fail("timeout", f"no complete response within {target.timeout.total} s ({_short(exc)})"[:MESSAGE_LIMIT])
    except aiohttp.ClientConnectorError as exc:
        code = _client_errno(exc)
        if code is None:
            out.fail("connect_error", _short(exc))
        else:
            out.fail("client_error", _client_fault(code, exc))
    except aiohttp.ClientPayloadError as exc:
        out.fail("stream_cut", _short(exc))
    except MalformedResponse as exc:
        out.fail("malformed_response", str(exc)[:MESSAGE_LIMIT])
    except StreamError as exc:
        out.fail("http_error", f"error event: {exc}"[:MESSAGE_LIMIT])
    except aiohttp.ClientResponseError as exc:  # e.g. an unparsable status line or headers
        out.fail("malformed_response", _short(exc))
    except (aiohttp.ClientError, OSError) as exc:  # ServerDisconnectedError, ClientOSError, ConnectionError, ...
        code = _client_errno(exc)
        if code is None:
            out.fail("connection_reset", _short(exc))
        else:
            out.fail("client_error", _client_fault(code, exc))
    except Exception as exc:  # nothing but cancellation may escape a request (e.g. aiohttp refusing a header)
        out.fail(
            "client_error", f"the collector failed on this request, not the endpoint: {_short(exc)}"[:MESSAGE_LIMIT]
        )
    finally:
        end = time.perf_counter_ns()
        out.start_offset_ns, out.e2e_ns = clock.offset_ns(t0), end - t0
        if intended_ns is not None:
            out.intended_offset_ns = clock.offset_ns(intended_ns)
        if target.stream:
            out.text, out.finish_reason, out.usage = state.text(), state.finish_reason, state.usage
        if out.error_message is not None and target.secrets:
            out.error_message = scrub(out.error_message, target.secrets)
        row = out.row(target, level, prompt, worker_index, sequence_in_level)
        land(row)
    return row


# What marks a whole stream, per api_style (Triton's has no marker: a cleanly ended body is whole).
_END = {
    "completions": "[DONE] or finish_reason",
    "chat": "[DONE] or finish_reason",
    "tgi": "the final event (generated_text, details)",
    "djl": "the final line (generated_text, details)",
    "triton": "its end",
}


def _oversized(line_bytes: int, received: int) -> str:
    if received > MAX_RESPONSE_BYTES:
        return f"response longer than {MAX_RESPONSE_BYTES} bytes; stopped reading"
    return f"SSE line longer than {MAX_EVENT_BYTES} bytes ({line_bytes} bytes without a newline); stopped reading"


async def _read_bounded(resp: aiohttp.ClientResponse) -> bytes:
    """The whole body, or MalformedResponse as soon as it is known to pass MAX_RESPONSE_BYTES."""
    if resp.content_length is not None and resp.content_length > MAX_RESPONSE_BYTES:
        resp.close()
        raise MalformedResponse(f"response of {resp.content_length} bytes exceeds {MAX_RESPONSE_BYTES}; not read")
    parts = []
    received = 0
    async for data in resp.content.iter_any():
        received += len(data)
        if received > MAX_RESPONSE_BYTES:
            resp.close()
            raise MalformedResponse(_oversized(0, received))
        parts.append(data)
    return b"".join(parts)


@dataclass(slots=True)
class RequestOutcome:
    """What became of one request, filled in by send_one as it proceeds (its `finally` sets the end timings and
    the reply); `row` makes it the request's one raw row. The `*_ns` durations count from the send (perf counter)."""

    request_id: str
    state: StreamStateBase  # the wire format's stream state: event counts (and a streamed reply)
    started_ns: int = 0  # wall clock at send
    start_offset_ns: int = 0  # perf counter at send, since the run started
    e2e_ns: int = 0
    first_chunk_ns: int | None = None
    first_content_ns: int | None = None
    last_content_ns: int | None = None
    content_offsets_ns: list[int] | None = None  # each content chunk's arrival, when streamed
    status: str = "success"
    http_status: int | None = None
    error_type: str | None = None
    error_message: str | None = None
    text: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    intended_offset_ns: int | None = None  # an open-loop send's intended time, since the run started
    # Managed AWS endpoints only (collector/aws): throttling retries, the service's latency and request id.
    retry_count: int | None = None
    retry_wait_ns: int | None = None
    last_attempt_offset_ns: int | None = None
    server_latency_ms: int | None = None
    service_request_id: str | None = None

    def fail(self, error_type: str, message: str) -> None:
        self.status, self.error_type, self.error_message = "error", error_type, message

    def row(
        self, target: Target, level: Level, prompt: Prompt, worker_index: int, sequence_in_level: int
    ) -> RequestRow:
        """The raw row of this request, sent by worker `worker_index` as the level's `sequence_in_level`th."""
        usage, state = self.usage, self.state
        client_completion = target.counter.count(self.text) if (self.text or self.status == "success") else None
        server_prompt = usage.prompt_tokens if usage is not None else None
        server_completion = usage.completion_tokens if usage is not None else None
        # Each count is the server's where it gave one (TGI's /generate and DJL report only generated tokens); the
        # row says "server" when its completion count is the server's.
        from_server = server_completion is not None
        return RequestRow(
            run_id=target.run_id,
            request_id=self.request_id,
            experiment_name=target.experiment_name,
            model_id=target.model_id,
            endpoint_type=target.endpoint_type,
            endpoint_url=target.url,
            api_style=target.api_style,
            is_streaming=target.stream,
            instance_type=target.instance_type,
            instance_count=target.instance_count,
            payload_file=level.payload_file,
            prompt_index=prompt.index,
            concurrency=level.concurrency,
            worker_index=worker_index,
            sequence_in_level=sequence_in_level,
            is_warmup=sequence_in_level < level.warmup,
            max_tokens=target.params_for(prompt).max_tokens,
            started_at=iso_utc(self.started_ns),
            start_offset_ns=self.start_offset_ns,
            e2e_ns=self.e2e_ns,
            first_chunk_ns=self.first_chunk_ns,
            first_content_ns=self.first_content_ns,
            last_content_ns=self.last_content_ns,
            chunk_count=state.chunk_count,
            content_chunk_count=state.content_chunk_count,
            status=self.status,
            http_status=self.http_status,
            error_type=self.error_type,
            error_message=self.error_message,
            finish_reason=self.finish_reason,
            prompt_tokens=server_prompt if server_prompt is not None else prompt.client_tokens,
            completion_tokens=server_completion if from_server else client_completion,
            token_count_source="server" if from_server else "client",
            client_prompt_tokens=prompt.client_tokens,
            client_completion_tokens=client_completion,
            token_counter=target.counter.name,
            data_issue=usage.issue if usage is not None else None,
            server_prompt_tokens=server_prompt,
            server_completion_tokens=server_completion,
            content_chunk_offsets_ns=self.content_offsets_ns,
            load_model=level.load_model,
            target_rate_rps=level.target_rate_rps,
            intended_offset_ns=self.intended_offset_ns,
            retry_count=self.retry_count,
            retry_wait_ns=self.retry_wait_ns,
            last_attempt_offset_ns=self.last_attempt_offset_ns,
            server_latency_ms=self.server_latency_ms,
            service_request_id=self.service_request_id,
            repeat_index=level.repeat_index,
            shard_index=target.shard_index,
            shard_count=target.shard_count,
        )


@dataclass
class LevelProgress:
    """A level's requests so far, and the one that finished last (what a live progress line shows of it)."""

    done: int = 0
    errors: int = 0
    last_e2e_ns: int = 0
    last_error_type: str | None = None  # None when the last request succeeded
    last_is_warmup: bool = False
    # The measured requests' span and their successes' (sequence, TTFT else end-to-end latency): a sweep's rates
    # and its saturation test (collector/load_models.py) come from them.
    first_start_ns: int | None = None
    last_end_ns: int | None = None
    successes: list[tuple[int, float]] = field(default_factory=list)

    def record(
        self,
        seq: int,
        is_warmup: bool,
        error_type: str | None,
        e2e_ns: int,
        start_offset_ns: int | None,
        first_content_ns: int | None,
    ) -> None:
        """Count one finished request (error_type None: it succeeded); `seq` is its sequence_in_level."""
        failed = error_type is not None
        self.done += 1
        self.errors += failed
        self.last_e2e_ns = e2e_ns
        self.last_error_type = error_type
        self.last_is_warmup = is_warmup
        if not is_warmup and start_offset_ns is not None:
            end = start_offset_ns + e2e_ns
            if self.first_start_ns is None or start_offset_ns < self.first_start_ns:
                self.first_start_ns = start_offset_ns
            if self.last_end_ns is None or end > self.last_end_ns:
                self.last_end_ns = end
            if not failed:
                ttft = first_content_ns if first_content_ns is not None else e2e_ns
                self.successes.append((seq, ttft / 1e9))

    def request_rate(self) -> float | None:
        """Measured successes per second over the measured requests' span."""
        if self.first_start_ns is None or self.last_end_ns is None or self.last_end_ns <= self.first_start_ns:
            return None
        return len(self.successes) / ((self.last_end_ns - self.first_start_ns) / 1e9)


async def run_level(
    session: aiohttp.ClientSession,
    target: Target,
    level: Level,
    clock: RunClock,
    land: Callable[[RequestRow], None],
    stop: asyncio.Event,
    on_progress: Callable[[LevelProgress], None] | None = None,
    after_warmup: Callable[[], Awaitable[int | None]] | None = None,
    share: Share | None = None,
) -> LevelProgress:
    """Send the level's warm-up requests and wait for all of them, then its measured requests: a closed loop
    keeps exactly `level.concurrency` in flight until they are all sent; an open loop (`level.target_rate_rps`)
    sends each at its scheduled time, at most `level.concurrency` in flight. A warm-up still running would hold a
    slot during the measured window and lower its throughput.

    Setting `stop` lets in-flight requests finish and sends no more; cancelling the task lands each
    in-flight request as a `cancelled` row. `after_warmup` is awaited between the phases, with nothing in flight
    (the server-metrics scrape at the measured window's start); when it returns a perf-counter instant, the
    measured phase (an open loop's schedule) starts then.

    `share` (collector/shares.py) sends only that part of the level, as one of several client processes; the
    level's `concurrency` is then the whole level's, and the rows' worker_index and sequence_in_level are the
    whole level's numbering.
    """
    progress = LevelProgress()
    prompts = level.prompts
    offsets = level.send_offsets_s
    part = share or level.share()

    def count(row: RequestRow, seq: int) -> None:
        failed = row.status != "success"
        error_type = (row.error_type or "error") if failed else None
        progress.record(seq, seq < level.warmup, error_type, row.e2e_ns, row.start_offset_ns, row.first_content_ns)
        if on_progress is not None:
            on_progress(progress)

    async def phase(sequences: range | SlotSequences) -> None:
        jobs = iter(sequences)  # shared by the phase's workers: the next free worker takes the next job

        async def worker(worker_index: int) -> None:
            for seq in jobs:
                if stop.is_set():
                    return
                prompt = prompts[seq % len(prompts)]
                count(await send_one(session, target, level, prompt, clock, worker_index, seq, land), seq)

        workers = min(part.workers, len(sequences))
        await asyncio.gather(*(worker(part.worker_offset + w) for w in range(workers)))

    async def scheduled(start_ns: int) -> None:
        slots = asyncio.Semaphore(part.workers)
        in_flight: set[asyncio.Task[None]] = set()

        async def send(seq: int, intended_ns: int) -> None:
            try:
                prompt = prompts[seq % len(prompts)]
                # worker_index: the request's place in the schedule (an open loop has no workers)
                count(
                    await send_one(session, target, level, prompt, clock, seq - level.warmup, seq, land, intended_ns),
                    seq,
                )
            finally:
                slots.release()

        try:
            for i in part.measured:
                intended_ns = start_ns + round(offsets[i] * 1e9)
                await sleep_until(intended_ns, stop)
                await slots.acquire()  # a send that waits for a slot is late: its row shows by how much
                if stop.is_set():
                    slots.release()
                    break
                task = asyncio.ensure_future(send(level.warmup + i, intended_ns))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            if in_flight:
                await asyncio.gather(*in_flight)
        except asyncio.CancelledError:
            for task in in_flight:
                task.cancel()  # each lands its `cancelled` row
            await asyncio.gather(*in_flight, return_exceptions=True)
            raise

    await phase(part.warmup)
    start_ns = None
    if level.target_rate_rps is None and target.prime_url is not None and not stop.is_set():
        await open_connections(session, target.prime_url, target.headers, min(part.workers, len(part.measured)))
    if after_warmup is not None and not stop.is_set():
        start_ns = await after_warmup()
    if level.target_rate_rps is None:
        if start_ns is not None:  # the measured phase starts at an instant shared with the level's other shares
            await sleep_until(start_ns, stop)
        await phase(part.measured)
    elif not stop.is_set():
        await scheduled(time.perf_counter_ns() + SCHEDULE_LEAD_NS if start_ns is None else start_ns)
    return progress


async def open_connections(session: aiohttp.ClientSession, url: str, headers: dict[str, str], count: int) -> None:
    """Leave `count` open connections in the session's pool, by `count` GETs of `url` at once, so a closed-loop
    level's first round is not timed with its TCP (and TLS) set-up, which a client with a warm pool, as in
    production, does not pay, and its workers start sending together. Best effort: a route that fails or a
    server that closes its connections only leaves the first round to connect, as it did before."""

    async def get() -> None:
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
            async with session.get(url, headers=headers, timeout=PRIME_TIMEOUT) as resp:
                await resp.read()

    if count > 1:
        await asyncio.gather(*(get() for _ in range(count)))


PRIME_TIMEOUT = aiohttp.ClientTimeout(total=10)
SCHEDULE_LEAD_NS = 1_000_000  # the first scheduled send, after the schedule is drawn up
SPIN_NS = 2_000_000  # the last stretch before a send is waited by yielding, not sleeping (the loop's timer is coarse)


async def sleep_until(perf_ns: int, stop: asyncio.Event) -> None:
    """Wait until the perf counter reads `perf_ns`, or `stop` is set: asleep until about 2 ms before (epoll's
    timeout has a 1 ms resolution), then yielding to the loop until it is time, so a send leaves within one loop
    turn of it."""
    remaining = perf_ns - time.perf_counter_ns()
    if remaining > SPIN_NS:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), (remaining - SPIN_NS) / 1e9)
    while time.perf_counter_ns() < perf_ns and not stop.is_set():  # noqa: ASYNC110 - a spin, on purpose
        await asyncio.sleep(0)
