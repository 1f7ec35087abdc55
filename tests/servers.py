"""Real HTTP servers on 127.0.0.1 for tests: one that misbehaves on request, chosen by the `model` field."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager

MODES = (
    "ok",  # a proper SSE stream (or JSON when not streaming) with usage
    "http-500",  # a 500 with an OpenAI-style error body
    "bad-json",  # 200 whose body is not JSON
    "bad-sse",  # 200 SSE whose second event is not JSON
    "error-event",  # 200 SSE carrying an error object mid-stream
    "cut",  # chunked SSE that stops mid-body: the connection closes before the terminating chunk
    "cut-clean",  # close-delimited SSE that ends after two tokens without finish_reason or [DONE]
    "reset",  # the connection closes right after the request is read, no response
    "hang",  # headers never come
)


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _event(obj: object) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def _token(text: str, finish: str | None = None) -> bytes:
    return _event({"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]})


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            length = 0
            for line in lines[1:]:
                if line.lower().startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            body = json.loads(await reader.readexactly(length)) if length else {}
            if lines[0].startswith("GET"):
                data = b'{"status":"ok"}'
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                    + str(len(data)).encode() + b"\r\n\r\n" + data
                )  # fmt: skip
                await writer.drain()
                continue
            mode = body.get("model", "ok")
            stream = body.get("stream", False)
            if mode == "reset":
                writer.transport.abort()
                return
            if mode == "hang":
                await asyncio.sleep(3600)
            if mode == "http-500":
                data = b'{"error":{"message":"boom","type":"server_error"}}'
                writer.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: " + str(len(data)).encode()
                             + b"\r\nContent-Type: application/json\r\n\r\n" + data)  # fmt: skip
                await writer.drain()
                continue
            if mode == "bad-json" or (mode == "ok" and not stream):
                data = (
                    b"this is not json"
                    if mode == "bad-json"
                    else json.dumps({
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": "one two three"},
                                     "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
                    }).encode()
                )  # fmt: skip
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                             + str(len(data)).encode() + b"\r\n\r\n" + data)  # fmt: skip
                await writer.drain()
                continue
            if mode == "cut-clean":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
                writer.write(_token(" one") + _token(" two"))
                await writer.drain()
                writer.close()
                return
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
            writer.write(_chunk(_token(" one")))
            await writer.drain()
            await asyncio.sleep(0.01)
            if mode == "cut":
                writer.transport.abort()
                return
            if mode == "bad-sse":
                writer.write(_chunk(b"data: {not json\n\n"))
            elif mode == "error-event":
                writer.write(_chunk(_event({"error": {"message": "overloaded", "code": 503}})))
            else:
                writer.write(_chunk(_token(" two")) + _chunk(_token(" three", "stop")))
                usage = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
                writer.write(_chunk(_event({"choices": [], "usage": usage})) + _chunk(b"data: [DONE]\n\n"))
            writer.write(b"0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


@contextmanager
def misbehaving_server() -> Iterator[str]:
    """Serve on a free loopback port in a background thread; yields the base URL (…/v1)."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, object] = {}

    async def main() -> None:
        server = await asyncio.start_server(_handle, "127.0.0.1", 0)
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


async def _quiet(coro: object) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        await coro  # type: ignore[misc]
