"""Load ``fmf.yaml`` with its precedence written as code.

Precedence, lowest first (each pair has its own test):

1. the file (``conf/fmf.yaml``, or ``FMF_CONFIG``, or ``--config``; local or a URI);
2. the profile (``profiles.<name>`` merged over the file; chosen by ``--profile``,
   else ``FMF_PROFILE``, else the file's ``profile:`` key);
3. the environment: ``FMF__A__B__C=value`` sets ``a.b.c`` (double underscores separate
   the path, keys are lower-cased, the value is read as a YAML scalar);
4. ``--set a.b.c=value`` on the command line.

Relative paths resolve against the config file's folder (``base_dir``), not the working
directory: :mod:`fmf_spark.config.locations`.

Every failure is a :class:`~fmf_spark.errors.ConfigError` whose message names the key
path, the bad value and what is allowed, one problem per line.
"""

from __future__ import annotations

import copy
import os
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from fmf_spark.config.locations import given_keys, resolve_locations
from fmf_spark.config.models import FmfConfig
from fmf_spark.config.plugins import PluginSection
from fmf_spark.errors import ConfigError, FmfError
from fmf_spark.storage import is_relative, parent_uri, read_text, resolve_location

ENV_PREFIX = "FMF__"
DEFAULT_CONFIG_PATH = "conf/fmf.yaml"


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    profile: str | None = None,
    overrides: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
) -> FmfConfig:
    """Read, merge and validate the configuration.

    Relative paths in it resolve against the config file's folder (or its ``base_dir``),
    those given by ``overrides`` or the environment against the working directory
    (:mod:`fmf_spark.config.locations`); the config returned holds absolute ones.

    Args:
        path: the YAML file: a local path, ``/Volumes/...``, ``/Workspace/...``,
            ``dbfs:/...``, ``s3://...`` or ``abfss://...``; default ``$FMF_CONFIG`` or
            ``conf/fmf.yaml`` when it exists, else the built-in defaults.
        profile: profile name; default ``$FMF_PROFILE``, then the file's ``profile`` key.
        overrides: ``a.b.c=value`` strings, applied last (the CLI's ``--set``).
        environ: the environment to read ``FMF__*`` from; default ``os.environ``.

    Returns:
        The validated :class:`FmfConfig`, with ``profile`` set to the profile applied and
        ``base_dir`` to the folder its relative paths resolved against.

    Raises:
        ConfigError: unreadable file, unknown profile, or invalid values.

    Example:
        >>> cfg = load_config(profile="local", overrides=["spark.shuffle_partitions=4"])  # doctest: +SKIP
        >>> cfg.prompts.dir  # doctest: +SKIP
        '/home/me/fmf_spark/prompts'
    """
    env = os.environ if environ is None else environ
    overrides = list(overrides)
    location = config_location(path, env)
    data = read_yaml(location)
    name = profile or env.get("FMF_PROFILE") or data.get("profile")
    merged = apply_profile(data, name)
    merged = apply_env(merged, env)
    merged = apply_overrides(merged, overrides)
    config = validate_config(merged)
    return _resolve(config, location, given_keys(env, overrides, ENV_PREFIX))


def config_location(path: str | os.PathLike[str] | None, env: Mapping[str, str]) -> str | None:
    """The config file to read: ``path``, else ``$FMF_CONFIG``, else ``conf/fmf.yaml``
    when it exists; a local path made absolute, a URI as it is; ``None``: no file."""
    if path is None and env.get("FMF_CONFIG"):
        path = env["FMF_CONFIG"]
    if path is None:
        default = Path(DEFAULT_CONFIG_PATH)
        if not default.exists():
            return None
        path = default
    text = os.fspath(path)
    return text if not is_relative(text) else os.path.abspath(text)


def _resolve(config: FmfConfig, location: str | None, given: set[tuple[str, ...]]) -> FmfConfig:
    """Make the config's relative paths absolute (see :mod:`fmf_spark.config.locations`)."""
    cwd = os.getcwd()
    folder = parent_uri(location) if location is not None else cwd
    if config.base_dir is None:
        base = folder
    else:
        base = resolve_location(cwd if ("base_dir",) in given else folder, config.base_dir)
    resolved: FmfConfig = resolve_locations(config, base, given=given, cwd=cwd)
    return resolved.model_copy(update={"base_dir": base})


