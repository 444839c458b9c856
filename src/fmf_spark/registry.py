"""One registry shape for every plug-in kind: connectors, loaders, providers and sinks.

A plug-in is one module: it defines its config model (where it has one), its factory
and its ``precheck()``, and registers itself once, under its ``type``, in the registry
of its kind when the module is imported. A :class:`Registry` knows the modules of the
built-in plug-ins and imports them on first use (each imports its SDK lazily, so this
stays cheap); third-party modules are imported from the config's ``plugins:`` list or
from the ``fmf_spark.plugins`` entry-point group before the config is validated.

Registering a type twice raises: a silent override hides bugs.

The kinds whose entries the config names (``connectors``, ``exporters``,
``inference.providers``) have their registries here, below the config, so the config
validates each entry against its type's model without importing any implementation:
:data:`CONNECTORS`, :data:`EXPORTERS`, :data:`PROVIDERS`, each holding :class:`Plugin`
entries. Loaders have no config section; their registry is
:data:`fmf_spark.processing.base.LOADERS`.

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
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fmf_spark.errors import ConfigError

T = TypeVar("T")
F = TypeVar("F")

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
        """``(type name, plug-in)`` pairs, sorted by name."""
        self._load_builtins()
        return sorted(self._items.items())


_entry_points_done = False
_entry_points_lock = threading.Lock()


def _entry_point_modules() -> list[str]:
    """The modules of the ``fmf_spark.plugins`` group, the first time only."""
    global _entry_points_done
    with _entry_points_lock:
        if _entry_points_done:
            return []
        _entry_points_done = True
    from importlib.metadata import entry_points

    return [ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)]


def import_plugins(modules: Iterable[str] = (), *, entry_points: bool = True) -> list[str]:
    """Import third-party plug-in modules so that they register themselves.

    A module already imported is not imported again (Python caches it), so calling this
    for every config that is validated is cheap; the entry points are read once per
    process.

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
        names += _entry_point_modules()
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(
                f"plugin module '{name}' cannot be imported: {exc}",
                hint="install the package that provides it, or fix the name under `plugins:`",
            ) from None
    return names


@dataclass(frozen=True)
class Plugin(Generic[F]):
    """One implementation the config can name: its type, its config model, its factory.

    Attributes:
        name: the ``type:`` value in the config.
        config: the Pydantic model an entry of that type is validated against.
        factory: builds the implementation from a validated entry; its signature is
            the kind's (see ``register_connector``, ``register_exporter``,
            ``register_provider``).
    """

    name: str
    config: type[Any]
    factory: F


#: connectors by type (``connectors.<name>.type``)
CONNECTORS: Registry[Plugin[Any]] = Registry(
    "connector",
    builtins=(
        "fmf_spark.connectors.local",
        "fmf_spark.connectors.s3",
        "fmf_spark.connectors.sharepoint",
    ),
)

#: exporters (sinks) by type (``exporters.<name>.type``)
EXPORTERS: Registry[Plugin[Any]] = Registry(
    "exporter",
    builtins=(
        "fmf_spark.exporters.delta",
        "fmf_spark.exporters.fabric",
        "fmf_spark.exporters.s3",
        "fmf_spark.exporters.dynamodb",
        "fmf_spark.exporters.redshift",
        "fmf_spark.exporters.sharepoint_excel",
    ),
)

#: model providers by type (``inference.providers.<name>.type``)
PROVIDERS: Registry[Plugin[Any]] = Registry(
    "provider",
    builtins=(
        "fmf_spark.inference.azure_openai",
        "fmf_spark.inference.bedrock",
        "fmf_spark.inference.databricks",
        "fmf_spark.inference.simulator",
    ),
)
