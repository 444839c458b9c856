"""Mirror prompt versions into MLflow's prompt registry (MLflow 3 ``mlflow.genai``).

Each fmf version becomes an MLflow prompt version of the same name, tagged with
``fmf.version`` (our label) and ``fmf.content_hash``; a version already mirrored with
the same hash is reused, so mirroring is idempotent. MLflow numbers its versions
itself (1, 2, ...), which is why our label travels as a tag.

MLflow is optional: without it, or with a tracking store that has no prompt registry
(old MLflow, some Databricks workspaces without Unity Catalog), mirroring logs a
warning and returns ``None``; it never fails a run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from fmf_spark.observability.logging import get_logger

log = get_logger(__name__)


class _Dumpable(Protocol):
    def model_dump(self, *, exclude_none: bool = ...) -> dict[str, Any]: ...


class PromptVersion(Protocol):
    """What mirroring needs of a prompt version (:class:`fmf_spark.prompts.PromptVersion`)."""

    @property
    def id(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def ref(self) -> str: ...
    @property
    def content_hash(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def response_schema(self) -> Mapping[str, Any] | None: ...
    @property
    def params(self) -> _Dumpable: ...
    @property
    def messages(self) -> Sequence[_Dumpable]: ...


TAG_VERSION = "fmf.version"
TAG_HASH = "fmf.content_hash"
TAG_SOURCE = "fmf.source"


def mlflow_prompt_name(prompt_id: str, prefix: str | None = None) -> str:
    """The MLflow prompt name of a prompt id (``prefix`` e.g. ``catalog.schema`` on UC)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", prompt_id)
    return f"{prefix}.{name}" if prefix else name


def mirror_version(version: PromptVersion, client: Any, *, prefix: str | None = None) -> Any:
    """Register ``version`` in MLflow's prompt registry unless already there.

    Args:
        version: the fmf prompt version.
        client: an ``mlflow.MlflowClient`` bound to the tracking/registry URI.
        prefix: name prefix (Unity Catalog ``catalog.schema``), if any.

    Returns:
        The MLflow ``PromptVersion``; ``None`` when this MLflow has no prompt registry.
    """
    if not hasattr(client, "search_prompt_versions"):
        log.warning("this MLflow has no prompt registry; prompt versions are not mirrored")
        return None
    name = mlflow_prompt_name(version.id, prefix)
    existing = _find(client, name, version)
    if existing is not None:
        return existing
    kwargs: dict[str, Any] = {}
    if version.response_schema is not None:
        kwargs["response_format"] = version.response_schema
    params = version.params.model_dump(exclude_none=True)
    if params:
        kwargs["model_config"] = params
    return client.register_prompt(
        name=name,
        template=[m.model_dump() for m in version.messages],
        commit_message=f"fmf {version.ref}",
        tags={
            TAG_VERSION: version.version,
            TAG_HASH: version.content_hash,
            TAG_SOURCE: version.source,
        },
        **kwargs,
    )


def _find(client: Any, name: str, version: PromptVersion) -> Any:
    if client.get_prompt(name) is None:
        return None
    for candidate in client.search_prompt_versions(name):
        tags = candidate.tags or {}
        if tags.get(TAG_VERSION) == version.version and tags.get(TAG_HASH) == version.content_hash:
            return candidate
    return None


def mirror_versions(
    versions: Iterable[PromptVersion], tracking_uri: str | None, *, prefix: str | None = None
) -> dict[str, Any]:
    """Mirror several versions; returns ``{ref: MLflow PromptVersion}`` of those mirrored.

    Failures are logged as warnings (MLflow is lineage, not a dependency of the run).
    """
    from fmf_spark._deps import require

    mlflow = require("mlflow")
    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    mirrored: dict[str, Any] = {}
    for version in versions:
        try:
            result = mirror_version(version, client, prefix=prefix)
        except Exception as exc:  # any registry failure: warn, keep the run going
            log.warning("could not mirror prompt %s to MLflow: %s", version.ref, exc)
            continue
        if result is not None:
            mirrored[version.ref] = result
    return mirrored
