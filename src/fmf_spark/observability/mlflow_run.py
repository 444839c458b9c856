"""The MLflow side of a run: params, metrics, ``run.yaml``, the chain, linked prompts.

Tracking URI: ``observability.mlflow.tracking_uri`` when set (``databricks`` on
Databricks), else ``MLFLOW_TRACKING_URI``, else a SQLite store in the config's
``base_dir`` (the repository root for ``conf/fmf.yaml``; the working folder without a
config file or when ``base_dir`` is remote), ``sqlite:///<base>/mlflow.db`` with
artefacts in ``<base>/mlruns/<experiment>``: no server, and
``mlflow ui --backend-store-uri sqlite:///mlflow.db`` shows the runs (that needs the full
``mlflow`` package; the extra installs ``mlflow-skinny``, the client, with SQLAlchemy and
Alembic). (MLflow 3 keeps its ``./mlruns`` file store in maintenance mode and refuses it
by default, hence SQLite.)

MLflow is lineage, not a dependency of the work: when it is missing or its store
fails, the run logs a warning, notes it in ``run.yaml`` and carries on.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmf_spark.observability.logging import get_logger
from fmf_spark.observability.redaction import redact

if TYPE_CHECKING:
    from fmf_spark.config.models import FmfConfig
    from fmf_spark.observability.run import RunContext

log = get_logger(__name__)

#: MLflow's limit on a param value
MAX_PARAM_CHARS = 6000


#: tracking URI schemes of MLflow's SQLAlchemy store (``postgresql+psycopg://`` too)
_SQL_STORES = frozenset({"sqlite", "postgresql", "mysql", "mssql"})


def tracking_uri(config: FmfConfig) -> str:
    """The tracking URI this config uses (see the module docstring)."""
    configured = config.observability.mlflow.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if configured:
        return configured
    base = config.base_dir
    folder = (
        Path(base) if base and "://" not in base and not base.startswith("dbfs:") else Path.cwd()
    )
    return f"sqlite:///{folder / 'mlflow.db'}"


def _artifact_location(uri: str, experiment: str) -> str | None:
    # a local SQLite store keeps its artefacts beside the database, not in the cwd of
    # whichever process created the experiment first
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///"))
        return (db.parent / "mlruns" / experiment.strip("/").replace("/", "_")).as_uri()
    return None


def experiment_id(client: Any, name: str, uri: str) -> str:
    """The id of experiment ``name``, created when missing."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    return str(client.create_experiment(name, artifact_location=_artifact_location(uri, name)))


def run_params(ctx: RunContext) -> dict[str, str]:
    """The params of the MLflow run (redacted, within MLflow's size limit)."""
    record = ctx.record()
    params: dict[str, Any] = {
        "fmf.run_id": ctx.run_id,
        "fmf.version": record["fmf_version"],
        "project": record["project"],
        "profile": record["profile"],
        "config_hash": record["config_hash"],
        "run_dir": ctx.run_dir,
    }
    chain = record.get("chain") or {}
    for key in ("path", "name", "hash"):
        if chain.get(key):
            params[f"chain.{key}"] = chain[key]
    for use in ctx.prompts:
        params[f"step.{use.step}.prompt"] = f"{use.id}#{use.version}"
        params[f"step.{use.step}.prompt_hash"] = use.hash
        for key in ("scope", "provider", "model"):
            value = getattr(use, key)
            if value:
                params[f"step.{use.step}.{key}"] = value
    for name, location in ctx.outputs.items():
        params[f"outputs.{name}"] = location
    return {k: redact(str(v))[:MAX_PARAM_CHARS] for k, v in params.items() if v not in (None, "")}


