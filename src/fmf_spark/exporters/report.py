"""Record a standalone export (``fmf export``) in the run's ``run.yaml`` and MLflow run.

A chain run records its exports itself (``RunContext.record_export``); this module is
for exporting an *existing* run later: the result replaces the sink's entry in the
``exports`` list of ``run.yaml``, and its counts are logged as ``exports.<sink>.<count>``
metrics on the MLflow run named in ``run.yaml`` (``mlflow.run_id``), when there is one.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from fmf_spark.exporters.base import ExportResult
from fmf_spark.observability.logging import get_logger
from fmf_spark.observability.redaction import redact

if TYPE_CHECKING:
    from fmf_spark.config.models import FmfConfig

log = get_logger(__name__)


def record_export(input_path: str, result: ExportResult, config: FmfConfig | None = None) -> None:
    """Record ``result`` in ``<run dir>/run.yaml`` and on the run's MLflow run.

    ``run.yaml`` is updated only when the run folder is a local (or mounted) path.
    Failures to record are logged, never raised: the export itself succeeded.
    """
    run_dir = os.path.dirname(input_path.rstrip("/")) or "."
    if "://" in run_dir or not os.path.isdir(run_dir):
        return
    data = _merge_run_yaml(os.path.join(run_dir, "run.yaml"), result)
    mlflow_run = (data.get("mlflow") or {}).get("run_id") if isinstance(data, dict) else None
    if config is not None and mlflow_run and config.observability.mlflow.enabled:
        _log_mlflow(config, str(mlflow_run), result)


def _merge_run_yaml(path: str, result: ExportResult) -> dict[str, Any]:
    import yaml

    data: dict[str, Any] = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    exports = [
        e
        for e in (data.get("exports") or [])
        if not (isinstance(e, dict) and e.get("sink") == result.sink)
    ]
    exports.append(result.as_dict())
    data["exports"] = exports
    # the export is finished: the run no longer needs keeping for it (fmf runs prune)
    pending = [s for s in data.get("pending_exports") or [] if s != result.sink]
    if pending:
        data["pending_exports"] = pending
    else:
        data.pop("pending_exports", None)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        yaml.safe_dump(data, f, sort_keys=False)
    os.replace(tmp, path)
    return data


def _log_mlflow(config: FmfConfig, run_id: str, result: ExportResult) -> None:
    try:
        from mlflow import MlflowClient
        from mlflow.entities import Metric

        from fmf_spark.observability.mlflow_run import tracking_uri

        client = MlflowClient(tracking_uri=tracking_uri(config))
        now = int(time.time() * 1000)
        counts = {k: v for k, v in result.as_dict().items() if isinstance(v, int)}
        client.log_batch(
            run_id,
            metrics=[
                Metric(f"exports.{result.sink}.{k}", float(v), now, 0) for k, v in counts.items()
            ],
        )
    except Exception as exc:  # recording must never fail an export that succeeded
        log.warning("export metrics not logged to MLflow run %s: %s", run_id, redact(str(exc)))
