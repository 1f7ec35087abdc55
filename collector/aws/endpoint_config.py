"""Config models of the managed AWS endpoint kinds: `type: bedrock` and `type: sagemaker`."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from collector.config_base import MAX_SECONDS, Strict

REGION_RE = r"^[a-z]{2}(-[a-z]+)+-\d$"
PROVISIONED_ARN_RE = re.compile(r"^arn:aws[\w-]*:bedrock:[\w-]+:\d{12}:provisioned-model/\S+$")


class _AwsEndpoint(Strict):
    """What both kinds share: where the SDK sends requests, and how throttling is retried."""

    region: str | None = Field(
        default=None,
        pattern=REGION_RE,
        description="AWS region (e.g. us-east-1); default: the SDK's (AWS_REGION, AWS_DEFAULT_REGION, the profile).",
    )
    endpoint_url: str | None = Field(
        default=None,
        pattern=r"^https?://\S+$",
        description="Runtime API URL instead of the region's public one (a VPC endpoint, or a loopback server in "
        "tests); unset: the region's.",
    )
    stream: bool = Field(default=True, description="Stream responses (needed for TTFT and TPOT).")
    max_retries: int = Field(
        default=5,
        ge=0,
        le=20,
        description="Retries of a throttled request (ThrottlingException, HTTP 429) before it lands as an error; "
        "each row records its retries and the time spent waiting. The SDK's own retries are off.",
    )
    retry_base_s: float = Field(
        default=0.5, gt=0, le=60, description="First backoff before a retry, s; doubled each retry (full jitter)."
    )
    retry_max_s: float = Field(default=20, gt=0, le=600, description="Longest single backoff, s.")


class BedrockEndpoint(_AwsEndpoint):
    """Amazon Bedrock's Converse API (ConverseStream when streaming), on-demand or provisioned throughput."""

    type: Literal["bedrock"] = Field(description="Endpoint kind.")
    model: str | None = Field(
        default=None,
        min_length=1,
        description="modelId sent: a model id, an inference profile id or ARN (e.g. us.meta.llama3-1-8b-instruct-"
        "v1:0), or a provisioned model ARN; default: the experiment's model_id (which stays the token-price key).",
    )
    system_prompt: str | None = Field(
        default=None, description="System prompt sent with every request (Converse `system`); unset: none."
    )

    @property
    def is_provisioned(self) -> bool:
        return self.model is not None and PROVISIONED_ARN_RE.match(self.model) is not None

    @property
    def api_style(self) -> str:
        return "converse"


class SageMakerDeploy(Strict):
    """A SageMaker endpoint the collector creates before the sweep and deletes after it, whatever happens."""

    image_uri: str = Field(min_length=1, description="Container image (an ECR URI: LMI, TGI or vLLM).")
    role_arn: str = Field(
        pattern=r"^arn:aws[\w-]*:iam::\d{12}:role/\S+$",
        description="Execution role SageMaker assumes to pull the image and the model.",
    )
    model_data_url: str | None = Field(
        default=None, pattern=r"^s3://\S+$", description="S3 URI of the model artefacts; unset: the image fetches it."
    )
    environment: dict[str, str] = Field(
        default_factory=dict, description="Container environment (e.g. HF_MODEL_ID, SM_NUM_GPUS, OPTION_*)."
    )
    name_prefix: str = Field(
        default="tokenbench",
        pattern=r"^[A-Za-z0-9](-*[A-Za-z0-9]){0,29}$",
        description="Prefix of the model, endpoint config and endpoint names (a random suffix is added).",
    )
    container_startup_timeout_s: int = Field(
        default=1200, ge=60, le=3600, description="ContainerStartupHealthCheckTimeoutInSeconds."
    )
    model_download_timeout_s: int = Field(
        default=1200, ge=60, le=3600, description="ModelDataDownloadTimeoutInSeconds."
    )
    in_service_timeout_s: float = Field(
        default=2400, gt=0, le=MAX_SECONDS, description="Longest wait for the endpoint to reach InService."
    )
    poll_interval_s: float = Field(default=30, gt=0, le=600, description="How often the endpoint status is read.")
    control_endpoint_url: str | None = Field(
        default=None,
        pattern=r"^https?://\S+$",
        description="SageMaker control-plane URL instead of the region's (tests: a loopback moto server).",
    )


class SageMakerCloudWatch(Strict):
    """Reading the endpoint's CloudWatch metrics for the sweep's span once the sweep is over (the endpoint deleted
    by then, if deployed: its metrics stay in CloudWatch), into raw.telemetry_samples."""

    read: bool = Field(default=True, description="Read them (needs cloudwatch:GetMetricData); false: skip.")
    wait_s: float = Field(
        default=300,
        ge=0,
        le=3600,
        description="Longest wait, s, for CloudWatch to publish every successful invocation of the sweep "
        "(SageMaker's metrics arrive a minute or more late); what was published by then is kept.",
    )
    poll_interval_s: float = Field(default=30, gt=0, le=600, description="How often CloudWatch is read meanwhile, s.")
    period_s: int = Field(
        default=60,
        ge=1,
        le=3600,
        description="Aggregation period, s: 60 or a multiple (SageMaker publishes per minute); 1, 5, 10 and 30 only "
        "for high-resolution metrics (tests). A level's figures use the whole periods inside its measured window.",
    )
    endpoint_url: str | None = Field(
        default=None,
        pattern=r"^https?://\S+$",
        description="CloudWatch API URL instead of the region's (tests: a loopback moto server).",
    )

    @model_validator(mode="after")
    def _period(self) -> SageMakerCloudWatch:
        if self.period_s not in (1, 5, 10, 30) and self.period_s % 60:
            raise ValueError(f"period_s {self.period_s}: CloudWatch takes 1, 5, 10, 30 or a multiple of 60")
        return self


class SageMakerEndpoint(_AwsEndpoint):
    """A SageMaker real-time endpoint: an existing one by name, or one deployed for the run (`deploy`)."""

    type: Literal["sagemaker"] = Field(description="Endpoint kind.")
    endpoint_name: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9](-*[A-Za-z0-9]){0,62}$",
        description="Existing endpoint to invoke; give either this or `deploy`.",
    )
    deploy: SageMakerDeploy | None = Field(default=None, description="Create the endpoint for the run, then delete it.")
    api_style: Literal["tgi", "djl", "chat"] = Field(
        default="tgi",
        description="The container's payload format: tgi ({inputs, parameters}; TGI, and LMI with its TGI-compatible "
        "output), djl (LMI's own: {inputs, parameters}, JSON-lines stream) or chat (OpenAI messages; vLLM, LMI's "
        "Messages API).",
    )
    variant_name: str = Field(default="AllTraffic", min_length=1, description="Production variant name.")
    cloudwatch: SageMakerCloudWatch = Field(
        default_factory=SageMakerCloudWatch,
        description="The endpoint's CloudWatch metrics (ModelLatency, OverheadLatency, Invocations, GPU use), read "
        "after the sweep: the server's view of SageMaker.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> SageMakerEndpoint:
        if (self.endpoint_name is None) == (self.deploy is None):
            raise ValueError("give exactly one of 'endpoint_name' or 'deploy'")
        return self
