"""The managed endpoints' part of a run: checks before it starts, the endpoint's life around the sweep (a
SageMaker deployment is created and always deleted) and the request target the levels send through."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

from collector.aws.client import aws_session, runtime_client
from collector.aws.endpoint_config import BedrockEndpoint, SageMakerEndpoint
from collector.config import Experiment
from collector.tokens import TokenCounter

SERVICES = {"bedrock": "bedrock-runtime", "sagemaker": "sagemaker-runtime"}


def preflight(exp: Experiment, where: str) -> None:
    """Credentials and region, found before the run folder exists (one line naming what is missing)."""
    ep = exp.endpoint
    assert isinstance(ep, BedrockEndpoint | SageMakerEndpoint)
    aws_session(ep.region, f"{where}.endpoint")


def _runtime_root(exp: Experiment, session: Any) -> str:
    ep = exp.endpoint
    assert isinstance(ep, BedrockEndpoint | SageMakerEndpoint)
    if ep.endpoint_url:
        return ep.endpoint_url.rstrip("/")
    client = session.client(SERVICES[ep.type])  # only to ask the SDK for the region's URL
    return str(client.meta.endpoint_url).rstrip("/")


@contextlib.asynccontextmanager
async def managed_endpoint(exp: Experiment, where: str, stop: asyncio.Event | None) -> AsyncIterator[str]:
    """Yield the endpoint's URL (what the rows record): Bedrock's `<runtime>/model/<modelId>`, SageMaker's
    `<runtime>/endpoints/<name>`, deploying the SageMaker endpoint first when the config asks, and deleting it
    after, whatever ends the sweep."""
    ep = exp.endpoint
    assert isinstance(ep, BedrockEndpoint | SageMakerEndpoint)
    session = aws_session(ep.region, f"{where}.endpoint")
    root = _runtime_root(exp, session)
    if isinstance(ep, BedrockEndpoint):
        yield f"{root}/model/{quote(ep.model or exp.model_id, safe='')}"
        return
    if ep.deploy is None:
        yield f"{root}/endpoints/{ep.endpoint_name}"
        return
    from collector.aws.sagemaker import Deployment

    assert exp.instance_type is not None
    deployment = Deployment(session, ep.deploy, exp.instance_type, exp.instance_count, ep.variant_name)
    try:
        await asyncio.to_thread(deployment.create)
        if await deployment.wait_in_service(stop):
            yield f"{root}/endpoints/{deployment.name}"
        else:
            yield f"{root}/endpoints/{deployment.name}"  # stopped while creating: the sweep sends nothing
    finally:
        # Shielded: a second Ctrl-C must not leave a billed endpoint behind.
        await asyncio.shield(asyncio.to_thread(deployment.delete))


def managed_target(
    exp: Experiment,
    where: str,
    run_id: str,
    url: str,
    counter: TokenCounter,
    on_fatal: Callable[[str], None] | None,
) -> Any:
    """The ManagedTarget the levels of `exp` send through (its worker threads sized for the highest level)."""
    from collector.aws.target import ManagedTarget

    ep = exp.endpoint
    assert isinstance(ep, BedrockEndpoint | SageMakerEndpoint)
    session = aws_session(ep.region, f"{where}.endpoint")
    threads = max(exp.concurrency_levels)
    client = runtime_client(session, SERVICES[ep.type], ep.endpoint_url, threads, exp.request_timeout_s)
    if isinstance(ep, BedrockEndpoint):
        model_arg = ep.model or exp.model_id
        invoke_url = f"{url}/{'converse-stream' if ep.stream else 'converse'}"
        api_style, describe = "converse", f"Bedrock model {model_arg}"
    else:
        model_arg = url.rsplit("/", 1)[1]
        invoke_url = f"{url}/{'invocations-response-stream' if ep.stream else 'invocations'}"
        api_style, describe = ep.api_style, f"SageMaker endpoint {model_arg}"
    import aiohttp

    return ManagedTarget(
        run_id=run_id,
        experiment_name=exp.name,
        model_id=exp.model_id,
        endpoint_type=ep.type,
        base_url=url,
        api_style=api_style,
        served_model_name=exp.model_id,
        stream=ep.stream,
        headers={},
        instance_type=exp.instance_type,
        instance_count=exp.instance_count,
        params=exp.inference_parameters,
        timeout=aiohttp.ClientTimeout(total=exp.request_timeout_s),
        counter=counter,
        kind=ep.type,
        client=client,
        model_arg=model_arg,
        system_prompt=ep.system_prompt if isinstance(ep, BedrockEndpoint) else None,
        invoke_url=invoke_url,
        max_retries=ep.max_retries,
        retry_base_s=ep.retry_base_s,
        retry_max_s=ep.retry_max_s,
        request_timeout_s=exp.request_timeout_s,
        threads=threads,
        on_fatal=on_fatal,
        describe=f"{where} ({exp.name}): {describe}",
    )
