"""A moto server (S3, DynamoDB, Secrets Manager, SSM...) on a free loopback port."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def moto_server() -> Iterator[str]:
    """Start ``moto.server.ThreadedMotoServer`` on 127.0.0.1 and yield its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def aws_test_env() -> dict[str, str]:
    """Fake credentials so boto3 never looks for real ones."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def apply_aws_test_env() -> None:
    for key, value in aws_test_env().items():
        os.environ[key] = value
