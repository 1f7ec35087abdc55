"""Loopback servers speaking AWS's managed-endpoint HTTP APIs, backed by the simulator's engine: Bedrock runtime's
Converse and ConverseStream (`POST /model/{modelId}/converse[-stream]`) and SageMaker runtime's InvokeEndpoint and
InvokeEndpointWithResponseStream (`POST /endpoints/{name}/invocations[-response-stream]`).

Streams are AWS event-stream messages (collector/sim/eventstream.py) and errors are sent as the services send them
(`x-amzn-ErrorType` header for Bedrock, a `__type` body for SageMaker), so boto3 pointed here with `endpoint_url`
parses every reply and raises every error for real. `AwsLoopback` holds the faults a test asks for.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from collector.sim import eventstream
from collector.sim.engine import RequestRejected
from collector.sim.server import (
    CHAT_TOKENS_PER_MESSAGE,
    CHAT_TOKENS_PER_REPLY,
    ENGINE_KEY,
    SERVED_MODEL_KEY,
    _native_event,
    _native_full,
    _parse,
    _parse_native,
    _RequestError,
    _sse,
)
from collector.tokens import DEFAULT_COUNTER

# Bedrock's stop reasons for the engine's finish reasons.
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens"}
CONTAINER_FORMATS = ("tgi", "djl", "chat")


@dataclass(frozen=True)
class Invocation:
    """One SageMaker invocation as CloudWatch would record it: when it was received (wall clock, epoch s), the
    container's time (ModelLatency: submitted to the engine to its last token) and SageMaker's own around it
    (OverheadLatency: the rest of the time from receipt to the reply's end), both in microseconds."""

    endpoint_name: str
    received_at_s: float
    model_latency_us: float
    overhead_latency_us: float
    status: int


@dataclass
class AwsLoopback:
    """What the loopback AWS endpoints accept, and the faults they inject (tests set them; the CLI's simulator
    accepts any model id and endpoint name, with no faults)."""

    bedrock_models: frozenset[str] | None = None  # model ids, inference profiles or ARNs served; None: any
    denied_models: frozenset[str] = frozenset()  # answered AccessDeniedException (a model not enabled)
    sagemaker_endpoints: dict[str, str] | None = None  # endpoint name -> container format; None: any, tgi
    throttle_first: int = 0  # the first N requests are answered ThrottlingException (HTTP 429 / 400)
    cut_after_events: int | None = None  # streams end with an in-stream error after this many content events
    received: int = 0  # requests received (throttled ones included)
    throttled: int = 0
    latencies_ms: list[int] = field(default_factory=list)  # metrics.latencyMs reported, in order
    # SageMaker runtime: endpoints answered AccessDeniedException, every invocation that reached a container (what
    # CloudWatch would count: tests publish them to a CloudWatch server), and a deletion after N invocations.
    denied_endpoints: frozenset[str] = frozenset()
    invocations: list[Invocation] = field(default_factory=list)
    delete_after_invocations: int | None = None
    # SageMaker's control plane (CreateModel ... DeleteModel): what a created endpoint becomes, after how many
    # DescribeEndpoint calls in Creating (None: it never leaves Creating), and what exists now.
    endpoint_outcome: str = "InService"
    creating_polls: int | None = 1
    failure_reason: str = "The primary container for production variant AllTraffic did not pass the ping health check."
    deployed_format: str = "tgi"
    models: set[str] = field(default_factory=set)
    endpoint_configs: set[str] = field(default_factory=set)
    endpoints: dict[str, int] = field(default_factory=dict)  # name -> DescribeEndpoint calls so far
    control_calls: list[str] = field(default_factory=list)  # operation names, in order
    denied_operations: frozenset[str] = frozenset()  # control-plane operations answered AccessDeniedException
    cloudwatch_denied: bool = False  # CloudWatch's GetMetricData answered AccessDenied (tests read moto's for data)


AWS_KEY = web.AppKey("aws_loopback", AwsLoopback)


class _AwsError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _bedrock_error(exc: _AwsError) -> web.Response:
    # Bedrock (restJson1) names the error in x-amzn-ErrorType, as `Code:namespace-uri`.
    headers = {"x-amzn-ErrorType": f"{exc.code}:http://internal.amazon.com/coral/com.amazon.bedrock/"}
    return web.json_response({"message": exc.message}, status=exc.status, headers=headers)


def _sagemaker_error(exc: _AwsError, extra: dict[str, Any] | None = None) -> web.Response:
    # SageMaker runtime names it in the body's __type (botocore takes the part after '#').
    body = {"__type": f"com.amazon.sagemaker.runtime#{exc.code}", "message": exc.message, **(extra or {})}
    return web.json_response(body, status=exc.status)


def _admit(state: AwsLoopback, status: int) -> None:
    state.received += 1
    if state.throttled < state.throttle_first:
        state.throttled += 1
        raise _AwsError(status, "ThrottlingException", "Too many requests, please wait before trying again.")


def _text_blocks(blocks: Any, where: str) -> list[str]:
    if not isinstance(blocks, list):
        raise _AwsError(400, "ValidationException", f"{where}: expected a list")
    texts = []
    for block in blocks:
        if not isinstance(block, dict) or not isinstance(block.get("text"), str):
            raise _AwsError(400, "ValidationException", f"{where}: only text content blocks are supported")
        texts.append(block["text"])
    return texts


@dataclass(frozen=True)
class _Converse:
    prompt_tokens: int
    max_tokens: int


def _parse_converse(body: Any) -> _Converse:
    if not isinstance(body, dict):
        raise _AwsError(400, "ValidationException", "The request body must be a JSON object.")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _AwsError(400, "ValidationException", "A conversation must start with a user message.")
    prompt_tokens = CHAT_TOKENS_PER_REPLY
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise _AwsError(400, "ValidationException", f"messages.{i}.role: must be user or assistant")
        texts = _text_blocks(message.get("content"), f"messages.{i}.content")
        prompt_tokens += CHAT_TOKENS_PER_MESSAGE + sum(DEFAULT_COUNTER.count(t) for t in texts)
    if messages[0].get("role") != "user":
        raise _AwsError(400, "ValidationException", "A conversation must start with a user message.")
    if "system" in body:
        texts = _text_blocks(body["system"], "system")
        prompt_tokens += CHAT_TOKENS_PER_MESSAGE + sum(DEFAULT_COUNTER.count(t) for t in texts)
    config = body.get("inferenceConfig") or {}
    if not isinstance(config, dict):
        raise _AwsError(400, "ValidationException", "inferenceConfig: expected an object")
    max_tokens = config.get("maxTokens", 512)
    if type(max_tokens) is not int or max_tokens < 1:
        raise _AwsError(400, "ValidationException", "inferenceConfig.maxTokens: must be an integer >= 1")
    temperature = config.get("temperature", 0.5)
    if not isinstance(temperature, int | float) or not 0 <= temperature <= 1:
        raise _AwsError(
            400,
            "ValidationException",
            "1 validation error detected: Value at 'inferenceConfig.temperature' failed to satisfy constraint: "
            "Member must have value less than or equal to 1",
        )
    return _Converse(prompt_tokens, max_tokens)


def _check_model(state: AwsLoopback, model_id: str) -> None:
    if model_id in state.denied_models:
        raise _AwsError(403, "AccessDeniedException", "You don't have access to the model with the specified model ID.")
    if state.bedrock_models is not None and model_id not in state.bedrock_models:
        if ":provisioned-model/" in model_id:
            raise _AwsError(404, "ResourceNotFoundException", f"Provisioned model {model_id} was not found.")
        raise _AwsError(400, "ValidationException", "The provided model identifier is invalid.")


async def _converse(request: web.Request, stream: bool) -> web.StreamResponse:
    state = request.app[AWS_KEY]
    runtime = request.app[ENGINE_KEY]
    try:
        _admit(state, 429)
        _check_model(state, request.match_info["model_id"])
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError) as exc:
            raise _AwsError(400, "ValidationException", "The request body is not valid JSON.") from exc
        parsed = _parse_converse(body)
        try:
            seq = runtime.submit(parsed.prompt_tokens, parsed.max_tokens, False)
        except RequestRejected as exc:
            raise _AwsError(400, "ValidationException", str(exc)) from exc
    except _AwsError as exc:
        return _bedrock_error(exc)
    started = time.perf_counter()
    try:
        if not stream:
            texts: list[str] = []
            while True:
                event = await seq.events.get()
                texts.append(event.text)
                if event.finish_reason is not None:
                    break
            latency_ms = round((time.perf_counter() - started) * 1000)
            state.latencies_ms.append(latency_ms)
            return web.json_response(
                {
                    "output": {"message": {"role": "assistant", "content": [{"text": "".join(texts)}]}},
                    "stopReason": _STOP_REASONS[event.finish_reason],
                    "usage": _usage(parsed.prompt_tokens, len(texts)),
                    "metrics": {"latencyMs": latency_ms},
                }
            )
        response = web.StreamResponse(headers={"Content-Type": eventstream.CONTENT_TYPE})
        await response.prepare(request)
        await response.write(eventstream.json_event("messageStart", {"role": "assistant"}))
        generated = 0
        try:
            while True:
                event = await seq.events.get()
                generated += 1
                if state.cut_after_events is not None and generated > state.cut_after_events:
                    await response.write(
                        eventstream.exception(
                            "modelStreamErrorException", "The model stream was interrupted (loopback fault)."
                        )
                    )
                    break
                delta = {"delta": {"text": event.text}, "contentBlockIndex": 0}
                await response.write(eventstream.json_event("contentBlockDelta", delta))
                if event.finish_reason is not None:
                    latency_ms = round((time.perf_counter() - started) * 1000)
                    state.latencies_ms.append(latency_ms)
                    await response.write(eventstream.json_event("contentBlockStop", {"contentBlockIndex": 0}))
                    stop = {"stopReason": _STOP_REASONS[event.finish_reason]}
                    await response.write(eventstream.json_event("messageStop", stop))
                    metadata = {"usage": _usage(parsed.prompt_tokens, generated), "metrics": {"latencyMs": latency_ms}}
                    await response.write(eventstream.json_event("metadata", metadata))
                    break
            await response.write_eof()
        except ConnectionResetError:
            pass
        return response
    finally:
        runtime.cancel(seq)