def read_yaml(location: str | os.PathLike[str] | None) -> dict[str, Any]:
    """Read a YAML mapping from a local path or a URI; ``None`` gives an empty one."""
    if location is None:
        return {}
    where = os.fspath(location)
    try:
        text = read_text(where)
    except FileNotFoundError:
        raise ConfigError(
            f"cannot read config file {where}: no such file",
            hint="pass --config <file> or set FMF_CONFIG",
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read config file {where}: {exc.strerror or exc}",
            hint="pass --config <file> or set FMF_CONFIG",
        ) from None
    except FmfError as exc:
        raise ConfigError(exc.message, hint="pass --config <file> or set FMF_CONFIG") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must hold a mapping at the top, got {type(data).__name__}")
    return data


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``over`` into a copy of ``base``; mappings merge, anything else replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_profile(data: Mapping[str, Any], name: str | None) -> dict[str, Any]:
    """Merge ``profiles.<name>`` over the base; record the name in ``profile``."""
    merged = dict(data)
    if not name:
        return merged
    profiles = data.get("profiles") or {}
    if name not in profiles:
        allowed = ", ".join(sorted(profiles)) or "none defined"
        raise ConfigError(
            f"profile: '{name}' is not defined; allowed: {allowed}",
            hint="add it under 'profiles:' in the config file or pick another with --profile",
        )
    merged = deep_merge(merged, profiles[name] or {})
    merged["profile"] = name
    return merged


def _parse_scalar(raw: str) -> Any:
    try:
        return yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        return raw


