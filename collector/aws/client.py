"""boto3 clients for the managed endpoints, and what an AWS error means for a request row.

The SDK's own retries are off (total_max_attempts 1): throttling is retried by collector.aws.target so each row can
record its retries and the time spent waiting. Credentials and region are checked before the run folder exists.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from collector import __version__
from collector.errors import ConfigError

# Error codes of a refused request that every later request would meet too: the sweep stops with one line.
FATAL_CODES = frozenset(
    {
        "AccessDeniedException",
        "ResourceNotFoundException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "AccessDenied",
    }
)
THROTTLING_CODES = frozenset({"ThrottlingException", "TooManyRequestsException", "Throttling", "ThrottledException"})
# In-stream errors: the reply stopped part-way.
STREAM_CODES_PREFIX = ("modelStreamError", "ModelStreamError", "InternalStreamFailure", "internalServer")


def aws_session(region: str | None, where: str) -> Any:
    """A boto3 session with credentials and a region, or ConfigError in one line saying which is missing."""
    import boto3
    import botocore.exceptions

    try:
        session = boto3.session.Session(region_name=region)
        credentials = session.get_credentials()
    except botocore.exceptions.BotoCoreError as exc:  # a broken profile, an unreadable config file
        raise ConfigError(f"{where}: AWS credentials could not be loaded: {exc}") from exc
    if credentials is None:
        raise ConfigError(
            f"{where}: no AWS credentials found (set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "or run with an instance or task role)"
        )
    if not session.region_name:
        raise ConfigError(f"{where}.region: no AWS region (set it here, or AWS_REGION / AWS_DEFAULT_REGION)")
    return session


def runtime_client(session: Any, service: str, endpoint_url: str | None, concurrency: int, timeout_s: float) -> Any:
    """A runtime client sized for `concurrency` threads in flight; each socket read waits up to `timeout_s`."""
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "total_max_attempts": 1},
        max_pool_connections=concurrency + 4,
        connect_timeout=min(10.0, timeout_s),
        read_timeout=timeout_s,
        tcp_keepalive=True,
        user_agent_extra=f"tokenbench/{__version__}",
    )
    return session.client(service, endpoint_url=endpoint_url, config=config)


def control_client(session: Any, service: str, endpoint_url: str | None) -> Any:
    """A control-plane client (create, describe, delete) with the SDK's standard retries, which suit it."""
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 5}, user_agent_extra=f"tokenbench/{__version__}")
    return session.client(service, endpoint_url=endpoint_url, config=config)


def backoff_s(retry: int, base_s: float, max_s: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff (AWS's recommended): uniform in [0, min(max, base * 2**retry)]."""
    return rng.uniform(0, min(max_s, base_s * 2**retry))


@dataclass(frozen=True)
class AwsFailure:
    """What one AWS error means for the request's row."""

    code: str
    message: str
    http_status: int | None
    in_stream: bool

    @property
    def is_throttling(self) -> bool:
        return self.code in THROTTLING_CODES or (self.http_status == 429 and not self.in_stream)

    @property
    def is_fatal(self) -> bool:
        """Every request would be refused the same way: unknown or disabled model, missing endpoint, bad keys."""
        if self.code in FATAL_CODES:
            return True
        text = self.message.lower()
        if self.code == "ValidationException" and "model identifier is invalid" in text:
            return True
        return self.code in ("ValidationException", "ValidationError") and "endpoint" in text and "not found" in text

    @property
    def error_type(self) -> str:
        return "stream_cut" if self.in_stream else "http_error"

    def describe(self) -> str:
        where = "in-stream " if self.in_stream else (f"HTTP {self.http_status} " if self.http_status else "")
        return f"{where}{self.code}: {self.message}"


def failure_of(exc: Exception) -> AwsFailure:
    """The code, message and status of a botocore ClientError (EventStreamError: an error event inside a stream)."""
    from botocore.exceptions import EventStreamError

    response: dict[str, Any] = getattr(exc, "response", {}) or {}
    error = response.get("Error") or {}
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    in_stream = isinstance(exc, EventStreamError)
    message = str(error.get("Message") or error.get("message") or exc)
    original = response.get("OriginalStatusCode")
    if original is not None:
        message += f" (the container answered {original})"
    return AwsFailure(str(error.get("Code") or type(exc).__name__), message, None if in_stream else status, in_stream)
