"""Every AWS call of `collector launch`, in one place so it is easy to audit (boto3: EC2, SSM, S3).

Each failure becomes a LaunchError with one line naming the call and AWS's error code; credentials are never
logged (boto3 reads them from the environment, a profile or the instance role; this module never sees them).
The endpoint comes from boto3's own AWS_ENDPOINT_URL, which is how the tests point it at moto on 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from collector.errors import UserError

T = TypeVar("T")

# Instance states after which the instance will never run our script again.
ENDED_STATES = ("shutting-down", "terminated", "stopping", "stopped")


class LaunchError(UserError):
    """A launch step failed; the message is one line naming the cause."""


@dataclass(frozen=True)
class InstanceState:
    name: str  # pending, running, shutting-down, terminated, stopping, stopped
    reason: str  # AWS's state reason, e.g. "Client.UserInitiatedShutdown: User initiated shutdown"


class Aws:
    """Thin wrapper over the boto3 clients; `region` None means boto3's own default (env, profile)."""

    def __init__(self, region: str | None) -> None:
        try:
            import boto3
        except ImportError as exc:
            raise LaunchError("collector launch needs boto3: pip install 'tokenbench[aws]'") from exc
        self._session = boto3.session.Session(region_name=region)
        self.region = self._session.region_name
        if not self.region:
            raise LaunchError("no AWS region: set launch.region in the config, or AWS_REGION / AWS_DEFAULT_REGION")
        self.ec2 = self._session.client("ec2")
        self.ssm = self._session.client("ssm")
        self.s3 = self._session.client("s3")

    # -- error mapping -------------------------------------------------------------------
    def _call(self, what: str, fn: Callable[..., T], **kwargs: Any) -> T:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            return fn(**kwargs)
        except NoCredentialsError as exc:
            raise LaunchError(f"{what}: no AWS credentials found (environment, profile or role)") from exc
        except ClientError as exc:
            err = exc.response.get("Error", {})
            code, message = err.get("Code", "Unknown"), str(err.get("Message", "")).splitlines()
            raise LaunchError(f"{what}: {code}: {message[0] if message else exc}") from exc
        except BotoCoreError as exc:
            raise LaunchError(f"{what}: {str(exc).splitlines()[0]}") from exc

    @staticmethod
    def error_code(exc: BaseException) -> str | None:
        """AWS's error code behind a LaunchError, if any (e.g. InsufficientInstanceCapacity)."""
        cause = exc.__cause__
        response = getattr(cause, "response", None)
        return response.get("Error", {}).get("Code") if isinstance(response, dict) else None

    # -- checks before anything is started -----------------------------------------------
    def check_bucket(self, bucket: str) -> None:
        self._call(f"S3 bucket {bucket}", self.s3.head_bucket, Bucket=bucket)

    def resolve_ami(self, ami_id: str | None, ssm_parameter: str) -> tuple[str, str]:
        """(AMI id, root device name): the explicit id, else the public SSM parameter's; it must exist here."""
        if ami_id is None:
            reply = self._call(f"AMI parameter {ssm_parameter}", self.ssm.get_parameter, Name=ssm_parameter)
            ami_id = str(reply["Parameter"]["Value"])
        images = self._call(f"AMI {ami_id}", self.ec2.describe_images, ImageIds=[ami_id])["Images"]
        if not images:
            raise LaunchError(f"AMI {ami_id}: not found in {self.region}")
        return ami_id, str(images[0].get("RootDeviceName") or "/dev/sda1")

    # -- the instance --------------------------------------------------------------------
    def run_instance(
        self,
        *,
        what: str,
        ami_id: str,
        root_device: str,
        root_volume_gb: int,
        instance_type: str,
        instance_profile: str,
        security_group_ids: list[str],
        subnet_id: str | None,
        user_data: str,
        tags: dict[str, str],
    ) -> str:
        """Start one instance that terminates itself on shutdown; its id."""
        profile = {"Arn": instance_profile} if instance_profile.startswith("arn:") else {"Name": instance_profile}
        kwargs: dict[str, Any] = {
            "ImageId": ami_id,
            "InstanceType": instance_type,
            "MinCount": 1,
            "MaxCount": 1,
            "IamInstanceProfile": profile,
            "InstanceInitiatedShutdownBehavior": "terminate",
            "UserData": user_data,
            "BlockDeviceMappings": [
                {
                    "DeviceName": root_device,
                    "Ebs": {"VolumeSize": root_volume_gb, "VolumeType": "gp3", "DeleteOnTermination": True},
                }
            ],
            # IMDSv2 only: the role's credentials are not reachable through a plain GET from a confused process.
            "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
            "TagSpecifications": [
                {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]},
                {"ResourceType": "volume", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]},
            ],
        }
        if security_group_ids:
            kwargs["SecurityGroupIds"] = security_group_ids
        if subnet_id:
            kwargs["SubnetId"] = subnet_id
        reply = self._call(what, self.ec2.run_instances, **kwargs)
        return str(reply["Instances"][0]["InstanceId"])

    def instance_state(self, instance_id: str) -> InstanceState:
        reply = self._call(f"describe {instance_id}", self.ec2.describe_instances, InstanceIds=[instance_id])
        for reservation in reply.get("Reservations", []):
            for inst in reservation.get("Instances", []):
                reason = inst.get("StateReason", {}).get("Message") or inst.get("StateTransitionReason") or ""
                return InstanceState(inst["State"]["Name"], str(reason))
        return InstanceState("terminated", "no longer listed")

    def terminate(self, instance_id: str) -> None:
        self._call(f"terminate {instance_id}", self.ec2.terminate_instances, InstanceIds=[instance_id])

    def user_data(self, instance_id: str) -> str:
        """The instance's user-data script as text (the tests play the instance with it)."""
        reply = self._call(
            f"user data of {instance_id}",
            self.ec2.describe_instance_attribute,
            InstanceId=instance_id,
            Attribute="userData",
        )
        return base64.b64decode(reply["UserData"]["Value"]).decode()

    # -- S3 ------------------------------------------------------------------------------
    def upload_file(self, path: Path, bucket: str, key: str) -> None:
        self._call(f"upload s3://{bucket}/{key}", self.s3.upload_file, Filename=str(path), Bucket=bucket, Key=key)

    def put_json(self, bucket: str, key: str, data: dict[str, Any]) -> None:
        body = json.dumps(data, sort_keys=True).encode()
        self._call(f"upload s3://{bucket}/{key}", self.s3.put_object, Bucket=bucket, Key=key, Body=body)

    def get_json(self, bucket: str, key: str) -> dict[str, Any] | None:
        """An object's JSON, or None when it does not exist (yet) or is not a JSON object."""
        from botocore.exceptions import ClientError

        try:
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise LaunchError(f"read s3://{bucket}/{key}: {exc.response.get('Error', {}).get('Code')}") from exc
        try:
            data = json.loads(body)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def keys(self, bucket: str, prefix: str) -> Iterator[str]:
        paginator = self.s3.get_paginator("list_objects_v2")
        pages = self._call(
            f"list s3://{bucket}/{prefix}", lambda: list(paginator.paginate(Bucket=bucket, Prefix=prefix))
        )
        for page in pages:
            for obj in page.get("Contents", []):
                yield str(obj["Key"])

    def download_file(self, bucket: str, key: str, path: Path) -> None:
        self._call(f"download s3://{bucket}/{key}", self.s3.download_file, Bucket=bucket, Key=key, Filename=str(path))