def _usage(prompt_tokens: int, generated: int) -> dict[str, int]:
    return {"inputTokens": prompt_tokens, "outputTokens": generated, "totalTokens": prompt_tokens + generated}


async def _bedrock_converse(request: web.Request) -> web.StreamResponse:
    return await _converse(request, stream=False)


async def _bedrock_converse_stream(request: web.Request) -> web.StreamResponse:
    return await _converse(request, stream=True)


def _container_format(state: AwsLoopback, name: str) -> str:
    if name in state.denied_endpoints:
        raise _AwsError(
            403,
            "AccessDeniedException",
            f"User: arn:aws:iam::123456789012:user/bench is not authorized to perform: sagemaker:InvokeEndpoint on "
            f"resource: arn:aws:sagemaker:us-east-1:123456789012:endpoint/{name}",
        )
    limit = state.delete_after_invocations
    if limit is not None and sum(i.endpoint_name == name for i in state.invocations) >= limit:
        # Someone deleted it (console, another script) mid-sweep.
        state.endpoints.pop(name, None)
        if state.sagemaker_endpoints is not None:
            state.sagemaker_endpoints.pop(name, None)
        else:
            state.sagemaker_endpoints = {}
    if state.sagemaker_endpoints is None:
        return "tgi"
    fmt = state.sagemaker_endpoints.get(name)
    if fmt is None:
        # What SageMaker answers for an endpoint that does not exist (or was deleted mid-sweep).
        raise _AwsError(400, "ValidationError", f"Endpoint {name} of account 123456789012 not found.")
    return fmt


