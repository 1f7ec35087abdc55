"""Requests to a managed endpoint: boto3 calls run in worker threads (one per request in flight), timed with the
perf counter around the SDK's own parsing, throttling retried with bounded backoff, one raw row per request.

Why threads and not aiohttp: botocore then signs, sends and decodes the event stream itself, so what is measured is
what an application using the SDK sees; TTFT is taken when the first event with text is yielded to us.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

from collector.apis import wire_format
from collector.apis.common import MalformedResponse, StreamError, StreamStateBase
from collector.aws.bedrock import ConverseStreamState, converse_request, parse_converse
from collector.aws.client import AwsFailure, backoff_s, failure_of
from collector.clock import RunClock
from collector.loadgen import MAX_CHUNK_OFFSETS, MESSAGE_LIMIT, Level, RequestOutcome, Target
from collector.payloads import Prompt
from collector.schema import RequestRow


@dataclass(frozen=True)
class ManagedTarget(Target):
    """A Target whose requests go through a boto3 client (`kind` bedrock or sagemaker) instead of aiohttp."""

    managed: ClassVar[bool] = True
    kind: str = "bedrock"
    client: Any = None
    model_arg: str = ""  # Bedrock modelId, or the SageMaker endpoint name
    system_prompt: str | None = None
    invoke_url: str = ""  # what the rows record as endpoint_url
    max_retries: int = 5
    retry_base_s: float = 0.5
    retry_max_s: float = 20.0
    request_timeout_s: float = 120.0
    threads: int = 1
    on_fatal: Callable[[str], None] | None = None
    describe: str = ""  # "Bedrock model X", "SageMaker endpoint Y": the subject of a fatal line
    _rng: random.Random = field(default_factory=lambda: random.Random(0))

    @cached_property
    def url(self) -> str:
        return self.invoke_url

    @cached_property
    def executor(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix=f"tokenbench-{self.kind}")

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)

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
        """Send one request in a worker thread, land its row and return it (only cancellation propagates, after
        its row landed; the thread is told to stop reading and ends on its own)."""
        out = RequestOutcome(request_id=clock.request_id(self.run_id), state=self._state())
        if intended_ns is not None:  # an open-loop send's scheduled time
            out.intended_offset_ns = clock.offset_ns(intended_ns)
        cancel = threading.Event()
        loop = asyncio.get_running_loop()
        fatal: str | None = None
        try:
            fatal = await loop.run_in_executor(self.executor, self._call, out, prompt, clock, cancel)
        except asyncio.CancelledError:
            cancel.set()
            if out.started_ns == 0:  # the thread had not started it
                out.started_ns, out.start_offset_ns = time.time_ns(), clock.offset_ns(time.perf_counter_ns())
            out.e2e_ns = clock.offset_ns(time.perf_counter_ns()) - out.start_offset_ns
            out.fail("cancelled", "run interrupted before the response completed")
            land(self._row(out, level, prompt, worker_index, sequence_in_level))
            raise
        row = self._row(out, level, prompt, worker_index, sequence_in_level)
        land(row)
        if fatal is not None and self.on_fatal is not None:
            self.on_fatal(fatal)
        return row

    def _row(self, out: RequestOutcome, level: Level, prompt: Prompt, worker: int, seq: int) -> RequestRow:
        if self.stream or out.text == "":
            out.text = out.text or out.state.text()
            out.finish_reason = out.finish_reason or out.state.finish_reason
            out.usage = out.usage if out.usage is not None else out.state.usage
        if out.content_offsets_ns is not None:
            out.content_offsets_ns = list(out.content_offsets_ns)
        return out.row(self, level, prompt, worker, seq)

    def _state(self) -> StreamStateBase:
        if self.kind == "bedrock":
            return ConverseStreamState("converse")
        return wire_format(self.api_style).StreamState(self.api_style)

    # The worker thread's part.

    def _call(self, out: RequestOutcome, prompt: Prompt, clock: RunClock, cancel: threading.Event) -> str | None:
        """Attempts until one is not throttled (or retries run out); fills `out`. Returns a fatal line or None.
        The clock starts here, in the worker thread, so the hand-off to the thread is not timed."""
        out.retry_count, out.retry_wait_ns = 0, 0
        out.started_ns = time.time_ns()
        t0 = time.perf_counter_ns()
        out.start_offset_ns = clock.offset_ns(t0)
        fatal = None
        try:
            while True:
                out.last_attempt_offset_ns = time.perf_counter_ns() - t0 if out.retry_count else 0
                try:
                    self._attempt(out, prompt, t0, cancel)
                    return None
                except Exception as exc:
                    failure = _failure(exc)
                    if failure is None:
                        _fail_locally(out, exc, t0)
                        return None
                    if failure.is_throttling and out.retry_count < self.max_retries and not cancel.is_set():
                        delay = backoff_s(out.retry_count, self.retry_base_s, self.retry_max_s, self._rng)
                        waited = time.perf_counter_ns()
                        cancel.wait(delay)
                        out.retry_wait_ns += time.perf_counter_ns() - waited
                        out.retry_count += 1
                        out.state = self._state()  # a throttled attempt delivered nothing
                        continue
                    out.http_status = failure.http_status if failure.http_status is not None else out.http_status
                    tries = f" (after {out.retry_count} retries)" if out.retry_count else ""
                    out.fail(failure.error_type, f"{failure.describe()}{tries}"[:MESSAGE_LIMIT])
                    if failure.is_fatal:
                        fatal = f"{self.describe}: {failure.describe()}"[:MESSAGE_LIMIT]
                    return fatal
        finally:
            out.e2e_ns = time.perf_counter_ns() - t0

    def _attempt(self, out: RequestOutcome, prompt: Prompt, t0: int, cancel: threading.Event) -> None:
        params = self.params_for(prompt)
        if self.kind == "bedrock":
            kwargs = converse_request(self.model_arg, prompt, params, self.system_prompt)
            if not self.stream:
                reply = self.client.converse(**kwargs)
                _metadata(out, reply)
                out.text, out.finish_reason, out.usage, out.server_latency_ms = parse_converse(reply)
                return
            reply = self.client.converse_stream(**kwargs)
            _metadata(out, reply)
            state = out.state
            assert isinstance(state, ConverseStreamState)
            try:
                self._read_events(out, reply["stream"], t0, cancel, lambda event: int(state.feed_event(event)))
            finally:
                out.server_latency_ms = state.latency_ms
            return
        wire = wire_format(self.api_style)
        body = json.dumps(wire.request_body(self.api_style, self.served_model_name, prompt, params, self.stream))
        common = {"EndpointName": self.model_arg, "Body": body.encode(), "ContentType": "application/json"}
        if not self.stream:
            reply = self.client.invoke_endpoint(Accept="application/json", **common)
            _metadata(out, reply)
            out.text, out.finish_reason, out.usage = wire.parse_completion(reply["Body"].read(), self.api_style)
            return
        reply = self.client.invoke_endpoint_with_response_stream(**common)
        _metadata(out, reply)
        feeder = _LineFeeder(out.state, wire.SSE)
        self._read_events(out, reply["Body"], t0, cancel, feeder.feed)
        feeder.flush()

    def _read_events(
        self,
        out: RequestOutcome,
        stream: Any,
        t0: int,
        cancel: threading.Event,
        feed: Callable[[Any], int],
    ) -> None:
        """Read an event stream to its end, timing each event as botocore yields it; `feed` returns how many
        content chunks the event completed."""
        offsets = out.content_offsets_ns = []
        deadline = t0 + int(self.request_timeout_s * 1e9)
        try:
            for event in stream:
                now = time.perf_counter_ns()
                if out.first_chunk_ns is None:
                    out.first_chunk_ns = now - t0
                if feed(event):
                    out.last_content_ns = now - t0
                    if out.first_content_ns is None:
                        out.first_content_ns = now - t0
                    if len(offsets) < MAX_CHUNK_OFFSETS:
                        offsets.append(now - t0)
                if cancel.is_set():
                    return
                if now > deadline:
                    out.fail("timeout", f"no complete response within {self.request_timeout_s:g} s")
                    return
        finally:
            stream.close()
        if not out.state.complete:  # type: ignore[attr-defined]  # every format's state has it
            out.fail("stream_cut", f"stream ended after {out.state.chunk_count} events without its end event")


class _LineFeeder:
    """SageMaker's PayloadParts carry whatever the container flushed: lines cut anywhere. Joins them and feeds
    whole lines to the container format's stream state (SSE `data:` lines, or JSON lines)."""

    def __init__(self, state: StreamStateBase, sse: bool) -> None:
        self.state, self.sse, self.pending = state, sse, b""

    def feed(self, event: Any) -> int:
        part = event.get("PayloadPart") if type(event) is dict else None
        data = part.get("Bytes") if type(part) is dict else None
        if type(data) is not bytes:
            raise MalformedResponse(f"event is not a PayloadPart: {str(event)[:80]}")
        lines = (self.pending + data).split(b"\n")
        self.pending = lines.pop()
        return sum(self._line(line) for line in lines)

    def _line(self, line: bytes) -> int:
        if self.sse and not line.startswith(b"data:"):
            return 0
        if not self.sse and not line.strip():
            return 0
        return int(self.state.feed(line))  # type: ignore[attr-defined]

    def flush(self) -> None:
        if self.pending.strip():
            self._line(self.pending)
            self.pending = b""


