"""Check that every lazily imported module is declared in the extra that installs it.

deptry checks the import statements under src/. It cannot see
``require("openai")`` (:mod:`fmf_spark._deps`), which imports at run time, and it does
not know which extra a module belongs to. This script does both for ``require()``:

- each call must name its module with a string literal;
- the extra is worked out as ``require`` does (:func:`fmf_spark._deps.extra_for`), and
  the distribution that provides the module must be a direct requirement of that extra
  (or of the base dependencies): arriving through another package does not count;
- every name in deptry's DEP002 ignore list (packages only imported through
  ``require``) must really be required somewhere, so the list cannot go stale.

Run it in the project's environment (it maps modules to the installed distributions):
``python scripts/check_extras.py``. Exits 1 and prints one line per problem.
"""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "fmf_spark"
sys.path.insert(0, str(ROOT / "src"))

from fmf_spark._deps import EXTRAS, extra_for  # noqa: E402


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(spec: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    if match is None:
        raise ValueError(f"cannot read requirement {spec!r}")
    return normalize(match.group(1))


def declared_by_extra(project: dict[str, object]) -> dict[str, set[str]]:
    """extra -> the distributions it declares directly (self-references expanded)."""
    name = normalize(str(project["name"]))
    base = {requirement_name(s) for s in project.get("dependencies", [])}  # type: ignore[attr-defined]
    raw: dict[str, list[str]] = project.get("optional-dependencies", {})  # type: ignore[assignment]

    def expand(extra: str, seen: frozenset[str]) -> set[str]:
        names: set[str] = set()
        for spec in raw[extra]:
            self_ref = re.match(rf"\s*{re.escape(name)}\[([^\]]+)\]", spec, re.IGNORECASE)
            if self_ref is None:
                names.add(requirement_name(spec))
                continue
            for inner in self_ref.group(1).split(","):
                inner = inner.strip()
                if inner not in seen:
                    names |= expand(inner, seen | {inner})
        return names

    return {extra: base | expand(extra, frozenset({extra})) for extra in raw}


def require_calls(path: Path) -> list[tuple[int, str | None, str | None]]:
    """(line, module, explicit extra) of every ``require(...)`` call in ``path``."""
    calls = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if name != "require" or not node.args:
            continue
        args = [*node.args[1:2], *(k.value for k in node.keywords if k.arg == "extra")]
        first, extra = node.args[0], args[0] if args else None
        module = first.value if isinstance(first, ast.Constant) else None
        extra_name = extra.value if isinstance(extra, ast.Constant) else None
        if extra is not None and extra_name is None:
            module = None  # a computed extra: as unreadable as a computed module
        calls.append((node.lineno, module, extra_name))
    return sorted(calls, key=lambda call: call[0])


def main() -> int:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    declared = declared_by_extra(pyproject["project"])
    ignored = {
        normalize(n)
        for n in pyproject["tool"]["deptry"].get("per_rule_ignores", {}).get("DEP002", [])
    }
    providers = {
        top: {normalize(d) for d in dists} for top, dists in packages_distributions().items()
    }
    problems: list[str] = []
    required: set[str] = set()

    for extra in sorted(set(EXTRAS.values()) - declared.keys()):
        problems.append(
            f"src/fmf_spark/_deps.py: EXTRAS names extra '{extra}', which pyproject.toml lacks"
        )

    for path in sorted(SRC.rglob("*.py")):
        where = path.relative_to(ROOT)
        for line, module, explicit in require_calls(path):
            if module is None:
                problems.append(f"{where}:{line}: require() needs literal module and extra names")
                continue
            extra = extra_for(module, explicit)
            if extra not in declared:
                problems.append(
                    f"{where}:{line}: '{module}' names extra '{extra}', which pyproject.toml lacks"
                )
                continue
            dists = providers.get(module.split(".")[0], set())
            if not dists:
                problems.append(
                    f"{where}:{line}: '{module}' is not installed here; cannot check extra '{extra}'"
                )
                continue
            required |= dists
            if not dists & declared[extra]:
                problems.append(
                    f"{where}:{line}: '{module}' (distribution {', '.join(sorted(dists))}) "
                    f"is not declared in extra '{extra}' of pyproject.toml"
                )

    for name in sorted(ignored - required):
        problems.append(
            f"pyproject.toml: '{name}' is in [tool.deptry.per_rule_ignores] DEP002 but no "
            "require() call imports it; take it off the list"
        )

    for problem in problems:
        print(problem)
    if problems:
        print(f"Found {len(problems)} extras issue(s).")
        return 1
    print("Success! Every require() is declared in its extra.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
