"""Report an export's counts into ``run.yaml`` and the active MLflow run."""

from __future__ import annotations

import os
from typing import Any

from fmf_spark.exporters.base import ExportResult
from fmf_spark.observability.logging import get_logger

log = get_logger(__name__)


def record_export(input_path: str, result: ExportResult) -> None:
    """Record ``result`` in ``<run dir>/run.yaml`` (``exports`` list) and log metrics.

    ``exports`` holds one ``ExportResult.as_dict()`` per sink, as the RunContext of a
    chain run writes it; exporting the same sink again replaces its entry.

    ``run.yaml`` is updated only when the run folder is a local (or mounted) path; for
    ``s3://`` runs the chain runner's RunContext writes it. MLflow metrics go to the
    active run when mlflow is installed and a run is active (``export.<sink>.<count>``).
    """
    run_dir = os.path.dirname(input_path.rstrip("/")) or "."
    if "://" not in run_dir and os.path.isdir(run_dir):
        _merge_run_yaml(os.path.join(run_dir, "run.yaml"), result)
    _log_mlflow(result)


def _merge_run_yaml(path: str, result: ExportResult) -> None:
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
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        yaml.safe_dump(data, f, sort_keys=False)
    os.replace(tmp, path)


def _log_mlflow(result: ExportResult) -> None:
    try:
        import mlflow
    except ImportError:
        return
    if mlflow.active_run() is None:
        return
    counts = {k: v for k, v in result.as_dict().items() if isinstance(v, int)}
    mlflow.log_metrics({f"export.{result.sink}.{k}": float(v) for k, v in counts.items()})
