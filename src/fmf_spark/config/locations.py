"""Relative paths in the config resolve against the config file, not the working directory.

A job runs ``fmf --config /Workspace/.../conf/fmf.yaml`` from whatever folder its runner
starts in, and a notebook's working directory is its own folder; a relative
``prompts.dir`` or connector root must still mean the folder beside the config. So
:func:`resolve_locations` makes every :data:`~fmf_spark.config.base.Location` field of a
loaded config absolute, once, when it is loaded:

- a value that came from the config file (or one of its profiles), or a default, is
  relative to ``base_dir``: the config file's folder, or the folder ``base_dir:`` names
  relative to it (``conf/fmf.yaml`` says ``base_dir: ..``, the repository root);
- a value given on the command line (``--set``) or in the environment (``FMF__...``) is
  relative to the working directory, as any path typed in a shell;
- without a config file, everything is relative to the working directory.

Absolute paths and URIs (``s3://``, ``abfss://``, ``dbfs:/``, ``/Volumes/...``) are
kept as they are; the base may itself be a URI (a config read from ``s3://``).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from typing import Any

from pydantic import BaseModel

from fmf_spark.config.base import is_location_field
from fmf_spark.storage import resolve_location

KeyPath = tuple[str, ...]


def given_keys(environ: Mapping[str, str], overrides: Collection[str], prefix: str) -> set[KeyPath]:
    """The key paths set by ``FMF__A__B`` variables and ``--set a.b=v`` items."""
    keys: set[KeyPath] = set()
    for name in environ:
        if name.startswith(prefix):
            keys.add(tuple(p.lower() for p in name[len(prefix) :].split("__")))
    for item in overrides:
        key, sep, _ = item.partition("=")
        if sep:
            keys.add(tuple(key.strip().split(".")))
    return keys


def _given(key: KeyPath, given: Collection[KeyPath]) -> bool:
    # `--set connectors.docs={type: local, root: x}` gives everything below it
    return any(key[: len(g)] == g for g in given)


def resolve_locations(
    model: BaseModel,
    base: str,
    *,
    given: Collection[KeyPath] = (),
    cwd: str | None = None,
    _prefix: KeyPath = (),
) -> Any:
    """A copy of ``model`` whose relative :data:`Location` fields are absolute.

    Args:
        model: a validated config (or a section of one).
        base: what the file's relative values resolve against.
        given: key paths whose values came from the command line or the environment;
            they resolve against ``cwd``.
        cwd: default: the working directory.

    Returns:
        ``model`` itself when nothing changed, else a copy.
    """
    cwd = cwd or os.getcwd()
    updates: dict[str, Any] = {}
    for name, field in type(model).model_fields.items():
        if name == "profiles":  # raw partial configs, resolved once one is applied
            continue
        value = getattr(model, name)
        key = (*_prefix, name)
        if isinstance(value, str) and is_location_field(field):
            resolved = resolve_location(cwd if _given(key, given) else base, value)
            if resolved != value:
                updates[name] = resolved
        elif isinstance(value, BaseModel):
            new = resolve_locations(value, base, given=given, cwd=cwd, _prefix=key)
            if new is not value:
                updates[name] = new
        elif isinstance(value, dict):
            changed = {
                k: resolve_locations(v, base, given=given, cwd=cwd, _prefix=(*key, str(k)))
                if isinstance(v, BaseModel)
                else v
                for k, v in value.items()
            }
            if any(changed[k] is not value[k] for k in value):
                updates[name] = changed
    return model.model_copy(update=updates) if updates else model
