"""Shared building blocks of the configuration models."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.fields import FieldInfo

from fmf_spark.observability.redaction import redact


@dataclass(frozen=True)
class _LocationMarker:
    """Marks a config field as a file or folder location (see :data:`Location`)."""


LOCATION_MARKER = _LocationMarker()

#: A file or folder: a local path or a URI (``s3://``, ``abfss://``, ``dbfs:/``,
#: ``/Volumes/...``). A relative path resolves against the config's ``base_dir`` (the
#: config file's folder by default) when the config is loaded; a plug-in's config model
#: marks its own path fields with this type too.
Location = Annotated[str, LOCATION_MARKER]


def is_location_field(field: FieldInfo) -> bool:
    """Whether a model field is a :data:`Location` (also ``Location | None``)."""
    if LOCATION_MARKER in field.metadata:
        return True
    annotation = field.annotation
    if get_origin(annotation) is Union or type(annotation).__name__ == "UnionType":
        return any(
            get_origin(member) is Annotated and LOCATION_MARKER in member.__metadata__
            for member in get_args(annotation)
        )
    return False


class StrictModel(BaseModel):
    """Base of every config model: unknown keys are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_default=True, populate_by_name=True)

    # A config holds secret references, not values; but a URL may still carry a SAS
    # signature or a value someone pasted, so what is printed is masked like a log line.
    def __repr__(self) -> str:
        return redact(super().__repr__())

    def __str__(self) -> str:
        return redact(super().__str__())


class SecretRef(StrictModel):
    """A reference to a secret by logical name, resolved at run time by a provider.

    In YAML: ``api_key: {secret: azure_openai_key}``, where ``azure_openai_key`` is a key
    of ``secrets.names``. A literal secret value never appears in the config file.
    The short form ``api_key: secret:azure_openai_key`` is accepted too.
    """

    secret: str = Field(description="Logical secret name, a key of `secrets.names`.")

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, data: Any) -> Any:
        if isinstance(data, str):
            if data.startswith("secret:"):
                return {"secret": data.removeprefix("secret:")}
            raise ValueError(
                "a secret must be a reference like {secret: <logical name>} or "
                "'secret:<logical name>', never a literal value"
            )
        return data

    def __str__(self) -> str:
        return f"secret:{self.secret}"