async def _sagemaker(request: web.Request, stream: bool) -> web.StreamResponse:
    """The container's own reply passed through (InvokeEndpoint), or its streamed bytes cut into PayloadPart
    events (InvokeEndpointWithResponseStream), as SageMaker does with a TGI, LMI or vLLM container."""

    state = request.app[AWS_KEY]
    runtime = request.app[ENGINE_KEY]
    served = request.app[SERVED_MODEL_KEY]
    received_wall, received = time.time(), time.perf_counter()
    name = request.match_info["name"]
    try:
        _admit(state, 400)
        fmt = _container_format(state, name)
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError) as exc:
            raise _AwsError(400, "ValidationError", "Unable to parse the request body as JSON.") from exc
        try:
            if fmt == "chat":
                if isinstance(body, dict):  # the container serves one model, whatever name is sent
                    body = {**body, "model": served}
                chat = _parse(body, True, served)
                prompt_tokens, max_tokens = chat.prompt_tokens, chat.max_tokens or 256
                native = None
            else:
                native = _parse_native(body, fmt, stream_route=stream)
                prompt_tokens, max_tokens = native.prompt_tokens, native.max_tokens
            seq = runtime.submit(prompt_tokens, max_tokens, False)
        except (_RequestError, RequestRejected) as exc:
            message = exc.message if isinstance(exc, _RequestError) else str(exc)
            # The container refused it: SageMaker wraps the container's answer in a ModelError (HTTP 424).
            reply = f'Received client error (422) from primary with message "{message}"'
            raise _AwsError(424, "ModelError", reply) from exc
    except _AwsError as exc:
        extra = None
        if exc.code == "ModelError":
            extra = {"OriginalStatusCode": 422}
            _record(state, name, received_wall, received, received, 424)
        return _sagemaker_error(exc, extra)
    submitted = time.perf_counter()
    status = 200
    try:
        if not stream:
            texts: list[str] = []
            while True:
                event = await seq.events.get()
                texts.append(event.text)
                if event.finish_reason is not None:
                    break
            text = "".join(texts)
            if native is None:
                out: Any = _chat_full(served, text, event.finish_reason, prompt_tokens, len(texts))
            else:
                out = _native_full(fmt, served, native, text, event.finish_reason, len(texts))
                if fmt == "tgi":
                    out = [out]  # TGI's SageMaker route answers a list of one
            return web.json_response(out, headers={"x-Amzn-Invoked-Production-Variant": "AllTraffic"})
        response = web.StreamResponse(
            headers={
                "Content-Type": eventstream.CONTENT_TYPE,
                "X-Amzn-SageMaker-Content-Type": "text/event-stream" if fmt != "djl" else "application/jsonlines",
                "x-Amzn-Invoked-Production-Variant": "AllTraffic",
            }
        )
        await response.prepare(request)
        texts = []
        try:
            while True:
                event = await seq.events.get()
                texts.append(event.text)
                if state.cut_after_events is not None and len(texts) > state.cut_after_events:
                    await response.write(_model_stream_error())
                    break
                final = None
                if event.finish_reason is not None:
                    final = ("".join(texts), event.finish_reason, prompt_tokens, len(texts))
                if native is None:
                    line = _sse(_chat_chunk(served, event.text, event.finish_reason, prompt_tokens, len(texts)))
                else:
                    obj = json.dumps(_native_event(fmt, served, len(texts) - 1, event.text, final))
                    line = f"{obj}\n".encode() if fmt == "djl" else _sse(obj)
                # A line may be cut across two parts, as SageMaker forwards whatever the container flushed.
                half = len(line) // 2
                for part in (line[:half], line[half:]):
                    await response.write(eventstream.event("PayloadPart", part, "application/octet-stream"))
                if event.finish_reason is not None:
                    if native is None:
                        await response.write(
                            eventstream.event("PayloadPart", _sse("[DONE]"), "application/octet-stream")
                        )
                    break
            await response.write_eof()
        except ConnectionResetError:
            status = 499
        return response
    finally:
        runtime.cancel(seq)
        _record(state, name, received_wall, received, submitted, status)


