"""The exporter protocol, its registry, results and the helpers every sink shares.

An exporter writes one micro-batch at a time. :func:`fmf_spark.exporters.export_table`
drives it from a Structured Streaming ``foreachBatch`` over the run's outputs Delta
table, so each sink only has to make *one batch* idempotent: a batch that is replayed
after a crash (same ``batch_id``, same rows, the offsets are in the checkpoint) must
leave the sink as if it had been written once. Each sink says how it achieves that in
its module docstring.

``write_batch`` runs on the driver (``foreachBatch`` is a driver-side callback); sinks
that move data push the work to executors themselves (``mapInPandas``) and bring back
only counts and failed-row summaries, so nothing collects a whole batch on the driver.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from fmf_spark.config.exporters import ExporterConfig
from fmf_spark.registry import EXPORTERS, Plugin

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from fmf_spark.config.secrets import SecretResolver


@dataclass
class BatchResult:
    """What one micro-batch did to a sink.

    ``written`` counts every row the sink accepted (inserted or replaced);
    ``updated`` is the part of ``written`` that replaced an existing row, when the sink
    can tell (Delta MERGE, SQL MERGE, Excel upsert; not S3 or DynamoDB, which report 0);
    ``failed`` counts rows the sink rejected (they are listed in ``failures``).
    """

    written: int = 0
    updated: int = 0
    failed: int = 0
    retries: int = 0
    failures: list[RowFailure] = field(default_factory=list)
    skipped: bool = False


@dataclass(frozen=True)
class RowFailure:
    """One row a sink rejected: its key (as JSON) and an error like ``schemas.ERROR_STRUCT``."""

    key: str
    code: str
    message: str
    retryable: bool = False


@dataclass
class ExportResult:
    """The outcome of one :func:`export_table` call, for ``run.yaml`` and MLflow.

    Attributes:
        sink: the sink name (a key of ``exporters`` in ``fmf.yaml``).
        rows_written: rows the sink accepted in this call (inserted or replaced).
        rows_updated: of those, rows that replaced an existing row (0 where unknown).
        rows_failed: rows the sink rejected (row errors such as an item over 400 KB).
        batches: micro-batches processed in this call (0 when nothing was new).
        batches_skipped: replayed batches the sink had already committed.
        retries: throttling / conflict retries the sink needed.
        errors_path: Delta table holding the rejected rows, when there were any.
    """

    sink: str
    rows_written: int = 0
    rows_updated: int = 0
    rows_failed: int = 0
    batches: int = 0
    batches_skipped: int = 0
    retries: int = 0
    errors_path: str | None = None

    def add(self, batch: BatchResult) -> None:
        self.batches += 1
        self.batches_skipped += int(batch.skipped)
        self.rows_written += batch.written
        self.rows_updated += batch.updated
        self.rows_failed += batch.failed
        self.retries += batch.retries

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for ``run.yaml`` and MLflow metrics (no secrets, only counts)."""
        return asdict(self)


@dataclass(frozen=True)
class BatchContext:
    """What a sink knows about the batch it writes.

    Attributes:
        run_id: the run being exported (used in object names and paths).
        batch_id: the micro-batch id from the streaming checkpoint; stable on replay.
        stream_id: a random id created with the checkpoint; a new checkpoint gets a new
            one, so ids derived from it (Delta ``txnAppId``) never collide with the
            batches of an older checkpoint.
    """

    run_id: str
    batch_id: int
    stream_id: str


@runtime_checkable
class Exporter(Protocol):
    """A sink for the outputs table.

    Implementations are plain picklable objects built on the driver from their config
    (secrets already resolved to ``SecretStr``).
    """

    name: str

    def precheck(self) -> None:
        """Check reachability and permissions before any Spark work; raise ExportError."""
        ...

    def write_batch(self, df: DataFrame, ctx: BatchContext) -> BatchResult:
        """Write one (already de-duplicated) micro-batch idempotently."""
        ...


#: ``(sink name, its validated config, secret resolver) -> exporter``
ExporterFactory = Callable[[str, Any, "SecretResolver"], Exporter]


def register_exporter(
    type_name: str, config_model: type[ExporterConfig], factory: ExporterFactory
) -> Plugin[ExporterFactory]:
    """Register a sink type: the model its ``exporters`` entries are validated against
    and the factory that builds it.

    Raises:
        ValueError: when the name is registered twice (a silent override hides bugs).
    """
    return EXPORTERS.register(type_name, Plugin(type_name, config_model, factory))


def registered_exporters() -> list[str]:
    """The sink types a config may name."""
    return EXPORTERS.names()


def build_exporter(
    name: str, cfg: ExporterConfig, resolver: SecretResolver | None = None
) -> Exporter:
    """Build the exporter for one configured sink.

    Args:
        name: the sink's name (a key of ``exporters``).
        cfg: its validated config entry.
        resolver: resolves the sink's secrets (a config without secrets needs none).

    Example:
        >>> exporter = build_exporter("outputs_delta", config.exporters["outputs_delta"])  # doctest: +SKIP
        >>> exporter.precheck()  # doctest: +SKIP
    """
    if resolver is None:
        from fmf_spark.config.secrets import SecretResolver
        from fmf_spark.config.secrets_models import SecretsConfig

        resolver = SecretResolver(SecretsConfig())
    factory: ExporterFactory = EXPORTERS.get(cfg.type).factory
    return factory(name, cfg, resolver)


# --- failpoints: named places where tests inject a crash ---------------------------------

_FAILPOINTS: dict[str, Callable[[dict[str, Any]], None]] = {}


def set_failpoint(name: str, action: Callable[[dict[str, Any]], None] | None) -> None:
    """Arm (or with ``None`` disarm) a failpoint; tests only.

    Failpoints run on the driver inside ``foreachBatch`` (``export.after_batch_written``,
    ``sql.after_copy``): they simulate a process dying at the worst moment, after the
    sink changed and before the streaming checkpoint recorded it.
    """
    if action is None:
        _FAILPOINTS.pop(name, None)
    else:
        _FAILPOINTS[name] = action


def failpoint(name: str, **info: Any) -> None:
    action = _FAILPOINTS.get(name)
    if action is not None:
        action(info)
