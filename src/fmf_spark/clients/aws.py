"""boto3 clients and error codes, one way for every layer that talks to AWS."""

from __future__ import annotations

from typing import Any

from fmf_spark._deps import require

#: error codes that mean "slow down" (S3, DynamoDB, most services)
THROTTLE_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "503",
    }
)
#: error codes of a refused identity or signature
DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "403",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
    }
)
#: error codes of a missing bucket, key or resource
MISSING_CODES = frozenset({"NoSuchKey", "404", "NoSuchBucket", "NotFound"})


def aws_client(
    service: str,
    *,
    region: str | None = None,
    endpoint_url: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    max_attempts: int = 8,
    retry_mode: str = "adaptive",
    max_pool_connections: int | None = None,
) -> Any:
    """A boto3 client in its own session (sessions are not shared across threads).

    Args:
        service: ``s3``, ``dynamodb``, ``secretsmanager``...
        region: default: the environment's.
        endpoint_url: an override (a moto server, a VPC endpoint, MinIO).
        access_key_id: explicit credentials, resolved from secrets on the driver;
            default: the AWS credential chain.
        secret_access_key: goes with ``access_key_id``.
        max_attempts: botocore's retries (``retry_mode``) before an error surfaces.
        retry_mode: ``adaptive`` (client-side rate limiting) or ``standard``.
        max_pool_connections: HTTP connections kept per client.
    """
    boto3 = require("boto3")
    options: dict[str, Any] = {
        "retries": {"max_attempts": max_attempts, "mode": retry_mode},
        "user_agent_extra": "fmf_spark",
    }
    if max_pool_connections is not None:
        options["max_pool_connections"] = max_pool_connections
    kwargs: dict[str, Any] = {
        "region_name": region,
        "endpoint_url": endpoint_url,
        "config": require("botocore.config").Config(**options),
    }
    if access_key_id is not None and secret_access_key is not None:
        kwargs["aws_access_key_id"] = access_key_id
        kwargs["aws_secret_access_key"] = secret_access_key
    return boto3.session.Session().client(service, **kwargs)


def aws_error(exc: BaseException) -> tuple[str, str]:
    """``(code, message)`` of a botocore error; ``("", str(exc))`` for anything else."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        err = response.get("Error", {})
        return str(err.get("Code", "")), str(err.get("Message", "")) or str(exc)
    return "", str(exc)
