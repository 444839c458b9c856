"""Locations of a run's files: one way to join, split and read/write small files.

A location is a local path or a URI (``s3://``, ``dbfs:/``, ``abfss://``,
``/Volumes/...``). Spark reads and writes the tables; these helpers build the paths
and move the small text files (``run.yaml``, a chain file) that are not tables.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from fmf_spark.errors import FmfError


def join_uri(root: str, *parts: str) -> str:
    """Join a local path or a URI with parts (``s3://b/runs`` + ``r1`` -> ``s3://b/runs/r1``).

    Example:
        >>> join_uri("s3://bucket/artefacts/", "r1", "/outputs")
        's3://bucket/artefacts/r1/outputs'
    """
    return "/".join([root.rstrip("/"), *(p.strip("/") for p in parts if p.strip("/"))])


def parent_uri(location: str) -> str:
    """The folder holding ``location`` (``.`` for a bare name).

    Example:
        >>> parent_uri("artefacts/r1/outputs/")
        'artefacts/r1'
    """
    trimmed = location.rstrip("/")
    return trimmed.rsplit("/", 1)[0] if "/" in trimmed else "."


def local_path(uri: str) -> Path | None:
    """The local filesystem path of ``uri``, or ``None`` for remote stores (``s3://``)."""
    if uri.startswith("dbfs:/"):
        return Path("/dbfs") / uri.removeprefix("dbfs:/").lstrip("/")
    if uri.startswith("file:"):
        return Path(uri.removeprefix("file:").removeprefix("//"))
    if "://" in uri:
        return None
    return Path(uri)


def _s3_parts(uri: str) -> tuple[str, str] | None:
    if not uri.startswith(("s3://", "s3a://")):
        return None
    bucket, _, key = uri.split("://", 1)[1].partition("/")
    return bucket, key


def write_text(uri: str, text: str) -> None:
    """Write a small text file to a local path, DBFS/Volumes, or S3."""
    path = local_path(uri)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # write then rename: a reader (fmf runs list, a heartbeat check) never sees half
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        return
    s3 = _s3_parts(uri)
    if s3 is not None:
        from fmf_spark.clients.aws import aws_client

        aws_client("s3").put_object(Bucket=s3[0], Key=s3[1], Body=text.encode("utf-8"))
        return
    raise FmfError(f"cannot write {uri}: unsupported scheme", code="observability.write")


def read_text(uri: str) -> str:
    """Read a small text file from a local path, DBFS/Volumes, or S3."""
    path = local_path(uri)
    if path is not None:
        return path.read_text(encoding="utf-8")
    s3 = _s3_parts(uri)
    if s3 is not None:
        from fmf_spark.clients.aws import aws_client

        try:
            body = aws_client("s3").get_object(Bucket=s3[0], Key=s3[1])["Body"].read()
        except Exception as exc:  # botocore's errors, imported lazily with boto3
            raise FmfError(f"cannot read {uri}: {exc}", code="observability.read") from None
        return str(body.decode("utf-8"))
    raise FmfError(f"cannot read {uri}: unsupported scheme", code="observability.read")
