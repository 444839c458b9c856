"""Run a Databricks source-format notebook top to bottom under local pyspark.

A notebook in source format is a ``.py`` file that starts with
``# Databricks notebook source`` and separates its cells with ``# COMMAND ----------``;
a magic cell has every line prefixed with ``# MAGIC``. :func:`run_notebook` executes the
Python cells in one namespace, as Databricks does, with:

- ``spark``: the caller's session (the notebook's own, on Databricks);
- ``dbutils``: a stand-in for what the notebooks use: ``widgets`` (``text``/``get``, the
  caller's values acting as a job's ``base_parameters``) and ``library.restartPython``,
  which clears the namespace as a restart of the notebook's Python does;
- ``display``: records what it is shown.

``%md`` cells are documentation; ``%pip`` cells go to the caller's ``on_pip`` with the
arguments after IPython's ``$name`` expansion (the caller asserts what would be
installed); any other magic fails, so a new one gets a deliberate translation.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HEADER = "# Databricks notebook source"
SEPARATOR = "# COMMAND ----------"
MAGIC = "# MAGIC"


@dataclass(frozen=True)
class Cell:
    """One cell: ``python``, or a magic (``md``, ``pip``) with the prefixes removed."""

    kind: str
    source: str


def parse_notebook(path: Path) -> list[Cell]:
    """The cells of a source-format notebook, in order.

    Raises:
        ValueError: not a source-format notebook, or a cell mixing magic and code.
    """
    text = path.read_text(encoding="utf-8")
    first, _, body = text.partition("\n")
    if first != HEADER:
        raise ValueError(f"{path.name} does not start with {HEADER!r}")
    cells = []
    for chunk in re.split(rf"^{re.escape(SEPARATOR)}$", body, flags=re.M):
        lines = chunk.strip("\n").splitlines()
        if not lines:
            continue
        magic = [line.startswith(MAGIC) for line in lines]
        if any(magic) and not all(magic):
            raise ValueError(f"{path.name}: a cell mixes # MAGIC lines and code: {lines[0]!r}")
        if not all(magic):
            cells.append(Cell("python", "\n".join(lines) + "\n"))
            continue
        content = [line.removeprefix(MAGIC).removeprefix(" ") for line in lines]
        command, _, rest = content[0].partition(" ")
        if not command.startswith("%"):
            raise ValueError(f"{path.name}: a magic cell starts with {content[0]!r}")
        cells.append(Cell(command[1:], "\n".join([rest, *content[1:]]).strip()))
    return cells


class _Widgets:
    def __init__(self, given: Mapping[str, str]) -> None:
        self.given = dict(given)
        self.defaults: dict[str, str] = {}

    def text(self, name: str, defaultValue: str, label: str | None = None) -> None:
        self.defaults[name] = defaultValue

    def get(self, name: str) -> str:
        if name in self.given:
            return self.given[name]
        if name in self.defaults:
            return self.defaults[name]
        # what Databricks raises for a widget that was never created
        raise ValueError(f"InputWidgetNotDefined: No input widget named {name} is defined")


class _Library:
    def __init__(self) -> None:
        self.restarts = 0

    def restartPython(self) -> None:
        self.restarts += 1


class DbutilsStandIn:
    """The part of ``dbutils`` the notebooks call."""

    def __init__(self, widgets: Mapping[str, str]) -> None:
        self.widgets = _Widgets(widgets)
        self.library = _Library()


@dataclass
class NotebookRun:
    """What a run left: the namespace after the last cell, what it displayed, its pips."""

    namespace: dict[str, Any]
    displayed: list[Any] = field(default_factory=list)
    pips: list[list[str]] = field(default_factory=list)
    dbutils: DbutilsStandIn | None = None


def _expand(line: str, namespace: Mapping[str, Any]) -> str:
    # IPython expands $name in a line magic from the user namespace
    return re.sub(r"\$(\w+)", lambda m: str(namespace[m.group(1)]), line)


def run_notebook(
    path: Path,
    *,
    spark: Any,
    widgets: Mapping[str, str],
    on_pip: Callable[[list[str]], None],
) -> NotebookRun:
    """Execute the notebook's cells in order; see the module docstring."""
    dbutils = DbutilsStandIn(widgets)
    run = NotebookRun(namespace={}, dbutils=dbutils)

    def fresh() -> dict[str, Any]:
        return {
            "__name__": "__main__",
            "spark": spark,
            "dbutils": dbutils,
            "display": run.displayed.append,
        }

    run.namespace = fresh()
    for index, cell in enumerate(parse_notebook(path)):
        if cell.kind == "md":
            continue
        if cell.kind == "pip":
            argv = shlex.split(_expand(cell.source, run.namespace))
            run.pips.append(argv)
            on_pip(argv)
            continue
        if cell.kind != "python":
            raise ValueError(f"{path.name} cell {index}: no translation for %{cell.kind}")
        restarts = dbutils.library.restarts
        exec(compile(cell.source, f"{path}:cell{index}", "exec"), run.namespace)
        if dbutils.library.restarts != restarts:
            run.namespace = fresh()
    return run
