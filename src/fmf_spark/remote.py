"""Small files and folders on S3, read through a local copy.

``--config s3://bucket/conf/fmf.yaml`` and ``prompts.dir: s3://bucket/prompts`` let a
job on EMR, AWS Batch or Lambda take its configuration from the same bucket as its
documents, without baking it into an image or a bootstrap action. The copy goes into a
fresh folder under the temporary directory (``TMPDIR``; ``/tmp`` on Lambda, the only
writable place there) and is read like a local file from then on.

The S3 client is boto3's default: the credential chain of the instance, task or
function role, and ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` for an S3-compatible
endpoint.

Example:
    >>> path = local_copy("s3://my-bucket/conf/fmf.yaml")  # doctest: +SKIP
    >>> folder = local_folder("s3://my-bucket/prompts")  # doctest: +SKIP
"""

from __future__ import annotations

import fnmatch
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fmf_spark._deps import require
from fmf_spark.errors import FmfError

REMOTE_SCHEMES = ("s3://", "s3a://")
#: what a prompt folder holds: one YAML file per prompt, and the registry's lock
PROMPT_FILES = ("*.yaml", "*.yml", "registry.lock")


def is_remote(location: str | os.PathLike[str]) -> bool:
    """Whether ``location`` is an S3 URI (``s3://`` or ``s3a://``) rather than a path."""
    return str(location).startswith(REMOTE_SCHEMES)


def split_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` -> ``("bucket", "a/b")``."""
    bucket, _, key = uri.split("://", 1)[1].partition("/")
    return bucket, key


def _client() -> Any:
    return require("boto3").client("s3")


def _error(uri: str, exc: Exception) -> FmfError:
    response = getattr(exc, "response", None)
    reason = f"{type(exc).__name__}: {exc}"
    if isinstance(response, dict):
        err = response.get("Error", {})
        reason = f"{err.get('Code', type(exc).__name__)}: {err.get('Message', '')}".strip(": ")
    return FmfError(
        f"cannot read {uri}: {reason}",
        code="storage.read",
        hint="check the URI and that the role may s3:GetObject / s3:ListBucket there",
    )


def local_copy(uri: str) -> Path:
    """Download one S3 object into a new temporary folder; return the local path.

    Raises:
        FmfError: ``storage.read``, naming the URI and AWS's error code.
    """
    bucket, key = split_uri(uri)
    target = Path(tempfile.mkdtemp(prefix="fmf-remote-")) / (key.rsplit("/", 1)[-1] or "object")
    try:
        _client().download_file(bucket, key, str(target))
    except Exception as exc:
        raise _error(uri, exc) from None
    return target


def local_folder(uri: str, patterns: Sequence[str] = PROMPT_FILES) -> Path:
    """Download the objects directly under ``uri`` whose names match ``patterns``.

    Sub-folders are not copied: a prompt folder is flat.

    Raises:
        FmfError: ``storage.read`` when the listing or a download fails, or when nothing
            under ``uri`` matches (a wrong prefix should not look like an empty registry).
    """
    bucket, prefix = split_uri(uri)
    prefix = prefix.rstrip("/") + "/" if prefix.strip("/") else ""
    folder = Path(tempfile.mkdtemp(prefix="fmf-remote-"))
    client = _client()
    copied = 0
    try:
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, Delimiter="/"
        )
        for page in pages:
            for obj in page.get("Contents", []):
                name = obj["Key"][len(prefix) :]
                if name and any(fnmatch.fnmatch(name, p) for p in patterns):
                    client.download_file(bucket, obj["Key"], str(folder / name))
                    copied += 1
    except Exception as exc:
        raise _error(uri, exc) from None
    if copied == 0:
        raise FmfError(
            f"cannot read {uri}: no object matching {', '.join(patterns)} under it",
            code="storage.read",
            hint="check the prefix (a folder URI, e.g. s3://bucket/prompts)",
        )
    return folder