def _record(state: AwsLoopback, name: str, wall: float, received: float, submitted: float, status: int) -> None:
    """Note an invocation that reached the container; its reply has been sent (or refused) by now."""
    done = time.perf_counter()
    model_us = (done - submitted) * 1e6
    state.invocations.append(Invocation(name, wall, model_us, (done - received) * 1e6 - model_us, status))


def _model_stream_error() -> bytes:
    payload = json.dumps(
        {"Message": "The container closed the stream (loopback fault).", "ErrorCode": "ModelStreamError"}
    )
    headers = {":exception-type": "ModelStreamError", ":content-type": "application/json", ":message-type": "exception"}
    return eventstream.encode_message(headers, payload.encode())


def _chat_full(model: str, text: str, reason: str, prompt_tokens: int, generated: int) -> dict[str, Any]:
    return {
        "id": "chatcmpl-loopback",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": reason}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": generated,
            "total_tokens": prompt_tokens + generated,
        },
    }


def _chat_chunk(model: str, text: str, reason: str | None, prompt_tokens: int, generated: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": "chatcmpl-loopback",
        "object": "chat.completion.chunk",
        "model": model,
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": reason}],
    }
    if reason is not None:
        out["usage"] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": generated,
            "total_tokens": prompt_tokens + generated,
        }
    return out


async def _sagemaker_invoke(request: web.Request) -> web.StreamResponse:
    return await _sagemaker(request, stream=False)


async def _sagemaker_invoke_stream(request: web.Request) -> web.StreamResponse:
    return await _sagemaker(request, stream=True)


CLOUDWATCH_TARGET = "GraniteServiceVersion20100801."  # CloudWatch's JSON 1.0 target prefix, as botocore sends it


def _control_error(code: str, message: str) -> web.Response:
    return web.json_response({"__type": code, "message": message}, status=400)