def set_path(data: dict[str, Any], path: list[str], value: Any, *, origin: str) -> None:
    """Set ``data[a][b][c] = value``, creating mappings on the way."""
    if not path or any(not part for part in path):
        raise ConfigError(f"{origin}: empty key in path '{'.'.join(path)}'")
    node = data
    for i, part in enumerate(path[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            where = ".".join(path[: i + 1])
            raise ConfigError(f"{origin}: '{where}' is a value, not a section; cannot set below it")
        node = child
    node[path[-1]] = value


#: sections whose keys are free-form names (Spark conf keys hold dots and capitals)
FREE_KEYS = (("spark", "conf"),)


def _key_path(parts: list[str], *, env: bool) -> list[str]:
    """The config path of an ``FMF__`` variable's parts (``env``) or of a ``--set`` key's.

    Below a free-form section (:data:`FREE_KEYS`) the rest is one key, spelled as given:
    ``--set spark.conf.spark.eventLog.enabled=true`` sets the key
    ``spark.eventLog.enabled`` of ``spark.conf``, not a section ``spark.eventLog``.
    Variables' names are lower-cased, except such a key when it is not all capitals:
    Spark's keys are case-sensitive, so ``FMF__SPARK__CONF__spark.eventLog.enabled`` keeps
    its case, and ``FMF__SPARK__CONF__SPARK.DRIVER.MEMORY`` is ``spark.driver.memory``.
    """
    path = [p.lower() for p in parts] if env else list(parts)
    for section in FREE_KEYS:
        n = len(section)
        if len(parts) > n and tuple(path[:n]) == section:
            name = ("__" if env else ".").join(parts[n:])
            return [*section, name.lower() if env and name.isupper() else name]
    return path


def apply_env(data: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Apply ``FMF__A__B=value`` variables, in sorted order for determinism."""
    out = copy.deepcopy(dict(data))
    for key in sorted(environ):
        if key.startswith(ENV_PREFIX):
            path = _key_path(key[len(ENV_PREFIX) :].split("__"), env=True)
            set_path(out, path, _parse_scalar(environ[key]), origin=f"environment {key}")
    return out


def apply_overrides(data: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` strings (the CLI's ``--set``)."""
    out = copy.deepcopy(dict(data))
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--set '{item}' must look like a.b.c=value")
        path = _key_path(key.strip().split("."), env=False)
        set_path(out, path, _parse_scalar(raw), origin=f"--set {key.strip()}")
    return out


def validate_config(data: Mapping[str, Any]) -> FmfConfig:
    """Validate a merged mapping into :class:`FmfConfig`, with readable errors.

    The modules of ``plugins:`` are imported first (they register the connector, sink
    and provider types the sections may name).
    """
    try:
        return FmfConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            format_validation_error(exc, data=data), hint="fix the keys listed"
        ) from None


# --- readable validation errors --------------------------------------------------------------


def format_validation_error(
    exc: ValidationError, model: type[BaseModel] = FmfConfig, *, data: Any = None
) -> str:
    """Turn a Pydantic error into lines of ``path: problem (got value)``.

    Args:
        exc: the validation error.
        model: the model that was validated.
        data: the input, to find the model of a plug-in entry by its ``type`` (for the
            allowed keys of an unknown key).
    """
    from fmf_spark.observability.redaction import redact

    lines = []
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"]]
        path = _display_path(model, loc, data) or "(top level)"
        kind = err["type"]
        if kind == "extra_forbidden":
            allowed = _allowed_keys(model, loc[:-1], data)
            hint = f"; allowed keys: {', '.join(allowed)}" if allowed else ""
            lines.append(f"{path}: unknown key{hint}")
            continue
        msg = err["msg"].removeprefix("Value error, ")
        if kind == "union_tag_invalid":
            msg = msg.replace("Input tag", "type")
        if (
            kind in ("missing", "model_type", "plugin_type_missing")
            or "input" not in err
            or not loc
        ):
            lines.append(f"{path}: {msg}")
        else:
            lines.append(f"{path}: {msg} (got {redact(repr(err['input']))[:200]})")
    count = len(lines)
    head = f"invalid configuration ({count} problem{'s' if count != 1 else ''}):"
    return head + "\n  " + "\n  ".join(lines)


def _unwrap(annotation: Any) -> Any:
    while get_origin(annotation) is typing.Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _union_members(annotation: Any) -> list[Any]:
    annotation = _unwrap(annotation)
    if get_origin(annotation) in (Union, types.UnionType):
        return [_unwrap(a) for a in get_args(annotation) if a is not type(None)]
    return [annotation]


def _plugin_model(annotation: Any, node: Any) -> Any:
    """The registered model of a plug-in entry (by its ``type`` in ``node``), else None."""
    if get_origin(annotation) is not typing.Annotated:
        return None
    for meta in annotation.__metadata__:
        if isinstance(meta, PluginSection):
            return meta.model_for(node)
    return None


def _walk_type(model: Any, loc: list[str], data: Any = None) -> tuple[Any, list[str]]:
    """Follow ``loc`` through the model's annotations (and ``data``, the input: a
    plug-in entry's model depends on its ``type``); return (type, displayable path)."""
    current: Any = model
    node: Any = data
    shown: list[str] = []
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        current = _plugin_model(current, node) or current
        node = node.get(part) if isinstance(node, Mapping) else None
        members = _union_members(current)
        models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
        dicts = [m for m in members if get_origin(m) is dict]
        if len(models) > 1:
            # discriminated union: pydantic puts the tag in the location
            tagged = [m for m in models if _tag_of(m) == part]
            if tagged:
                current = tagged[0]
                continue
        if models and part in models[0].model_fields:
            current = models[0].model_fields[part].annotation
            shown.append(part)
        elif dicts:
            current = get_args(dicts[0])[1]
            shown.append(part)
        else:
            shown.append(part)
            current = None
    return current, shown


def _tag_of(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("type")
    if field is None:
        return None
    args = get_args(_unwrap(field.annotation))
    if get_origin(_unwrap(field.annotation)) is Literal and args:
        return str(args[0]) if len(args) == 1 else None
    return None


def _display_path(model: type[BaseModel], loc: list[str], data: Any = None) -> str:
    _, shown = _walk_type(model, loc, data)
    return ".".join(shown)


def _allowed_keys(model: type[BaseModel], loc: list[str], data: Any = None) -> list[str]:
    current, _ = _walk_type(model, loc, data)
    node = data
    for part in loc:
        node = node.get(part) if isinstance(node, Mapping) else None
    current = _plugin_model(current, node) or current
    for member in _union_members(current):
        if isinstance(member, type) and issubclass(member, BaseModel):
            return sorted(member.model_fields)
    return []
