"""Microsoft Fabric Lakehouse sink: Delta to OneLake, by ``abfss://`` path or table name.

A Fabric Lakehouse stores its tables as Delta in OneLake, so this sink is the Delta
sink (same ``txnAppId``/``txnVersion`` idempotence, same append/MERGE modes) pointed at
a Lakehouse. What Fabric needs:

- **Workspace and lakehouse**: the path is
  ``abfss://<workspace>@onelake.dfs.fabric.microsoft.com/<lakehouse>.Lakehouse/Tables/<table>``
  (names or GUIDs). Tables written under ``Tables/`` appear in the Lakehouse and its SQL
  endpoint automatically. Inside a Fabric notebook or Spark job definition whose
  default lakehouse is set, ``table: <name>`` (or ``<lakehouse>.<table>``) works too.
- **Identity**: in Fabric Spark the job runs as the submitting user or the workspace
  identity, which needs *Contributor* (or higher) on the workspace. Outside Fabric
  (Databricks, local Spark) the ABFS driver needs an Entra ID service principal with
  workspace access and the ``fs.azure.account.*`` OAuth settings for
  ``onelake.dfs.fabric.microsoft.com`` in the cluster's Hadoop conf (never in fmf.yaml;
  the secret belongs to the cluster's secret scope).
- **Runtime**: Fabric Runtime 1.3+ (Spark 3.5, Delta 3.x) reads tables written here;
  do not enable table features it lacks (e.g. deletion vectors are fine, liquid
  clustering needs runtime support).

Locally (tests, laptop) ``path`` is a plain folder and the sink behaves exactly like
``type: delta``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from fmf_spark.config.base import Location
from fmf_spark.errors import ExportError
from fmf_spark.exporters.base import register_exporter
from fmf_spark.exporters.delta import DeltaExporter, DeltaTargetConfig

if TYPE_CHECKING:
    from fmf_spark.config.secrets import SecretResolver

EXPORTER_TYPE = "fabric"
ONELAKE_HOST = "onelake.dfs.fabric.microsoft.com"


class FabricExporterConfig(DeltaTargetConfig):
    type: Literal["fabric"] = "fabric"
    path: Location | None = Field(
        default=None, description=f"abfss://<ws>@{ONELAKE_HOST}/<lakehouse>.Lakehouse/Tables/..."
    )
    table: str | None = Field(default=None, description="Lakehouse table name.")


class FabricExporter(DeltaExporter):
    """A Delta sink with OneLake path checks."""

    def __init__(self, name: str, cfg: FabricExporterConfig) -> None:
        super().__init__(name, cfg)

    def precheck(self) -> None:
        path = self.cfg.path or ""
        if path.startswith("abfss://"):
            if ONELAKE_HOST not in path:
                raise ExportError(
                    f"sink '{self.name}': {path} is not a OneLake path",
                    code="export.config",
                    hint=f"use abfss://<workspace>@{ONELAKE_HOST}/<lakehouse>.Lakehouse/Tables/<table>",
                )
            if ".Lakehouse/Tables/" not in path and "/Tables/" not in path:
                raise ExportError(
                    f"sink '{self.name}': {path} is outside a Lakehouse's Tables/ folder, "
                    "so the table would not appear in the Lakehouse",
                    code="export.config",
                )
        super().precheck()


def _factory(name: str, cfg: FabricExporterConfig, resolver: SecretResolver) -> FabricExporter:
    return FabricExporter(name, cfg)


register_exporter(EXPORTER_TYPE, FabricExporterConfig, _factory)
