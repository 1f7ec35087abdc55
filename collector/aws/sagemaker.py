"""SageMaker endpoints the collector deploys for a run: create_model, create_endpoint_config, create_endpoint, a
wait for InService with a progress line (and the failure reason when it fails), then delete_endpoint, the config
and the model in every case: done, failed, timed out, Ctrl-C."""

from __future__ import annotations

import asyncio
import secrets
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from collector.aws.client import control_client, failure_of
from collector.aws.endpoint_config import SageMakerDeploy
from collector.errors import EndpointError


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Deployment:
    """One endpoint's resources, named `<prefix>-<UTC time>-<random>` (63 characters at most)."""

    def __init__(
        self,
        session: Any,
        deploy: SageMakerDeploy,
        instance_type: str,
        instance_count: int,
        variant_name: str,
        say: Callable[[str], None] = _say,
    ) -> None:
        self.deploy = deploy
        self.client = control_client(session, "sagemaker", deploy.control_endpoint_url)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        self.name = f"{deploy.name_prefix}-{stamp}-{secrets.token_hex(3)}"[:63]
        self.instance_type = instance_type
        self.instance_count = instance_count
        self.variant_name = variant_name
        self.say = say
        self.created: list[str] = []  # kinds created, in order: model, endpoint_config, endpoint

    def create(self) -> None:
        d = self.deploy
        container: dict[str, Any] = {"Image": d.image_uri, "Environment": dict(d.environment)}
        if d.model_data_url:
            container["ModelDataUrl"] = d.model_data_url
        self._call("create_model", ModelName=self.name, PrimaryContainer=container, ExecutionRoleArn=d.role_arn)
        self.created.append("model")
        variant = {
            "VariantName": self.variant_name,
            "ModelName": self.name,
            "InstanceType": self.instance_type,
            "InitialInstanceCount": self.instance_count,
            "ContainerStartupHealthCheckTimeoutInSeconds": d.container_startup_timeout_s,
            "ModelDataDownloadTimeoutInSeconds": d.model_download_timeout_s,
        }
        self._call("create_endpoint_config", EndpointConfigName=self.name, ProductionVariants=[variant])
        self.created.append("endpoint_config")
        self._call("create_endpoint", EndpointName=self.name, EndpointConfigName=self.name)
        self.created.append("endpoint")
        self.say(f"sagemaker: creating endpoint {self.name} ({self.instance_count} x {self.instance_type})")

    def status(self) -> tuple[str, str | None]:
        reply = self._call("describe_endpoint", EndpointName=self.name)
        return str(reply.get("EndpointStatus")), reply.get("FailureReason")

    async def wait_in_service(self, stop: asyncio.Event | None) -> bool:
        """Poll until InService (True), or the run is stopped (False); EndpointError on failure or timeout."""
        started = time.monotonic()
        while True:
            status, reason = await asyncio.to_thread(self.status)
            waited = time.monotonic() - started
            if status == "InService":
                self.say(f"sagemaker: endpoint {self.name} InService after {waited:.0f} s")
                return True
            if status in ("Failed", "OutOfService", "Deleting", "RollingBack"):
                raise EndpointError(
                    f"sagemaker endpoint {self.name} is {status}: {reason or 'no failure reason given'}"
                )
            if waited >= self.deploy.in_service_timeout_s:
                raise EndpointError(
                    f"sagemaker endpoint {self.name} still {status} after {waited:.0f} s "
                    f"(deploy.in_service_timeout_s {self.deploy.in_service_timeout_s:g})"
                )
            self.say(f"sagemaker: endpoint {self.name} {status} ({waited:.0f} s)")
            delay = min(self.deploy.poll_interval_s, max(0.0, self.deploy.in_service_timeout_s - waited))
            if stop is None:
                await asyncio.sleep(delay)
            else:
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                    return False
                except TimeoutError:
                    pass

    def delete(self) -> list[str]:
        """Delete what was created, endpoint first; every deletion is tried. Returns the ones that failed."""
        failed, gone, deleted = [], [], []
        steps = [
            ("endpoint", "delete_endpoint", {"EndpointName": self.name}),
            ("endpoint_config", "delete_endpoint_config", {"EndpointConfigName": self.name}),
            ("model", "delete_model", {"ModelName": self.name}),
        ]
        for kind, method, kwargs in steps:
            if kind not in self.created:
                continue
            try:
                self._call(method, **kwargs)
                deleted.append(kind.replace("_", " "))
            except EndpointError as exc:
                if _not_found(exc):  # deleted already, by someone else (mid-sweep): nothing left to delete
                    gone.append(kind.replace("_", " "))
                else:
                    failed.append(f"{kind} {self.name}: {exc}")
        if failed:
            self.say(f"sagemaker: NOT deleted (delete by hand): {'; '.join(failed)}")
        elif deleted or gone:
            already = f" (the {_joined(gone)} already gone)" if gone else ""
            self.say(f"sagemaker: deleted {_joined(deleted) or 'nothing'} {self.name}{already}")
        return failed

    def _call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            reply: dict[str, Any] = getattr(self.client, method)(**kwargs)
            return reply
        except ClientError as exc:
            raise EndpointError(f"sagemaker {method}: {failure_of(exc).describe()}") from exc
        except BotoCoreError as exc:
            raise EndpointError(f"sagemaker {method}: {exc}") from exc


def _not_found(exc: EndpointError) -> bool:
    """SageMaker's answer to deleting what does not exist: ValidationException `Could not find ...`."""
    return "ValidationException" in str(exc) and "could not find" in str(exc).lower()


def _joined(kinds: list[str]) -> str:
    """`endpoint, endpoint config and model`."""
    return " and ".join([", ".join(kinds[:-1]), kinds[-1]] if len(kinds) > 1 else kinds)