async def _sagemaker_control(request: web.Request) -> web.Response:
    """SageMaker's control plane (JSON 1.1, `X-Amz-Target: SageMaker.<Operation>`): the calls a deployment
    makes, with endpoints that reach InService, fail with a reason, or stay Creating, as the test asks; and
    CloudWatch's JSON 1.0 refusal when the test asks for it."""
    state = request.app[AWS_KEY]
    target = request.headers.get("X-Amz-Target", "")
    if target.startswith(CLOUDWATCH_TARGET) and state.cloudwatch_denied:
        operation = target.removeprefix(CLOUDWATCH_TARGET)
        message = (
            f"User: arn:aws:iam::123456789012:user/bench is not authorized to perform: cloudwatch:{operation} "
            "because no identity-based policy allows the action"
        )
        return web.json_response({"__type": "AccessDenied", "message": message}, status=403)
    operation = target.removeprefix("SageMaker.")
    state.control_calls.append(operation)
    body = json.loads(await request.read() or b"{}")
    if operation in state.denied_operations:
        # CreateModel passes the execution role, which takes iam:PassRole; the rest need their own permission.
        action = "iam:PassRole" if operation == "CreateModel" else f"sagemaker:{operation}"
        message = f"User: arn:aws:iam::123456789012:user/bench is not authorized to perform: {action}"
        return web.json_response({"__type": "AccessDeniedException", "message": message}, status=400)
    arn = "arn:aws:sagemaker:us-east-1:123456789012"
    if operation == "CreateModel":
        state.models.add(body["ModelName"])
        return web.json_response({"ModelArn": f"{arn}:model/{body['ModelName']}"})
    if operation == "CreateEndpointConfig":
        if body["ProductionVariants"][0]["ModelName"] not in state.models:
            return _control_error("ValidationException", "Could not find model.")
        state.endpoint_configs.add(body["EndpointConfigName"])
        return web.json_response({"EndpointConfigArn": f"{arn}:endpoint-config/{body['EndpointConfigName']}"})
    if operation == "CreateEndpoint":
        if body["EndpointConfigName"] not in state.endpoint_configs:
            return _control_error("ValidationException", "Could not find endpoint configuration.")
        state.endpoints[body["EndpointName"]] = 0
        return web.json_response({"EndpointArn": f"{arn}:endpoint/{body['EndpointName']}"})
    if operation == "DescribeEndpoint":
        name = body["EndpointName"]
        if name not in state.endpoints:
            return _control_error("ValidationException", f'Could not find endpoint "{name}".')
        state.endpoints[name] += 1
        polls = state.endpoints[name]
        status = "Creating"
        if state.creating_polls is not None and polls > state.creating_polls:
            status = state.endpoint_outcome
        out: dict[str, Any] = {"EndpointName": name, "EndpointStatus": status, "EndpointArn": f"{arn}:endpoint/{name}"}
        if status == "Failed":
            out["FailureReason"] = state.failure_reason
        if status == "InService" and state.sagemaker_endpoints is not None:
            state.sagemaker_endpoints[name] = state.deployed_format
        return web.json_response(out)
    deletions = {
        "DeleteEndpoint": ("EndpointName", state.endpoints),
        "DeleteEndpointConfig": ("EndpointConfigName", state.endpoint_configs),
        "DeleteModel": ("ModelName", state.models),
    }
    if operation in deletions:
        key, live = deletions[operation]
        if body[key] not in live:
            return _control_error("ValidationException", f'Could not find {key[:-4]} "{body[key]}".')
        if isinstance(live, dict):
            del live[body[key]]
            if state.sagemaker_endpoints is not None:
                state.sagemaker_endpoints.pop(body[key], None)
        elif isinstance(live, set):
            live.discard(body[key])
        return web.json_response({})
    return _control_error("UnknownOperationException", f"operation {operation!r} is not served here")


def add_aws_routes(app: web.Application, state: AwsLoopback | None = None) -> None:
    """Serve the Bedrock and SageMaker runtime routes on the simulator's app (its engine times every token)."""
    app[AWS_KEY] = state if state is not None else AwsLoopback()

    async def request_id(request: web.Request, response: web.StreamResponse) -> None:
        if request.path.startswith(("/model/", "/endpoints/")):  # as both services do, success or error
            response.headers["x-amzn-RequestId"] = str(uuid.uuid4())

    app.on_response_prepare.append(request_id)
    # botocore percent-encodes the model id (an ARN holds ':' and '/'); match the rest of the path.
    app.router.add_post("/model/{model_id:.+}/converse", _bedrock_converse)
    app.router.add_post("/model/{model_id:.+}/converse-stream", _bedrock_converse_stream)
    app.router.add_post("/endpoints/{name}/invocations", _sagemaker_invoke)
    app.router.add_post("/endpoints/{name}/invocations-response-stream", _sagemaker_invoke_stream)
    app.router.add_post("/", _sagemaker_control)