class MlflowRunSession:
    """An open MLflow run for one fmf run; see :meth:`open` and :meth:`log_and_close`."""

    def __init__(self, client: Any, run_id: str, uri: str, experiment: str) -> None:
        self.client = client
        self.run_id = run_id
        self.uri = uri
        self.experiment = experiment

    @classmethod
    def open(cls, ctx: RunContext) -> MlflowRunSession | None:
        """Create the MLflow run (so its id can go into ``run.yaml``); ``None`` on failure."""
        cfg = ctx.config.observability.mlflow
        uri = tracking_uri(ctx.config)
        try:
            from fmf_spark._deps import require

            mlflow = require("mlflow")
            if uri.split(":", 1)[0].split("+", 1)[0] in _SQL_STORES:
                # MLflow's SQL store (the default sqlite:///.../mlflow.db): what the mlflow
                # extra adds to mlflow-skinny for it, named here rather than deep in MLflow
                require("sqlalchemy", extra="mlflow")
                require("alembic", extra="mlflow")
            client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
            exp_id = experiment_id(client, cfg.experiment, uri)
            run = client.create_run(
                exp_id,
                run_name=ctx.run_id,
                tags={"fmf.run_id": ctx.run_id, "fmf.status": ctx.status or "running"},
            )
        except Exception as exc:  # MLflow must never fail the run it records
            log.warning("MLflow run not recorded (%s): %s", uri, redact(str(exc)))
            ctx.mlflow = {"tracking_uri": redact(uri), "error": redact(str(exc))[:500]}
            return None
        session = cls(client, run.info.run_id, uri, cfg.experiment)
        ctx.mlflow = {
            "tracking_uri": redact(uri),
            "experiment": cfg.experiment,
            "run_id": session.run_id,
        }
        return session

    def log_and_close(self, ctx: RunContext, run_yaml_text: str) -> None:
        """Log params, metrics, ``run.yaml``, the chain file and linked prompts; end the run."""
        from mlflow.entities import Metric, Param, RunTag

        from fmf_spark.observability.run import flatten_metrics

        status = "FINISHED" if ctx.status == "succeeded" else "FAILED"
        try:
            now_ms = int(ctx.ended_at.timestamp() * 1000) if ctx.ended_at else 0
            metrics = flatten_metrics(ctx.metrics)
            metrics.update({f"time_s.{k}": v for k, v in ctx.timings.items()})
            self.client.log_batch(
                self.run_id,
                metrics=[Metric(k, v, now_ms, 0) for k, v in sorted(metrics.items())],
                params=[Param(k, v) for k, v in sorted(run_params(ctx).items())],
                tags=[RunTag("fmf.status", ctx.status or "unknown")],
            )
            with tempfile.TemporaryDirectory(prefix="fmf-mlflow-") as tmp:
                path = Path(tmp) / "run.yaml"
                path.write_text(run_yaml_text, encoding="utf-8")
                self.client.log_artifact(self.run_id, str(path))
                if ctx.chain_path and Path(ctx.chain_path).is_file():
                    self.client.log_artifact(self.run_id, ctx.chain_path, "chain")
                elif ctx.chain_path and ctx.chain_text is not None:  # a remote chain file
                    chain = Path(tmp) / (Path(ctx.chain_path).name or "chain.yaml")
                    chain.write_text(ctx.chain_text, encoding="utf-8")
                    self.client.log_artifact(self.run_id, str(chain), "chain")
            if ctx.config.prompts.mlflow_sync:
                self._link_prompts(ctx)
        except Exception as exc:  # lineage is best effort; the run's own record is run.yaml
            log.warning("MLflow run %s incomplete: %s", self.run_id, redact(str(exc)))
            status = "FAILED"
        finally:
            try:
                self.client.set_terminated(self.run_id, status=status)
            except Exception as exc:
                log.warning("could not close MLflow run %s: %s", self.run_id, redact(str(exc)))

    def _link_prompts(self, ctx: RunContext) -> None:
        from fmf_spark.observability.mlflow_prompts import mirror_version

        if not hasattr(self.client, "link_prompt_version_to_run"):
            log.warning("this MLflow cannot link prompt versions to runs; skipped")
            return
        import mlflow

        # MLflow's registry store looks the run up through the *global* tracking URI,
        # not the client's, so point it at our store while linking
        previous = mlflow.get_tracking_uri()
        # set_tracking_uri also exports MLFLOW_TRACKING_URI; left behind, it would steer
        # the next run in this process (a warm Lambda, a notebook) and its subprocesses
        previous_env = os.environ.get("MLFLOW_TRACKING_URI")
        mlflow.set_tracking_uri(self.uri)
        try:
            for ref, version in ctx.prompt_versions.items():
                try:
                    mirrored = mirror_version(
                        version, self.client, prefix=ctx.config.prompts.mlflow_prefix
                    )
                    if mirrored is not None:
                        self.client.link_prompt_version_to_run(self.run_id, mirrored)
                except Exception as exc:  # a registry without prompts (old MLflow, no UC)
                    log.warning("prompt %s not linked to MLflow run: %s", ref, redact(str(exc)))
        finally:
            mlflow.set_tracking_uri(previous)
            if previous_env is None:
                os.environ.pop("MLFLOW_TRACKING_URI", None)
            else:
                os.environ["MLFLOW_TRACKING_URI"] = previous_env
