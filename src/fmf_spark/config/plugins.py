"""Config sections whose entries name a plug-in ``type``, validated by that type's model.

``connectors``, ``exporters`` and ``inference.providers`` accept any registered type:
:func:`plugin_entry` makes the annotation of one entry, which looks the ``type`` up in
its registry (:mod:`fmf_spark.registry`, below the config) and validates the entry
against the model the plug-in registered. The config imports no implementation: the
registry imports the built-in modules on first use, and third-party ones come from the
config's ``plugins:`` list. Errors keep their full path (``connectors.docs.root``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, SerializeAsAny, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from fmf_spark.registry import Plugin, Registry


@dataclass(frozen=True)
class PluginSection:
    """Marks an annotation as a plug-in entry (the loader resolves its model for errors)."""

    registry: Registry[Plugin[Any]]

    def model_for(self, data: Any) -> type[BaseModel] | None:
        """The registered model of a raw entry, or ``None`` when its type is unknown."""
        if not isinstance(data, Mapping) or not isinstance(data.get("type"), str):
            return None
        plugin = self.registry.find(data["type"])
        return None if plugin is None else plugin.config


def _type_error(kind: str, value: Any, names: list[str]) -> ValidationError:
    known = ", ".join(repr(n) for n in names) or "none"
    if value is None:
        error = PydanticCustomError(
            "plugin_type_missing", f"Field required; registered {kind} types: {known}"
        )
    else:
        error = PydanticCustomError(
            "plugin_type", f"unknown {kind} type {value!r}; registered: {known}"
        )
    detail = InitErrorDetails(type=error, loc=("type",), input=value)
    return ValidationError.from_exception_data(f"{kind} entry", [detail])


def plugin_entry(registry: Registry[Plugin[Any]], base: type[BaseModel]) -> Any:
    """The annotation of one entry of a plug-in section.

    Args:
        registry: where the entry's ``type`` is looked up.
        base: what every model of that kind derives from (the fields shared by all).
    """

    def validate(raw: Any) -> Any:
        if isinstance(raw, base):  # already validated (a copy of a config, a test)
            return raw
        if not isinstance(raw, Mapping):
            return raw  # the base model reports the wrong type
        type_name = raw.get("type")
        plugin = registry.find(type_name) if isinstance(type_name, str) else None
        if plugin is None:
            raise _type_error(registry.kind, type_name, registry.names())
        return plugin.config.model_validate(dict(raw))

    # SerializeAsAny: dumps (``fmf config show``, the config hash) keep the registered
    # model's fields, not only the base's
    return Annotated[SerializeAsAny[base], BeforeValidator(validate), PluginSection(registry)]  # type: ignore[misc,valid-type]
