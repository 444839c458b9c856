"""AWS Lambda: an S3 event in, the chain run over the new objects, outputs to S3/DynamoDB.

The function runs the same ``fmf run`` as every other platform, through
:func:`fmf_spark.cli.main`, with Spark in local mode inside the container image
(``deploy/lambda/Dockerfile``). Configure it with environment variables:

- ``FMF_CHAIN`` (required): the chain file, ``s3://bucket/chains/x.yaml`` or a path in
  the image; its ``inputs.connector`` must be an ``s3`` connector;
- ``FMF_CONFIG``: the config (default ``/var/task/conf/fmf.yaml``), may be ``s3://``;
- ``FMF_PROFILE``: default ``aws_lambda``.

Only the event's objects are processed: each ``ObjectCreated`` record's key, relative to
the connector's prefix, becomes an exact ``include`` pattern of the connector. Records
of another bucket or outside the prefix are reported as ``ignored``, not retried. A
failed run raises, so Lambda counts the invocation as failed and its retry policy (or
the destination / DLQ) takes over; reruns are idempotent (answers cached by request).

Lambda's file system is read-only except ``/tmp``: ``HOME`` is moved there when it is
not writable, and the ``aws_lambda`` profile puts every Spark, JVM and Hadoop scratch
path under it. The Spark session stays up between warm invocations.

Example (the image's ``CMD``)::

    fmf_spark.jobs.lambda_handler.handler
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from fmf_spark.connectors.s3 import S3ConnectorConfig
from fmf_spark.errors import ConfigError
from fmf_spark.observability.logging import configure_logging, get_logger

log = get_logger(__name__)

DEFAULT_CONFIG = "/var/task/conf/fmf.yaml"
DEFAULT_PROFILE = "aws_lambda"
_GLOB_CHARS = re.compile(r"([*?\[])")


@dataclass(frozen=True)
class S3Object:
    """One object named by an S3 event record."""

    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def s3_objects(event: dict[str, Any]) -> list[S3Object]:
    """The objects of an S3 event's ``ObjectCreated`` records, in order, without repeats.

    Keys arrive URL-encoded (a space is ``+``), as S3 sends them.
    """
    seen: dict[S3Object, None] = {}
    for record in event.get("Records", []):
        if record.get("eventSource") != "aws:s3":
            continue
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        s3 = record.get("s3", {})
        key = unquote_plus(s3.get("object", {}).get("key", ""))
        if key and not key.endswith("/"):
            seen[S3Object(s3.get("bucket", {}).get("name", ""), key)] = None
    return list(seen)


def literal_glob(path: str) -> str:
    """A glob that matches exactly ``path`` (``*``, ``?`` and ``[`` taken literally)."""
    return _GLOB_CHARS.sub(r"[\1]", path)


def prepare_environment(environ: dict[str, str] | os._Environ[str] | None = None) -> str:
    """Point ``HOME`` at the scratch folder when it is missing or read-only; return it.

    The scratch folder is ``TMPDIR`` (default ``/tmp``, the only writable place on Lambda).
    """
    env = os.environ if environ is None else environ
    scratch = env.get("TMPDIR") or tempfile.gettempdir()
    home = env.get("HOME")
    if not home or not os.access(home, os.W_OK):
        env["HOME"] = scratch
    return scratch


def selection(
    objects: list[S3Object], connector: str, config: S3ConnectorConfig
) -> tuple[list[str], list[S3Object]]:
    """``--set`` values restricting ``connector`` to ``objects``, and the objects ignored.

    The connector's ``exclude`` patterns still apply (a hidden file stays out).
    """
    bucket, prefix = config.bucket, config.prefix.lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    paths, ignored = [], []
    for obj in objects:
        if obj.bucket != bucket or not obj.key.startswith(prefix):
            ignored.append(obj)
        else:
            paths.append(obj.key[len(prefix) :])
    if not paths:
        return [], ignored
    include = [literal_glob(p) for p in paths]
    settings = [f"connectors.{connector}.include={json.dumps(include)}"]
    if all("/" not in p for p in paths):
        # a pattern without '/' matches the name at any depth: keep to the top folder
        exclude = [*config.exclude, "*/**"]
        settings.append(f"connectors.{connector}.exclude={json.dumps(exclude)}")
    return settings, ignored


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Run the configured chain over the objects of an S3 event.

    Returns:
        ``{"status": "succeeded" | "skipped", "objects": [...], "ignored": [...]}``.

    Raises:
        FmfError: the config or chain is wrong (``ConfigError``), or ``fmf run``
            failed (``ChainError`` naming the exit code; the run's own error is in the log).
    """
    from fmf_spark.chains.model import load_chain
    from fmf_spark.cli import main
    from fmf_spark.config.loader import load_config
    from fmf_spark.errors import ChainError

    prepare_environment()
    configure_logging()  # the CLI does it too; the handler's own lines come first
    chain_uri = os.environ.get("FMF_CHAIN")
    if not chain_uri:
        raise ConfigError("FMF_CHAIN is not set", hint="set it to the chain file (s3:// or a path)")
    config = os.environ.get("FMF_CONFIG") or DEFAULT_CONFIG
    profile = os.environ.get("FMF_PROFILE") or DEFAULT_PROFILE
    # read where it is (an s3:// config too): its relative paths resolve against its folder
    config_path = config
    cfg = load_config(config_path, profile=profile)
    chain = load_chain(chain_uri)
    name = chain.inputs.connector
    connector = cfg.connectors.get(name)
    if not isinstance(connector, S3ConnectorConfig):
        raise ConfigError(
            f"chain {chain.name} reads connector '{name}', which is not an s3 connector",
            hint="the Lambda handler runs chains whose inputs come from S3 events",
        )

    objects = s3_objects(event)
    settings, ignored = selection(objects, name, connector)
    for obj in ignored:
        log.warning(
            "ignored %s: not under connector %s (s3://%s/%s)",
            obj.uri,
            name,
            connector.bucket,
            connector.prefix,
        )
    chosen = [o.uri for o in objects if o not in ignored]
    result: dict[str, Any] = {"objects": chosen, "ignored": [o.uri for o in ignored]}
    if not chosen:
        return {"status": "skipped", **result}

    argv = ["--config", config_path, "--profile", profile, "run", "--chain", chain_uri, "--quiet"]
    for item in settings:
        argv += ["--set", item]
    log.info("running chain %s over %d new object(s)", chain.name, len(chosen))
    code = main(argv)
    if code != 0:
        raise ChainError(f"fmf run of chain {chain.name} exited {code}; see the log above")
    return {"status": "succeeded", **result}
