"""The closed-loop load generator: `concurrency` workers, each sending its next request as soon as
its last one finished, every request landing as exactly one raw row whatever happens to it.

The HTTP client is aiohttp: it met the client-overhead targets where httpx did not
(see benchmarks/client_overhead.py and the README's "Client overhead").
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiohttp

from collector.clock import RunClock, iso_utc
from collector.config import InferenceParameters
from collector.openai_api import (
    MalformedResponse,
    StreamError,
    StreamState,
    parse_completion,
    request_body,
    request_path,
)
from collector.payloads import Prompt
from collector.schema import RequestRow
from collector.tokens import TokenCounter

ERROR_BODY_LIMIT = 300
MESSAGE_LIMIT = 500


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

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + request_path(self.api_style)


@dataclass(frozen=True)
class Level:
    """One (bucket, concurrency) cell of the sweep."""

    payload_file: str
    prompts: Sequence[Prompt]
    concurrency: int
    requests: int
    warmup: int


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:MESSAGE_LIMIT]


async def send_one(
    session: aiohttp.ClientSession,
    target: Target,
    level: Level,
    prompt: Prompt,
    clock: RunClock,
    worker_index: int,
    sequence_in_level: int,
    land: Callable[[RequestRow], None],
) -> RequestRow:
    """Send one request, land it as one raw row and return the row.

    Every failure becomes an error row; only cancellation propagates, after its row has landed.
    """
    # Serialised before the clock starts: TTFT should time the endpoint, not our JSON encoder.
    body = json.dumps(
        request_body(target.api_style, target.served_model_name, prompt, target.params, target.stream)
    ).encode()
    state = StreamState(target.api_style)
    status, http_status, error_type, error_message = "success", None, None, None
    first_chunk = first_content = last_content = None
    text, finish_reason, usage = "", None, None
    request_id = f"{target.run_id}:{clock.next_seq()}"
    # The id travels as X-Request-Id, so a server's logs and traces can be joined to the raw row.
    headers = {**target.headers, "X-Request-Id": request_id}
    started_ns = time.time_ns()
    t0 = time.perf_counter_ns()
    try:
        async with session.post(target.url, data=body, headers=headers, timeout=target.timeout) as resp:
            http_status = resp.status
            if resp.status >= 300:
                detail = (await resp.content.read(ERROR_BODY_LIMIT)).decode("utf-8", "replace")
                status, error_type = "error", "http_error"
                error_message = f"HTTP {resp.status}: {detail.strip()}"[:MESSAGE_LIMIT]
            elif target.stream:
                # Read whatever arrived and split it into lines ourselves (cheaper than line iteration), and
                # read to the end: a body left unread after [DONE] would cost the connection its reuse.
                pending = b""
                async for data in resp.content.iter_any():
                    now = time.perf_counter_ns() - t0
                    lines = (pending + data).split(b"\n")
                    pending = lines.pop()
                    for line in lines:
                        if not line.startswith(b"data:"):
                            continue  # event separators, comments
                        if first_chunk is None:
                            first_chunk = now
                        if state.feed(line):
                            last_content = now
                            if first_content is None:
                                first_content = now
                if pending:
                    state.feed(pending)
                if not state.complete:
                    status, error_type = "error", "stream_cut"
                    error_message = f"stream ended after {state.chunk_count} events without [DONE] or finish_reason"
            else:
                text, finish_reason, usage = parse_completion(await resp.read(), target.api_style)
    except asyncio.CancelledError:
        status, error_type, error_message = "error", "cancelled", "run interrupted before the response completed"
        raise
    except TimeoutError as exc:
        status, error_type = "error", "timeout"
        error_message = f"no complete response within {target.timeout.total} s ({_short(exc)})"[:MESSAGE_LIMIT]
    except aiohttp.ClientConnectorError as exc:
        status, error_type, error_message = "error", "connect_error", _short(exc)
    except aiohttp.ClientPayloadError as exc:
        status, error_type, error_message = "error", "stream_cut", _short(exc)
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, ConnectionError) as exc:
        status, error_type, error_message = "error", "connection_reset", _short(exc)
    except MalformedResponse as exc:
        status, error_type, error_message = "error", "malformed_response", str(exc)[:MESSAGE_LIMIT]
    except StreamError as exc:
        status, error_type, error_message = "error", "http_error", f"error event: {exc}"[:MESSAGE_LIMIT]
    except aiohttp.ClientResponseError as exc:  # e.g. an unparsable status line or headers
        status, error_type, error_message = "error", "malformed_response", _short(exc)
    except aiohttp.ClientError as exc:
        status, error_type, error_message = "error", "connection_reset", _short(exc)
    finally:
        end = time.perf_counter_ns()
        if target.stream:
            text, finish_reason, usage = state.text(), state.finish_reason, state.usage
        row = _row(
            target, level, prompt, request_id, worker_index, sequence_in_level, started_ns,
            clock.offset_ns(t0), end - t0, first_chunk, first_content, last_content, state, status,
            http_status, error_type, error_message, finish_reason, usage, text,
        )  # fmt: skip
        land(row)
    return row


def _row(
    target: Target,
    level: Level,
    prompt: Prompt,
    request_id: str,
    worker_index: int,
    sequence_in_level: int,
    started_ns: int,
    start_offset_ns: int,
    e2e_ns: int,
    first_chunk: int | None,
    first_content: int | None,
    last_content: int | None,
    state: StreamState,
    status: str,
    http_status: int | None,
    error_type: str | None,
    error_message: str | None,
    finish_reason: str | None,
    usage: object,
    text: str,
) -> RequestRow:
    client_completion = target.counter.count(text) if (text or status == "success") else None
    server_prompt = getattr(usage, "prompt_tokens", None)
    server_completion = getattr(usage, "completion_tokens", None)
    from_server = server_prompt is not None and server_completion is not None
    return RequestRow(
        run_id=target.run_id,
        request_id=request_id,
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
        max_tokens=target.params.max_tokens,
        started_at=iso_utc(started_ns),
        start_offset_ns=start_offset_ns,
        e2e_ns=e2e_ns,
        first_chunk_ns=first_chunk,
        first_content_ns=first_content,
        last_content_ns=last_content,
        chunk_count=state.chunk_count,
        content_chunk_count=state.content_chunk_count,
        status=status,
        http_status=http_status,
        error_type=error_type,
        error_message=error_message,
        finish_reason=finish_reason,
        prompt_tokens=server_prompt if from_server else prompt.client_tokens,
        completion_tokens=server_completion if from_server else client_completion,
        token_count_source="server" if from_server else "client",
        client_prompt_tokens=prompt.client_tokens,
        client_completion_tokens=client_completion,
        token_counter=target.counter.name,
    )


@dataclass
class LevelProgress:
    done: int = 0
    errors: int = 0


async def run_level(
    session: aiohttp.ClientSession,
    target: Target,
    level: Level,
    clock: RunClock,
    land: Callable[[RequestRow], None],
    stop: asyncio.Event,
    on_progress: Callable[[LevelProgress], None] | None = None,
) -> LevelProgress:
    """Keep exactly `level.concurrency` requests in flight until warm-up + measured requests are sent.

    Setting `stop` lets in-flight requests finish and sends no more; cancelling the task lands each
    in-flight request as a `cancelled` row.
    """
    total = level.warmup + level.requests
    jobs = iter(range(total))  # shared by all workers: the next free worker takes the next job
    progress = LevelProgress()
    prompts = level.prompts

    async def worker(worker_index: int) -> None:
        for seq in jobs:
            if stop.is_set():
                return
            prompt = prompts[seq % len(prompts)]
            row = await send_one(session, target, level, prompt, clock, worker_index, seq, land)
            progress.done += 1
            progress.errors += row.status != "success"
            if on_progress is not None:
                on_progress(progress)

    await asyncio.gather(*(worker(w) for w in range(min(level.concurrency, total))))
    return progress
