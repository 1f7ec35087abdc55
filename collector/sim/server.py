"""HTTP front end of the simulator (aiohttp.web), each streamed token written when the engine makes it: OpenAI's
/v1/completions, /v1/chat/completions and /v1/models, TGI's /generate and /generate_stream, DJL LMI's
/invocations, Triton's /v2/models/<model>/generate and /generate_stream, the health paths of each (/health,
/ping, /v2/health/ready) and a vLLM-style /metrics.

Token accounting: prompt tokens are counted with `collector.tokens.DEFAULT_COUNTER`. A chat prompt counts
its message contents plus 4 tokens per message (role header and separators) plus 3 for the template's
assistant preamble, roughly what Llama 3's chat template adds. The completion is one vocabulary word per
token, so the same counter applied to the completion text gives `completion_tokens`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from collector.sim.engine import EngineConfig, RealtimeEngine, RequestRejected, RequestStream
from collector.sim.metrics import exposition
from collector.sim.profiles import resolve_hardware
from collector.sim.settings import SimSettings
from collector.tokens import DEFAULT_COUNTER

READY_LINE_PREFIX = "tokenbench simulator listening on "

CHAT_TOKENS_PER_MESSAGE = 4
CHAT_TOKENS_PER_REPLY = 3
# OpenAI's legacy completions default when max_tokens is absent.
COMPLETIONS_DEFAULT_MAX_TOKENS = 16

ENGINE_KEY = web.AppKey("engine", RealtimeEngine)
SERVED_MODEL_KEY = web.AppKey("served_model_name", str)


class _RequestError(Exception):
    """A client error, answered as an OpenAI-style error body."""

    def __init__(self, status: int, message: str, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param

    def response(self) -> web.Response:
        error_type = "invalid_request_error" if self.status < 500 else "server_error"
        body = {"error": {"message": self.message, "type": error_type, "param": self.param, "code": self.code}}
        return web.json_response(body, status=self.status)


@dataclass(frozen=True)
class _Parsed:
    prompt_tokens: int
    max_tokens: int | None
    stream: bool
    include_usage: bool
    ignore_eos: bool
    min_tokens: int


def _bad(message: str, param: str | None = None, code: str = "invalid_request") -> _RequestError:
    return _RequestError(400, message, code, param)


def _content_text(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        texts = []
        for part in content:
            if not isinstance(part, dict):
                raise _bad(f"{where} parts must be objects", where)
            text = part.get("text")
            if isinstance(text, str):
                texts.append(text)
        return " ".join(texts)
    raise _bad(f"{where} must be a string or a list of content parts", where)


def _count_completion_prompt(body: dict[str, Any]) -> int:
    if "prompt" not in body:
        raise _bad("'prompt' is a required property", "prompt", "missing_required_parameter")
    prompt = body["prompt"]
    if isinstance(prompt, str):
        return DEFAULT_COUNTER.count(prompt)
    if isinstance(prompt, list) and prompt and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
        return len(prompt)  # already token ids
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        return DEFAULT_COUNTER.count(prompt[0])
    raise _bad("'prompt' must be a string, a list with one string, or a list of token ids", "prompt")


def _count_chat_prompt(body: dict[str, Any]) -> int:
    if "messages" not in body:
        raise _bad("'messages' is a required property", "messages", "missing_required_parameter")
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        raise _bad("'messages' must be a non-empty list", "messages")
    total = CHAT_TOKENS_PER_REPLY
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise _bad(f"messages[{i}] must be an object with a string 'role'", f"messages[{i}]")
        text = _content_text(message.get("content"), f"messages[{i}].content")
        total += DEFAULT_COUNTER.count(text) + CHAT_TOKENS_PER_MESSAGE
    return total


def _parse(body: Any, chat: bool, served_model: str) -> _Parsed:
    if not isinstance(body, dict):
        raise _bad("request body must be a JSON object")
    model = body.get("model")
    if model is not None and model != served_model:
        raise _RequestError(404, f"The model `{model}` does not exist.", "model_not_found", "model")
    prompt_tokens = _count_chat_prompt(body) if chat else _count_completion_prompt(body)

    max_tokens: Any = None
    param = "max_tokens"
    if chat and body.get("max_completion_tokens") is not None:
        max_tokens, param = body["max_completion_tokens"], "max_completion_tokens"
    elif body.get("max_tokens") is not None:
        max_tokens = body["max_tokens"]
    if max_tokens is not None and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1):
        raise _bad(f"'{param}' must be an integer >= 1", param)
    if max_tokens is None and not chat:
        max_tokens = COMPLETIONS_DEFAULT_MAX_TOKENS

    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise _bad("'stream' must be a boolean", "stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise _bad("'stream_options' must be an object", "stream_options")
    ignore_eos = body.get("ignore_eos", False)
    if not isinstance(ignore_eos, bool):
        raise _bad("'ignore_eos' must be a boolean", "ignore_eos")
    min_tokens = body.get("min_tokens", 0)
    if not isinstance(min_tokens, int) or isinstance(min_tokens, bool) or min_tokens < 0:
        raise _bad("'min_tokens' must be an integer >= 0", "min_tokens")
    if max_tokens is not None and min_tokens > max_tokens:  # as vLLM refuses it
        raise _bad(f"min_tokens must be less than or equal to max_tokens={max_tokens}, got {min_tokens}", "min_tokens")
    return _Parsed(
        prompt_tokens=prompt_tokens,
        max_tokens=max_tokens,
        stream=stream,
        include_usage=stream and bool(options.get("include_usage", False)),
        ignore_eos=ignore_eos,
        min_tokens=min_tokens,
    )


def _sse(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


class _Responder:
    """Builds OpenAI response bodies for one request, completions or chat."""

    def __init__(self, chat: bool, model: str, prompt_tokens: int, include_usage: bool) -> None:
        self.chat = chat
        self.model = model
        self.prompt_tokens = prompt_tokens
        self.include_usage = include_usage
        self.id = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}"
        self.created = int(time.time())

    def usage(self, completion_tokens: int) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": self.prompt_tokens + completion_tokens,
        }

    def _envelope(self, obj: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": self.id, "object": obj, "created": self.created, "model": self.model, "choices": choices}

    def chunk(self, text: str | None, finish_reason: str | None, role: bool = False) -> dict[str, Any]:
        if self.chat:
            delta: dict[str, str] = {"role": "assistant", "content": ""} if role else {"content": text or ""}
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            out = self._envelope("chat.completion.chunk", [choice])
        else:
            choice = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish_reason}
            out = self._envelope("text_completion", [choice])
        if self.include_usage:
            out["usage"] = None
        return out

    def usage_chunk(self, completion_tokens: int) -> dict[str, Any]:
        out = self._envelope("chat.completion.chunk" if self.chat else "text_completion", [])
        out["usage"] = self.usage(completion_tokens)
        return out

    def full(self, text: str, finish_reason: str, completion_tokens: int) -> dict[str, Any]:
        if self.chat:
            message = {"role": "assistant", "content": text}
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
            out = self._envelope("chat.completion", [choice])
        else:
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}
            out = self._envelope("text_completion", [choice])
        out["usage"] = self.usage(completion_tokens)
        return out


async def _stream_response(request: web.Request, stream: RequestStream, responder: _Responder) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "Connection": "keep-alive"}
    )
    await response.prepare(request)
    first = True
    try:
        while True:
            event = await stream.events.get()
            if first and responder.chat:
                # The role chunk goes out with the first token, so first-chunk timing still measures TTFT.
                await response.write(_sse(responder.chunk(None, None, role=True)))
            first = False
            await response.write(_sse(responder.chunk(event.text, event.finish_reason)))
            if event.finish_reason is not None:
                break
        if responder.include_usage:
            await response.write(_sse(responder.usage_chunk(stream.sequence.generated)))
        await response.write(_sse("[DONE]"))
        await response.write_eof()
    except ConnectionResetError:
        pass  # client went away mid-stream; the caller frees the request's KV reservation
    return response


async def _full_response(stream: RequestStream, responder: _Responder) -> web.Response:
    texts: list[str] = []
    while True:
        event = await stream.events.get()
        texts.append(event.text)
        if event.finish_reason is not None:
            body = responder.full("".join(texts), event.finish_reason, len(texts))
            return web.json_response(body)


async def _generate(request: web.Request, chat: bool) -> web.StreamResponse:
    runtime = request.app[ENGINE_KEY]
    served = request.app[SERVED_MODEL_KEY]
    try:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _bad(f"request body is not valid JSON: {exc}", code="invalid_json") from exc
        parsed = _parse(body, chat, served)
        max_tokens = parsed.max_tokens
        if max_tokens is None:  # chat without a limit: the rest of the context, as vLLM does
            max_tokens = max(1, runtime.engine.config.max_model_len - parsed.prompt_tokens)
        try:
            stream = runtime.submit(parsed.prompt_tokens, max_tokens, parsed.ignore_eos, parsed.min_tokens)
        except RequestRejected as exc:
            raise _bad(str(exc), "max_tokens", "context_length_exceeded") from exc
    except _RequestError as exc:
        return exc.response()

    responder = _Responder(chat, served, parsed.prompt_tokens, parsed.include_usage)
    try:
        if parsed.stream:
            return await _stream_response(request, stream, responder)
        return await _full_response(stream, responder)
    finally:
        runtime.cancel(stream)


async def _completions(request: web.Request) -> web.StreamResponse:
    return await _generate(request, chat=False)


async def _chat_completions(request: web.Request) -> web.StreamResponse:
    return await _generate(request, chat=True)


# Native (non-OpenAI) formats: the default max tokens of each server when the request names none.
_NATIVE_DEFAULT_MAX_TOKENS = {"tgi": 100, "djl": 30, "triton": 16}
# The engine's finish reasons as TGI names them (DJL LMI uses the same names).
_TGI_REASONS = {"stop": "eos_token", "length": "length"}


@dataclass(frozen=True)
class _Native:
    prompt_tokens: int
    max_tokens: int
    stream: bool
    ignore_eos: bool
    details: bool  # TGI / DJL: parameters.details; Triton: return_num_*_tokens


def _native_error(fmt: str, exc: _RequestError) -> web.Response:
    if fmt == "tgi":
        body: dict[str, Any] = {"error": exc.message, "error_type": "validation"}
        return web.json_response(body, status=422 if exc.status == 400 else exc.status)
    if fmt == "djl":
        return web.json_response({"error": exc.message, "code": exc.status}, status=exc.status)
    return web.json_response({"error": exc.message}, status=exc.status)


def _positive_int(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise _bad(f"'{name}' must be an integer >= 1", name)
    return value


def _parse_native(body: Any, fmt: str, stream_route: bool) -> _Native:
    if not isinstance(body, dict):
        raise _bad("request body must be a JSON object")
    key = "text_input" if fmt == "triton" else "inputs"
    text = body.get(key)
    if not isinstance(text, str):
        raise _bad(f"'{key}' must be a string", key)
    default = _NATIVE_DEFAULT_MAX_TOKENS[fmt]
    if fmt == "triton":  # top-level fields are the model's inputs; `parameters` are request parameters
        params = {**(body.get("parameters") or {}), **body}
        max_tokens = _positive_int(params.get("max_tokens", default), "max_tokens")
        ignore_eos = params.get("ignore_eos", False) is True
        details = params.get("return_num_output_tokens") is True
        stream = stream_route
    else:
        params = body.get("parameters") or {}
        if not isinstance(params, dict):
            raise _bad("'parameters' must be an object", "parameters")
        max_tokens = _positive_int(params.get("max_new_tokens", default), "max_new_tokens")
        ignore_eos = fmt == "djl" and params.get("ignore_eos_token", False) is True
        details = params.get("details", False) is True
        stream = stream_route if fmt == "tgi" else body.get("stream", False) is True
    if fmt == "tgi":  # TGI validates these, and rejects what it cannot honour
        if "temperature" in params and not (
            isinstance(params["temperature"], (int, float)) and params["temperature"] > 0
        ):
            raise _bad("`temperature` must be strictly positive", "temperature")
        if "top_p" in params and not (isinstance(params["top_p"], (int, float)) and 0 < params["top_p"] < 1):
            raise _bad("`top_p` must be > 0.0 and < 1.0", "top_p")
    return _Native(DEFAULT_COUNTER.count(text), max_tokens, stream, ignore_eos, details)


def _native_event(
    fmt: str, model: str, index: int, text: str, final: tuple[str, str, int, int] | None
) -> dict[str, Any]:
    """One streamed event; `final` = (generated_text, engine finish_reason, prompt_tokens, generated) on the last."""
    if fmt == "triton":
        out: dict[str, Any] = {"model_name": model, "model_version": "1", "text_output": text}
        return out
    token: dict[str, Any] = {"id": index, "text": text}
    if fmt == "tgi":
        token.update(logprob=0.0, special=False)
        out = {"index": index + 1, "token": token, "generated_text": None, "details": None}
    else:
        token["log_prob"] = 0.0
        out = {"token": token}
    if final is not None:
        generated_text, reason, prompt_tokens, generated = final
        out["generated_text"] = generated_text
        details: dict[str, Any] = {"finish_reason": _TGI_REASONS[reason], "generated_tokens": generated}
        if fmt == "tgi":
            details.update(seed=None, input_length=prompt_tokens)
        else:
            details["inputs"] = None
        out["details"] = details
    return out


def _native_full(fmt: str, model: str, parsed: _Native, text: str, reason: str, generated: int) -> dict[str, Any]:
    if fmt == "triton":
        out: dict[str, Any] = {"model_name": model, "model_version": "1", "text_output": text}
        if parsed.details:
            out.update(num_input_tokens=parsed.prompt_tokens, num_output_tokens=generated, finish_reason=[reason])
        return out
    out = {"generated_text": text}
    if parsed.details:
        details: dict[str, Any] = {"finish_reason": _TGI_REASONS[reason], "generated_tokens": generated}
        extra: dict[str, Any] = {"seed": None, "prefill": [], "tokens": []} if fmt == "tgi" else {"inputs": None}
        details.update(extra)
        out["details"] = details
    return out


async def _native_stream(
    request: web.Request, stream: RequestStream, fmt: str, model: str, parsed: _Native
) -> web.StreamResponse:
    content_type = "application/jsonlines" if fmt == "djl" else "text/event-stream"
    response = web.StreamResponse(headers={"Content-Type": content_type, "Cache-Control": "no-cache"})
    await response.prepare(request)
    texts: list[str] = []
    try:
        while True:
            event = await stream.events.get()
            texts.append(event.text)
            final = None
            if event.finish_reason is not None and fmt != "triton":
                final = ("".join(texts), event.finish_reason, parsed.prompt_tokens, len(texts))
            obj = _native_event(fmt, model, len(texts) - 1, event.text, final)
            if fmt == "triton" and event.finish_reason is not None and parsed.details:
                obj.update(num_input_tokens=parsed.prompt_tokens, num_output_tokens=len(texts))
                obj["finish_reason"] = [event.finish_reason]
            line = json.dumps(obj, separators=(",", ":"))
            await response.write(f"{line}\n".encode() if fmt == "djl" else _sse(line))
            if event.finish_reason is not None:
                break
        await response.write_eof()
    except ConnectionResetError:
        pass
    return response


async def _native(request: web.Request, fmt: str, stream_route: bool = False) -> web.StreamResponse:
    runtime = request.app[ENGINE_KEY]
    served = request.app[SERVED_MODEL_KEY]
    try:
        if fmt == "triton" and request.match_info["model"] != served:
            raise _RequestError(404, f"Request for unknown model: '{request.match_info['model']}' is not found", "")
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError) as exc:
            raise _bad(f"request body is not valid JSON: {exc}", code="invalid_json") from exc
        parsed = _parse_native(body, fmt, stream_route)
        try:
            stream = runtime.submit(parsed.prompt_tokens, parsed.max_tokens, parsed.ignore_eos)
        except RequestRejected as exc:
            raise _bad(str(exc), "max_tokens", "context_length_exceeded") from exc
    except _RequestError as exc:
        return _native_error(fmt, exc)
    try:
        if parsed.stream:
            return await _native_stream(request, stream, fmt, served, parsed)
        texts: list[str] = []
        while True:
            event = await stream.events.get()
            texts.append(event.text)
            if event.finish_reason is not None:
                body = _native_full(fmt, served, parsed, "".join(texts), event.finish_reason, len(texts))
                return web.json_response(body)
    finally:
        runtime.cancel(stream)


async def _tgi_generate(request: web.Request) -> web.StreamResponse:
    return await _native(request, "tgi")


async def _tgi_generate_stream(request: web.Request) -> web.StreamResponse:
    return await _native(request, "tgi", stream_route=True)


async def _djl_invocations(request: web.Request) -> web.StreamResponse:
    return await _native(request, "djl")


async def _triton_generate(request: web.Request) -> web.StreamResponse:
    return await _native(request, "triton")


async def _triton_generate_stream(request: web.Request) -> web.StreamResponse:
    return await _native(request, "triton", stream_route=True)


async def _models(request: web.Request) -> web.Response:
    entry = {"id": request.app[SERVED_MODEL_KEY], "object": "model", "created": 0, "owned_by": "tokenbench-sim"}
    return web.json_response({"object": "list", "data": [entry]})


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _metrics(request: web.Request) -> web.Response:
    """vLLM's Prometheus metrics: scheduler gauges, token counters and latency histograms (collector/sim/metrics.py)."""
    runtime = request.app[ENGINE_KEY]
    engine = runtime.engine
    text = exposition(
        runtime.metrics,
        request.app[SERVED_MODEL_KEY],
        running=len(engine.running),
        waiting=len(engine.waiting),
        kv_usage=engine.kv_reserved_tokens / engine.config.kv_capacity_tokens,
    )
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