def _metadata(out: RequestOutcome, reply: dict[str, Any]) -> None:
    meta = reply.get("ResponseMetadata") or {}
    out.http_status = meta.get("HTTPStatusCode")
    out.service_request_id = meta.get("RequestId") or None


def _failure(exc: Exception) -> AwsFailure | None:
    from botocore.exceptions import ClientError

    return failure_of(exc) if isinstance(exc, ClientError) else None


def _fail_locally(out: RequestOutcome, exc: Exception, t0: int) -> None:
    """A failure that is not an AWS error reply: the connection, a timeout, a reply we cannot read, or our own."""
    from botocore import exceptions as bx

    text = f"{type(exc).__name__}: {exc}"[:MESSAGE_LIMIT]
    if isinstance(exc, bx.ReadTimeoutError | bx.ConnectTimeoutError):
        out.fail("timeout", text)
    elif isinstance(exc, bx.EndpointConnectionError):
        out.fail("connect_error", text)
    elif isinstance(exc, bx.ConnectionClosedError | bx.ResponseStreamingError | ConnectionError):
        out.fail("stream_cut" if out.first_chunk_ns is not None else "connection_reset", text)
    elif isinstance(exc, MalformedResponse | bx.ResponseParserError | ValueError):
        out.fail("malformed_response", text)
    elif isinstance(exc, StreamError):
        out.fail("http_error", f"error event: {exc}"[:MESSAGE_LIMIT])
    else:
        out.fail("client_error", f"the collector failed on this request, not the endpoint: {text}"[:MESSAGE_LIMIT])
