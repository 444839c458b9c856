"""Read the asset bundle as the Databricks CLI does: databricks.yml plus its includes.

What the tests need of the CLI's semantics, and nothing else: the ``include`` globs,
resource paths relative to the file that holds them, variable values per target
(target value over default), and ``${...}`` references resolved from those values.
"""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]

_REF = re.compile(r"\$\{([A-Za-z0-9_.\[\]-]+)\}")


@dataclass(frozen=True)
class Resource:
    """One resource of the bundle: its kind (``jobs``), name, definition and file."""

    kind: str
    name: str
    raw: dict[str, Any]
    path: Path

    def local_path(self, relative: str) -> Path:
        """A path in the resource, as the CLI resolves it: against the file's folder."""
        return (self.path.parent / relative).resolve()


def bundle_config() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "databricks.yml").read_text(encoding="utf-8")))


def resource_files() -> list[Path]:
    """The files the bundle's ``include`` globs select."""
    files: set[Path] = set()
    for pattern in bundle_config().get("include", []):
        files.update(ROOT.glob(pattern))
    return sorted(files)


def resources() -> list[Resource]:
    """Every resource of databricks.yml and its includes; a name defined twice fails."""
    found: dict[tuple[str, str], Resource] = {}
    for path in [ROOT / "databricks.yml", *resource_files()]:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for kind, items in (data.get("resources") or {}).items():
            for name, raw in items.items():
                if (kind, name) in found:
                    raise AssertionError(f"{kind}.{name} is defined twice ({path.name})")
                found[(kind, name)] = Resource(kind, name, raw, path)
    return list(found.values())


def resource(kind: str, name: str) -> Resource:
    (match,) = [r for r in resources() if (r.kind, r.name) == (kind, name)]
    return match


def targets() -> dict[str, dict[str, Any]]:
    return dict(bundle_config()["targets"])


def variables(target: str) -> dict[str, Any]:
    """The variable values of ``target``: its own value, else the default."""
    declared = bundle_config()["variables"]
    own = targets()[target].get("variables") or {}
    values = {}
    for name, spec in declared.items():
        if name in own:
            values[name] = own[name]
        elif "default" in spec:
            values[name] = spec["default"]
    return values


def references(value: Any) -> set[str]:
    """Every ``${...}`` reference in a YAML value (strings at any depth)."""
    if isinstance(value, str):
        return set(_REF.findall(value))
    if isinstance(value, dict):
        return set().union(*(references(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(references(v) for v in value)) if value else set()
    return set()


def resolve(
    text: str, target: str, file_path: Path = ROOT, var: Mapping[str, Any] | None = None
) -> str:
    """``text`` with its references resolved for ``target``.

    ``${workspace.file_path}`` is where the bundle's files are synced (``file_path``),
    ``${var.x}`` the target's value (or ``var``'s, as ``bundle deploy --var x=v`` sets
    it), ``${resources.<kind>.<name>.<field>}`` that field of the resource, itself
    resolved. Any other reference fails: a test that meets one must say what it
    stands for.
    """
    values = {**variables(target), **(var or {})}

    def one(match: re.Match[str]) -> str:
        ref = match.group(1)
        if ref == "workspace.file_path":
            return str(file_path)
        if ref.startswith("var."):
            return resolve(str(values[ref.removeprefix("var.")]), target, file_path, var)
        if ref.startswith("resources."):
            _, kind, name, field = ref.split(".")
            return resolve(str(resource(kind, name).raw[field]), target, file_path, var)
        raise AssertionError(f"unknown reference ${{{ref}}} in {text!r}")

    return _REF.sub(one, text)


def artifact_build_command(wheel_dir: Path) -> list[str]:
    """The wheel artifact's ``build`` command, writing to ``wheel_dir``.

    Only the output folder and the interpreter differ from what ``bundle deploy`` runs.
    """
    (artifact,) = bundle_config()["artifacts"].values()
    argv = shlex.split(artifact["build"])
    index = argv.index("--wheel-dir")
    argv[index + 1] = str(wheel_dir)
    if argv[0] in {"python", "python3"}:
        argv[0] = sys.executable
    return argv


def artifact_wheel_dir() -> Path:
    """Where ``bundle deploy`` finds the wheel: the build's ``--wheel-dir`` under its path."""
    (artifact,) = bundle_config()["artifacts"].values()
    argv = shlex.split(artifact["build"])
    return (ROOT / artifact.get("path", ".") / argv[argv.index("--wheel-dir") + 1]).resolve()