def create_app(settings: SimSettings) -> web.Application:
    """Build the aiohttp application; raises `ConfigError` for settings that name unknown or unfit hardware."""
    profile = resolve_hardware(settings.instance_type, settings.model, settings.tensor_parallel)
    config = EngineConfig.from_profile(profile, settings)
    runtime = RealtimeEngine(config, settings.speedup)

    app = web.Application(client_max_size=64 * 1024 * 1024)  # long prompts exceed aiohttp's 1 MiB default
    app[ENGINE_KEY] = runtime
    app[SERVED_MODEL_KEY] = settings.served_model_name or profile.model.model_id

    async def engine_lifecycle(app: web.Application) -> Any:
        await runtime.start()
        yield
        await runtime.stop()

    app.cleanup_ctx.append(engine_lifecycle)
    app.router.add_post("/v1/completions", _completions)
    app.router.add_post("/v1/chat/completions", _chat_completions)
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/health", _health)  # OpenAI servers (vLLM) and TGI
    app.router.add_post("/generate", _tgi_generate)
    app.router.add_post("/generate_stream", _tgi_generate_stream)
    app.router.add_post("/invocations", _djl_invocations)
    app.router.add_get("/ping", _health)  # DJL Serving
    # Triton model names hold no '/', but the simulator serves whatever model id it was given, slashes and all.
    app.router.add_post("/v2/models/{model:.+}/generate", _triton_generate)
    app.router.add_post("/v2/models/{model:.+}/generate_stream", _triton_generate_stream)
    app.router.add_get("/v2/health/ready", _health)
    app.router.add_get("/metrics", _metrics)
    from collector.sim.aws import add_aws_routes  # it builds on this module

    add_aws_routes(app)  # Bedrock and SageMaker runtime APIs, for `type: bedrock` / `sagemaker` on loopback
    return app


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


