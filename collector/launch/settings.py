"""The `launch:` section of a config: where and how `collector launch` provisions its EC2 instances."""

from __future__ import annotations

from pydantic import Field

from collector.config_base import Strict

# The Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04): NVIDIA driver, docker and the NVIDIA
# container toolkit, so a `type: container` serving stack runs as it is. AWS publishes its id per region here.
DLAMI_SSM_PARAMETER = "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id"
MAX_LIFETIME_MINUTES = 7 * 24 * 60


class LaunchSettings(Strict):
    """Where `collector launch` starts one EC2 instance per experiment, and how long one may live."""

    bucket: str = Field(
        pattern=r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$",
        description="S3 bucket (must exist) that carries the code to the instance and the raw rows back.",
    )
    prefix: str = Field(
        default="tokenbench",
        pattern=r"^[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*$",
        description="Key prefix in the bucket; runs land under s3://<bucket>/<prefix>/raw/<run_id>/.",
    )
    region: str | None = Field(
        default=None,
        pattern=r"^[a-z]{2}(-[a-z]+)+-\d$",
        description="AWS region. Default: the region of the AWS environment (AWS_REGION, AWS_DEFAULT_REGION, profile).",
    )
    instance_profile: str = Field(
        min_length=1,
        max_length=2048,
        description="Name or ARN of the IAM instance profile the instance runs as (no key pair is used). Its role "
        "needs s3:GetObject, s3:PutObject and s3:ListBucket on the bucket prefix.",
    )
    security_group_ids: list[str] = Field(
        default_factory=list,
        description="Security groups of the instance (no inbound rule is needed). Default: the VPC's default group.",
    )
    subnet_id: str | None = Field(default=None, description="Subnet to start in. Default: a default-VPC subnet.")
    ami_id: str | None = Field(
        default=None, pattern=r"^ami-[0-9a-f]+$", description="Explicit AMI id; overrides ami_ssm_parameter."
    )
    ami_ssm_parameter: str = Field(
        default=DLAMI_SSM_PARAMETER,
        pattern=r"^/\S+$",
        description="Public SSM parameter holding the AMI id (default: the Deep Learning Base GPU AMI, Ubuntu 22.04).",
    )
    root_volume_gb: int = Field(
        default=200, ge=8, le=16384, description="Root EBS volume size, GiB (container images and model weights)."
    )
    max_lifetime_minutes: int = Field(
        default=240,
        ge=5,
        le=MAX_LIFETIME_MINUTES,
        description="Hard limit enforced on the instance itself (`shutdown -h +N` at boot, terminate on shutdown), "
        "whatever happens to the machine that launched it.",
    )
    heartbeat_interval_s: int = Field(
        default=30, ge=1, le=3600, description="How often the instance uploads the run's manifest (its heartbeat)."
    )
    poll_interval_s: float = Field(
        default=15, ge=0.1, le=3600, description="How often the launcher checks the instance and the heartbeat."
    )
    tags: dict[str, str] = Field(
        default_factory=dict, description="Extra tags on each instance (tokenbench adds Name, run and experiment tags)."
    )
