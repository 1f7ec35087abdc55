"""Real HTTP servers on 127.0.0.1 for tests: one that misbehaves on request, chosen by the `model` field.

It also speaks TGI (/generate, /generate_stream), DJL (/invocations) and Triton (/v2/models/<m>/generate…) under
a first path segment that names the mode (NATIVE_MODES): base URL http://127.0.0.1:PORT/<mode>.
`GET /stats` answers what the server itself saw: POSTs per mode, the Accept-Encoding headers sent and the last
request bodies, so fault tests can count what landed against what was served.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import urllib.request
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# JSON of the wrong shape: streamed as the second event, or as the whole non-streaming body
BAD_SHAPES = ("bad-delta-str", "bad-delta-int", "bad-usage-str", "bad-finish-int", "bad-choices-str", "deep")
# "ok", but with usage values that are not token counts
BAD_USAGE = ("usage-negative", "usage-3e9", "usage-1e30", "usage-bool", "usage-string")
MODES = (
    "ok",  # a proper SSE stream (or JSON when not streaming) with usage
    "slow",  # "ok" after 0.3 s, so that many requests are in flight at once
    "http-500",  # a 500 with an OpenAI-style error body
    "echo-auth",  # a 401 whose body echoes the Authorization header, as some gateways do
    "bad-json",  # 200 whose body is not JSON
    "bad-sse",  # 200 SSE whose second event is not JSON
    "error-event",  # 200 SSE carrying an error object mid-stream
    "cut",  # chunked SSE that stops mid-body: the connection closes before the terminating chunk
    "cut-clean",  # close-delimited SSE that ends after two tokens without finish_reason or [DONE]
    "reset",  # the connection closes right after the request is read, no response
    "hang",  # headers never come
    "gzip",  # "ok" with the body (JSON or the SSE stream, flushed per event) gzip-compressed
    "deflate",  # the same, zlib-deflated
    "huge-line-once",  # the first request of this mode gets 100 MiB without a newline (SSE or JSON); later ones "ok"
    "huge-length",  # 200 JSON announcing a 100 MiB Content-Length, then 1 MiB of it and a stall
    *BAD_SHAPES,
    *BAD_USAGE,
)

# Modes of the native formats (tgi, djl, triton)
NATIVE_MODES = (
    "ok",  # three tokens " one two three" and the server's counts (prompt 7 where the format has it, completion 3)
    "bad-json",  # the body (or the second event) is not JSON
    "bad-shape",  # JSON of the wrong shape: a token that is a string, a text that is a number
    "error-event",  # an error reported mid-stream (or in a 200 body)
    "cut",  # the connection drops after the first token
    "usage-negative",  # "ok" with a completion count of -5
)

HUGE_BYTES = 100 << 20
OK_USAGE = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
USAGE = {
    "usage-negative": {"prompt_tokens": 7, "completion_tokens": -5},
    "usage-3e9": {"prompt_tokens": 7, "completion_tokens": 3_000_000_000},
    "usage-1e30": {"prompt_tokens": 7, "completion_tokens": 1e30},
    "usage-bool": {"prompt_tokens": True, "completion_tokens": 3},
    "usage-string": {"prompt_tokens": "7", "completion_tokens": 3},
}
_DEEP = b'{"choices": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"  # json raises RecursionError on it
_MESSAGE = {"role": "assistant", "content": "one two three"}
# mode: (the bad SSE event, the bad non-streaming body)
_SHAPES: dict[str, tuple[Any, Any]] = {
    "bad-delta-str": ({"choices": [{"index": 0, "delta": "oops"}]}, {"choices": [{"index": 0, "message": "oops"}]}),
    "bad-delta-int": ({"choices": [{"delta": 5}]}, {"choices": [{"message": 5}]}),
    "bad-usage-str": (
        {"choices": [], "usage": "x"},
        {"choices": [{"message": _MESSAGE, "finish_reason": "stop"}], "usage": "x"},
    ),
    "bad-finish-int": (
        {"choices": [{"delta": {"content": " x"}, "finish_reason": 5}]},
        {"choices": [{"message": _MESSAGE, "finish_reason": 5}]},
    ),
    "bad-choices-str": ({"choices": "abc"}, {"choices": "abc"}),
    "deep": (_DEEP, _DEEP),
}


def _json(obj: Any) -> bytes:
    return obj if isinstance(obj, bytes) else json.dumps(obj).encode()


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _event(obj: object) -> bytes:
    return b"data: " + _json(obj) + b"\n\n"


def _token(text: str, finish: str | None = None) -> bytes:
    return _event({"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]})


def _ok_body(usage: object = OK_USAGE) -> bytes:
    return json.dumps({
        "choices": [{"index": 0, "message": _MESSAGE, "finish_reason": "stop"}],
        "usage": usage,
    }).encode()  # fmt: skip


def _ok_tail(usage: object = OK_USAGE) -> list[bytes]:
    """The SSE events after the first token of a proper stream."""
    return [_token(" two"), _token(" three", "stop"), _event({"choices": [], "usage": usage}), b"data: [DONE]\n\n"]


def _response(status: str, headers: dict[str, str], body: bytes) -> bytes:
    head = f"HTTP/1.1 {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body


def _compressor(mode: str) -> Any:
    return zlib.compressobj(wbits=31 if mode == "gzip" else 15)  # 31: gzip framing; 15: zlib ("deflate" in HTTP)


def _native_format(path: str) -> str | None:
    if "/v2/models/" in path:
        return "triton"
    if path.endswith(("/generate", "/generate_stream")):
        return "tgi"
    if path.endswith("/invocations"):
        return "djl"
    return None


_WORDS = (" one", " two", " three")


def _native_events(fmt: str, mode: str) -> list[bytes]:
    """The streamed events (SSE for tgi and triton, JSON lines for djl) of a native-format reply in `mode`."""
    completion = -5 if mode == "usage-negative" else 3
    out: list[Any] = []
    for i, word in enumerate(_WORDS):
        last = i == len(_WORDS) - 1
        if fmt == "triton":
            event: dict[str, Any] = {"model_name": "m", "model_version": "1", "text_output": word}
            if last:
                event.update(num_input_tokens=7, num_output_tokens=completion)
        else:
            token: dict[str, Any] = {"id": i, "text": word, "special": False}
            event = {"token": token, "generated_text": None, "details": None}
            if last:
                details = {"finish_reason": "length", "generated_tokens": completion}
                event.update(generated_text="".join(_WORDS), details=details)
        out.append(event)
    if mode == "bad-json":
        out[1] = b"{not json"
    elif mode == "bad-shape":
        out[1] = {"text_output": 5} if fmt == "triton" else {"token": "oops"}
    elif mode == "error-event":
        if fmt == "djl":  # LMI reports a failure mid-generation as a last line with finish_reason error
            out[1] = {"token": {"id": -1, "text": "", "special_token": True}, "generated_text": "",
                      "details": {"finish_reason": "error", "generated_tokens": None}}  # fmt: skip
        else:
            out[1] = {"error": "overloaded", "error_type": "overloaded"}
        del out[2:]
    if fmt == "djl":
        return [_json(e) + b"\n" for e in out]
    return [b"data:" + _json(e) + b"\n\n" for e in out]


def _native_body(fmt: str, mode: str) -> bytes:
    completion = -5 if mode == "usage-negative" else 3
    text = "".join(_WORDS)
    if mode == "bad-json":
        return b"this is not json"
    if mode == "error-event":
        return _json({"error": "overloaded"})
    if fmt == "triton":
        body: dict[str, Any] = {"model_name": "m", "model_version": "1", "text_output": text}
        body.update(num_input_tokens=7, num_output_tokens=completion)
        if mode == "bad-shape":
            body["text_output"] = 5
        return _json(body)
    details = {"finish_reason": "length", "generated_tokens": completion}
    reply: Any = {"generated_text": 5 if mode == "bad-shape" else text, "details": details}
    return _json([reply] if fmt == "djl" else reply)  # DJL with tgi_compat answers a list of one


class _Server:
    def __init__(self) -> None:
        self.posts: Counter[str] = Counter()
        self.accept_encodings: list[str | None] = []
        self.bodies: list[Any] = []  # the last few request bodies, newest last
        self.gets = 0  # GETs answered other than /stats (health probes, connection priming)
        self.opening_posts = 0  # POSTs that were the first request of their connection (it was opened for them)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = True  # the connection's first request
        try:
            while await self._one(reader, writer, first):
                first = False
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, first: bool = False) -> bool:
        """Answer one request; False when the connection is done."""
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        length = int(headers.get("content-length", 0))
        body = json.loads(await reader.readexactly(length)) if length else {}
        if lines[0].startswith("GET"):
            is_stats = lines[0].split()[1].endswith("/stats")
            self.gets += not is_stats
            stats = {
                "posts": dict(self.posts),
                "accept_encodings": self.accept_encodings,
                "bodies": self.bodies,
                "gets": self.gets,
                "opening_posts": self.opening_posts,
            }
            data = json.dumps(stats if is_stats else {"status": "ok"}).encode()
            writer.write(_response("200 OK", {"Content-Type": "application/json"}, data))
            await writer.drain()
            return True
        self.bodies = [*self.bodies[-19:], body]
        self.opening_posts += first
        path = lines[0].split()[1]
        fmt = _native_format(path)
        if fmt is not None:
            return await self._native(writer, fmt, path)
        mode = body.get("model", "ok")
        stream = body.get("stream", False)
        self.posts[mode] += 1
        self.accept_encodings.append(headers.get("accept-encoding"))
        if mode == "huge-line-once" and self.posts[mode] > 1:
            mode = "ok"
        if mode == "slow":
            await asyncio.sleep(0.3)
            mode = "ok"
        if mode == "reset":
            writer.transport.abort()
            return False
        if mode == "hang":
            await asyncio.sleep(3600)
        if mode in ("http-500", "echo-auth"):
            if mode == "http-500":
                status, data = "500 Internal Server Error", b'{"error":{"message":"boom","type":"server_error"}}'
            else:
                key = headers.get("authorization", "")
                status, data = "401 Unauthorized", _json({"error": {"message": f"Incorrect API key provided: {key}"}})
            writer.write(_response(status, {"Content-Type": "application/json"}, data))
            await writer.drain()
            return True
        if mode == "huge-length":
            writer.write(
                f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {HUGE_BYTES}\r\n\r\n".encode()
            )
            writer.write(b"x" * (1 << 20))
            await writer.drain()
            await asyncio.sleep(3600)
        if mode == "huge-line-once":
            kind = "text/event-stream" if stream else "application/json"
            writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
            piece = _chunk((b"data: " if stream else b"") + b"x" * (1 << 20))
            for _ in range(HUGE_BYTES >> 20):
                writer.write(piece)
                await writer.drain()  # raises ConnectionResetError once the client gives up
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return True
        if not stream and mode != "cut-clean" and mode not in ("bad-sse", "error-event", "cut"):
            if mode == "bad-json":
                data = b"this is not json"
            elif mode in _SHAPES:
                data = _json(_SHAPES[mode][1])
            else:
                data = _ok_body(USAGE.get(mode, OK_USAGE))
            extra = {}
            if mode in ("gzip", "deflate"):
                compressor = _compressor(mode)
                data = compressor.compress(data) + compressor.flush()
                extra = {"Content-Encoding": mode}
            writer.write(_response("200 OK", {"Content-Type": "application/json", **extra}, data))
            await writer.drain()
            return True
        if mode == "cut-clean":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
            writer.write(_token(" one") + _token(" two"))
            await writer.drain()
            writer.close()
            return False
        compressor = _compressor(mode) if mode in ("gzip", "deflate") else None

        def chunk(data: bytes) -> bytes:
            if compressor is not None:  # flushed per event, as a compressing server streams
                data = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
            return _chunk(data)

        encoding = f"Content-Encoding: {mode}\r\n" if compressor is not None else ""
        head = f"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n{encoding}Transfer-Encoding: chunked\r\n\r\n"
        writer.write(head.encode())
        writer.write(chunk(_token(" one")))
        await writer.drain()
        await asyncio.sleep(0.01)
        if mode == "cut":
            writer.transport.abort()
            return False
        if mode == "bad-sse":
            writer.write(chunk(b"data: {not json\n\n"))
        elif mode == "error-event":
            writer.write(chunk(_event({"error": {"message": "overloaded", "code": 503}})))
        else:
            events = _ok_tail(USAGE.get(mode, OK_USAGE))
            if mode in _SHAPES:
                events.insert(0, _event(_SHAPES[mode][0]))
            writer.write(b"".join(chunk(e) for e in events))
        if compressor is not None:
            writer.write(_chunk(compressor.flush()))
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True

    async def _native(self, writer: asyncio.StreamWriter, fmt: str, path: str) -> bool:
        mode = path.split("/")[1]
        self.posts[f"{fmt}:{mode}"] += 1
        stream = path.endswith("/generate_stream") or (fmt == "djl" and self.bodies[-1].get("stream") is True)
        if not stream:
            if mode == "cut":
                writer.transport.abort()
                return False
            writer.write(_response("200 OK", {"Content-Type": "application/json"}, _native_body(fmt, mode)))
            await writer.drain()
            return True
        kind = "application/jsonlines" if fmt == "djl" else "text/event-stream"
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
        events = _native_events(fmt, mode)
        writer.write(_chunk(events[0]))
        await writer.drain()
        await asyncio.sleep(0.01)
        if mode == "cut":
            writer.transport.abort()
            return False
        writer.write(b"".join(_chunk(e) for e in events[1:]) + b"0\r\n\r\n")
        await writer.drain()
        return True


@contextmanager
def misbehaving_server() -> Iterator[str]:
    """Serve on a free loopback port in a background thread; yields the base URL (…/v1)."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, object] = {}

    async def main() -> None:
        server = await asyncio.start_server(_Server().handle, "127.0.0.1", 0, backlog=1024)
        holder["port"] = server.sockets[0].getsockname()[1]
        holder["server"] = server
        started.set()
        async with server:
            await server.serve_forever()

    thread = threading.Thread(target=lambda: loop.run_until_complete(_quiet(main())), daemon=True)
    thread.start()
    started.wait(5)
    try:
        yield f"http://127.0.0.1:{holder['port']}/v1"
    finally:
        loop.call_soon_threadsafe(lambda: [t.cancel() for t in asyncio.all_tasks(loop)])
        thread.join(5)


def server_stats(base_url: str) -> dict[str, Any]:
    """What the server behind base_url saw: {"posts": {mode: count}, "accept_encodings": [...]}."""
    with urllib.request.urlopen(base_url + "/stats", timeout=5) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


async def _quiet(coro: object) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        await coro  # type: ignore[misc]