async def serve(
    settings: SimSettings,
    host: str = "127.0.0.1",
    port: int = 0,
    ready: Callable[[int], None] | None = None,
) -> None:
    """Serve until cancelled. Port 0 picks a free port; once listening, prints the one ready line
    `tokenbench simulator listening on http://HOST:PORT` to stdout and calls `ready(port)`."""
    app = create_app(settings)
    # handler_cancellation: a client that disconnects cancels its handler, which frees its KV reservation.
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    try:
        sock = _bind(host, port)
        site = web.SockSite(runner, sock)
        await site.start()
        bound_port = sock.getsockname()[1]
        shown_host = f"[{host}]" if ":" in host else host
        print(f"{READY_LINE_PREFIX}http://{shown_host}:{bound_port}", flush=True)
        if ready is not None:
            ready(bound_port)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def run_server(
    settings: SimSettings, host: str = "127.0.0.1", port: int = 8000, exit_on_stdin_close: bool = False
) -> None:
    """Blocking entry point: serve until SIGINT or SIGTERM, then shut down cleanly.

    With `exit_on_stdin_close`, also stop when standard input reaches end of file: a parent that holds
    the other end of the pipe stops its simulator even when it is killed with SIGKILL.
    """

    async def main() -> None:
        task = asyncio.create_task(serve(settings, host, port))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            # Not possible off the main thread or without signal support; Ctrl-C still works there.
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, task.cancel)
        if exit_on_stdin_close:

            def watch_stdin() -> None:
                while sys.stdin.buffer.read(4096):
                    pass
                loop.call_soon_threadsafe(task.cancel)

            threading.Thread(target=watch_stdin, name="stdin-watch", daemon=True).start()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())
