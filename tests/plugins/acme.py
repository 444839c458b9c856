"""A third-party plug-in module, outside the package: one loader and one sink.

Named under ``plugins:`` in a config file, it is imported before the config is
validated (and by each Spark worker before it parses), and registers:

- a loader for INI files (``text/x-ini``, ``*.ini``): each section becomes a heading,
  each key a bullet;
- a sink ``acme_jsonl``: the outputs upserted by key into one JSON-lines file.
"""

from __future__ import annotations

import configparser
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from fmf_spark.config.base import Location
from fmf_spark.config.exporters import ExporterConfig
from fmf_spark.errors import ExportError, ParseFailure
from fmf_spark.exporters import BatchContext, BatchResult, register_exporter
from fmf_spark.processing.base import Loaded, LoaderSpec, register_loader

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from fmf_spark.config.processing import ProcessingConfig
    from fmf_spark.config.secrets import SecretResolver

INI = "text/x-ini"


def load_ini(data: bytes, cfg: ProcessingConfig) -> Loaded:
    parser = configparser.ConfigParser()
    try:
        parser.read_string(data.decode("utf-8"))
    except (UnicodeDecodeError, configparser.Error) as exc:
        raise ParseFailure(f"not an INI file: {exc}", code="processing.corrupt") from None
    parts = []
    for section in parser.sections():
        items = "\n".join(f"- {key}: {value}" for key, value in parser.items(section))
        parts.append(f"# {section}\n\n{items}")
    return Loaded("\n\n".join(parts), metadata={"sections": str(len(parser.sections()))})


class AcmeJsonlConfig(ExporterConfig):
    type: Literal["acme_jsonl"] = "acme_jsonl"
    path: Location = Field(description="The JSON-lines file the rows go to.")


class AcmeJsonlExporter:
    """Upserts each batch, by key, into one JSON-lines file (on the driver)."""

    def __init__(self, name: str, cfg: AcmeJsonlConfig) -> None:
        self.name = name
        self.cfg = cfg

    def precheck(self) -> None:
        folder = Path(self.cfg.path).parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise ExportError(
                f"sink '{self.name}': folder {folder} does not exist or is not writable",
                code="export.config",
            )

    def _read(self) -> dict[str, dict[str, Any]]:
        path = Path(self.cfg.path)
        if not path.exists():
            return {}
        rows = [json.loads(line) for line in path.read_text().splitlines() if line]
        return {self._key(r): r for r in rows}

    def _key(self, row: dict[str, Any]) -> str:
        return json.dumps([row.get(k) for k in self.cfg.key_fields])

    def write_batch(self, df: DataFrame, ctx: BatchContext) -> BatchResult:
        rows = self._read()
        written = updated = 0
        for row in df.toLocalIterator():
            record = row.asDict(recursive=True)
            key = self._key(record)
            updated += key in rows
            written += 1
            rows[key] = record
        text = "".join(json.dumps(r, default=str, sort_keys=True) + "\n" for r in rows.values())
        Path(self.cfg.path).write_text(text)
        return BatchResult(written=written, updated=updated)


def _sink(name: str, cfg: AcmeJsonlConfig, resolver: SecretResolver) -> AcmeJsonlExporter:
    return AcmeJsonlExporter(name, cfg)


register_loader(LoaderSpec(INI, load_ini, ("ini",)))
register_exporter("acme_jsonl", AcmeJsonlConfig, _sink)
