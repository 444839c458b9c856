"""One registry shape for every plug-in kind: connectors, loaders, providers and sinks.

A plug-in is one module: it defines its config model (where it has one), its factory
and its ``precheck()``, and registers itself once, under its ``type``, in the registry
of its kind when the module is imported. A :class:`Registry` knows the modules of the
built-in plug-ins and imports them on first use (each imports its SDK lazily, so this
stays cheap); third-party modules are imported from the config's ``plugins:`` list or
from the ``fmf_spark.plugins`` entry-point group before the config is validated.

Registering a type twice raises: a silent override hides bugs.

Example:
    >>> from fmf_spark.registry import Registry
    >>> shapes = Registry[str]("shape")
    >>> shapes.register("circle", "round")
    'round'
    >>> shapes.get("circle")
    'round'
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterable, Sequence
from typing import Generic, TypeVar

from fmf_spark.errors import ConfigError

T = TypeVar("T")

#: entry-point group whose modules are imported (and so register) before validation
ENTRY_POINT_GROUP = "fmf_spark.plugins"


class Registry(Generic[T]):
    """Plug-ins of one kind, by ``type`` name.

    Args:
        kind: what is registered ("connector", "sink", ...), used in error messages.
        builtins: modules that register the built-in plug-ins when imported.
    """

    def __init__(self, kind: str, builtins: Sequence[str] = ()) -> None:
        self.kind = kind
        self._builtins = tuple(builtins)
        self._items: dict[str, T] = {}
        self._lock = threading.RLock()
        self._loaded = False

    def register(self, type_name: str, item: T) -> T:
        """Register ``item`` under ``type_name`` and return it.

        Raises:
            ValueError: ``type_name`` is already registered.
        """
        with self._lock:
            if type_name in self._items:
                raise ValueError(f"{self.kind} type '{type_name}' is already registered")
            self._items[type_name] = item
        return item

    def _load_builtins(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            # set first: a built-in module that looks itself up while importing must
            # not import itself again
            self._loaded = True
            for module in self._builtins:
                importlib.import_module(module)

    def get(self, type_name: str) -> T:
        """The plug-in registered as ``type_name``.

        Raises:
            ConfigError: no such type; the message lists the registered ones.
        """
        self._load_builtins()
        item = self._items.get(type_name)
        if item is None:
            raise ConfigError(
                f"unknown {self.kind} type '{type_name}'; registered: "
                f"{', '.join(self.names()) or 'none'}",
                hint=f"a third-party {self.kind} is imported from the config's `plugins:` "
                f"list or the '{ENTRY_POINT_GROUP}' entry-point group",
            )
        return item

    def find(self, type_name: str) -> T | None:
        """The plug-in registered as ``type_name``, or ``None``."""
        self._load_builtins()
        return self._items.get(type_name)

    def names(self) -> list[str]:
        """The registered type names, sorted."""
        self._load_builtins()
        return sorted(self._items)

    def items(self) -> list[tuple[str, T]]:
        self._load_builtins()
        return sorted(self._items.items())


def import_plugins(modules: Iterable[str] = (), *, entry_points: bool = True) -> list[str]:
    """Import third-party plug-in modules so that they register themselves.

    Args:
        modules: dotted module names (the config's ``plugins:`` list).
        entry_points: also import the modules of the ``fmf_spark.plugins`` group.

    Returns:
        The modules imported.

    Raises:
        ConfigError: a module cannot be imported.
    """
    names = list(modules)
    if entry_points:
        from importlib.metadata import entry_points as _entry_points

        names += [ep.value for ep in _entry_points(group=ENTRY_POINT_GROUP)]
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(
                f"plugin module '{name}' cannot be imported: {exc}",
                hint="install the package that provides it, or fix the name under `plugins:`",
            ) from None
    return names
