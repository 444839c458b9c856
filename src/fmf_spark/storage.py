"""Locations of a run's files: one way to join, split and read/write small files.

A location is a local path or a URI (``s3://``, ``dbfs:/``, ``abfss://``,
``/Volumes/...``, ``/Workspace/...``). Spark reads and writes the tables; these helpers
build the paths, resolve relative ones, and move the small files that are not tables
(the config, prompts, a chain file, ``run.yaml``) without Spark: the driver reads them
before a session exists, and a Spark Connect client has no Hadoop file system.

- local paths, the Databricks mounts (``/Volumes``, ``/Workspace``, ``/dbfs``) and
  ``dbfs:/``: the file system;
- ``s3://``: boto3 (the ``aws`` extra), with the default credential chain;
- ``abfss://`` (ADLS Gen2, Fabric OneLake): the DFS REST API, see :mod:`fmf_spark.clients.adls`.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fmf_spark.clients.adls import adls_client, is_adls
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


def is_relative(location: str) -> bool:
    """Whether ``location`` is a relative local path (no scheme, not absolute, no ``~``).

    Example:
        >>> [is_relative(p) for p in ("prompts", "../x", "/Volumes/a", "s3://b/k", "dbfs:/a")]
        [True, True, False, False, False]
    """
    if not location or location.startswith(("~", "/", "\\")) or "://" in location:
        return False
    return not location.startswith(("dbfs:", "file:")) and not os.path.isabs(location)


def resolve_location(base: str, location: str) -> str:
    """``location`` as an absolute path or URI: a relative one is joined to ``base``.

    ``base`` is a local folder or a URI folder (``s3://b/conf``, ``dbfs:/x``,
    ``abfss://ws@host/lh/Files/fmf/conf``); ``..`` and ``.`` are folded, as a file
    system would, also in a URI (object stores keep ``..`` as part of a key). ``~`` is
    expanded; absolute paths and URIs are returned as they are.

    Example:
        >>> resolve_location("s3://bucket/fmf/conf", "../prompts")
        's3://bucket/fmf/prompts'
        >>> resolve_location("/Workspace/bundle/conf", "../chains/sample.yaml")
        '/Workspace/bundle/chains/sample.yaml'
        >>> resolve_location("/w/conf", "/Volumes/main/fmf/fmf/input")
        '/Volumes/main/fmf/fmf/input'
    """
    if location.startswith("~"):
        return os.path.expanduser(location)
    if not is_relative(location):
        return location
    scheme, sep, rest = base.partition("://")
    if sep:  # scheme://authority/path
        authority, _, path = rest.partition("/")
        joined = posixpath.normpath(posixpath.join("/" + path, location))
        return f"{scheme}://{authority}{joined.rstrip('/')}"
    if base.startswith(("dbfs:", "file:")):
        scheme, _, path = base.partition(":")
        return f"{scheme}:{posixpath.normpath(posixpath.join(path or '/', location))}"
    return os.path.normpath(os.path.join(os.path.abspath(base), location))


def local_path(uri: str) -> Path | None:
    """The local filesystem path of ``uri``, or ``None`` for remote stores (``s3://``).

    ``dbfs:/Volumes/...`` is the Unity Catalog volume mounted at ``/Volumes`` (serverless
    compute has that mount but no ``/dbfs``); other ``dbfs:/`` paths go through ``/dbfs``.
    """
    if uri.startswith("dbfs:/"):
        rest = "/" + uri.removeprefix("dbfs:").lstrip("/")
        return Path(rest) if rest.startswith("/Volumes/") else Path("/dbfs") / rest.lstrip("/")
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


def _s3() -> Any:
    from fmf_spark.clients.aws import aws_client

    return aws_client("s3")


def _s3_error(action: str, uri: str, exc: Exception) -> FmfError:
    """One line naming the URI and AWS's error code (``NoSuchKey``, ``AccessDenied``...)."""
    response = getattr(exc, "response", None)
    reason = f"{type(exc).__name__}: {exc}"
    if isinstance(response, dict):
        err = response.get("Error", {})
        reason = f"{err.get('Code', type(exc).__name__)}: {err.get('Message', '')}".strip(": ")
    return FmfError(
        f"cannot {action} {uri}: {reason}",
        code=f"storage.{action}",
        hint="check the URI and that the role may s3:GetObject, s3:PutObject, s3:ListBucket",
    )


def _unsupported(action: str, uri: str) -> FmfError:
    return FmfError(
        f"cannot {action} {uri}: unsupported scheme",
        code=f"storage.{action}",
        hint="use a local path, /Volumes/..., /Workspace/..., dbfs:/, s3:// or abfss://",
    )


def write_text(uri: str, text: str) -> None:
    """Write a small text file to a local path, DBFS/Volumes, S3 or ADLS/OneLake."""
    write_bytes(uri, text.encode("utf-8"))


def write_bytes(uri: str, data: bytes) -> None:
    """Write a small file to a local path, DBFS/Volumes, S3 or ADLS/OneLake.

    Raises:
        FmfError: ``storage.write``, naming the location and why.
    """
    path = local_path(uri)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # write then rename: a reader (fmf runs list, a heartbeat check) never sees half
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return
    s3 = _s3_parts(uri)
    if s3 is not None:
        try:
            _s3().put_object(Bucket=s3[0], Key=s3[1], Body=data)
        except Exception as exc:  # botocore's errors, imported lazily with boto3
            raise _s3_error("write", uri, exc) from None
        return
    if is_adls(uri):
        adls_client().write(uri, data)
        return
    raise _unsupported("write", uri)


def read_text(uri: str) -> str:
    """Read a small text file from a local path, DBFS/Volumes, S3 or ADLS/OneLake."""
    return read_bytes(uri).decode("utf-8")


def read_bytes(uri: str) -> bytes:
    """Read a small file from a local path, DBFS/Volumes, S3 or ADLS/OneLake.

    Raises:
        OSError: a local file that cannot be read (``FileNotFoundError``...).
        FmfError: ``storage.read`` for a remote one, naming the location and why.
    """
    path = local_path(uri)
    if path is not None:
        return path.read_bytes()
    s3 = _s3_parts(uri)
    if s3 is not None:
        try:
            return bytes(_s3().get_object(Bucket=s3[0], Key=s3[1])["Body"].read())
        except Exception as exc:
            raise _s3_error("read", uri, exc) from None
    if is_adls(uri):
        return adls_client().read(uri)
    raise _unsupported("read", uri)


def exists(uri: str) -> bool:
    """Whether a file exists at ``uri`` (a folder does not count).

    Raises:
        FmfError: ``storage.read`` when a remote store refuses to say (no permission).
    """
    path = local_path(uri)
    if path is not None:
        return path.is_file()
    s3 = _s3_parts(uri)
    if s3 is not None:
        try:
            _s3().head_object(Bucket=s3[0], Key=s3[1])
        except Exception as exc:
            code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                return False
            raise _s3_error("read", uri, exc) from None
        return True
    if is_adls(uri):
        return adls_client().exists(uri)
    raise _unsupported("read", uri)


def list_files(uri: str) -> list[str]:
    """The names of the files directly in folder ``uri`` (not in its sub-folders), sorted.

    A folder that does not exist has no files.
    """
    path = local_path(uri)
    if path is not None:
        return sorted(p.name for p in path.iterdir() if p.is_file()) if path.is_dir() else []
    s3 = _s3_parts(uri)
    if s3 is not None:
        bucket, prefix = s3
        prefix = prefix.rstrip("/") + "/" if prefix.strip("/") else ""
        names: list[str] = []
        try:
            pages = (
                _s3()
                .get_paginator("list_objects_v2")
                .paginate(Bucket=bucket, Prefix=prefix, Delimiter="/")
            )
            for page in pages:
                names += [o["Key"][len(prefix) :] for o in page.get("Contents", [])]
        except Exception as exc:
            raise _s3_error("read", uri, exc) from None
        return sorted(n for n in names if n)
    if is_adls(uri):
        return adls_client().list_files(uri)
    raise _unsupported("read", uri)


def local_folder(uri: str, patterns: Sequence[str] = ("*",)) -> Path:
    """A local folder holding the files of folder ``uri`` whose names match ``patterns``.

    A local (or mounted: ``/Volumes``, ``/Workspace``, ``/dbfs``) folder is returned as
    it is; a remote one is copied, without its sub-folders, into a new folder under the
    temporary directory (``TMPDIR``) and read like a local one from then on.

    Raises:
        FmfError: ``storage.read`` when the listing or a download fails, or when a
            remote folder holds no matching file (a wrong prefix should not look empty).
    """
    path = local_path(uri)
    if path is not None:
        return path
    names = [n for n in list_files(uri) if any(fnmatch.fnmatch(n, p) for p in patterns)]
    if not names:
        raise FmfError(
            f"cannot read {uri}: no file matching {', '.join(patterns)} in it",
            code="storage.read",
            hint="check the folder's location",
        )
    folder = Path(tempfile.mkdtemp(prefix="fmf-remote-"))
    for name in names:
        (folder / name).write_bytes(read_bytes(join_uri(uri, name)))
    return folder
