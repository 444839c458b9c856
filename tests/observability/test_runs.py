"""The run index and retention: ``fmf runs list|show|prune`` on local and S3 (moto) roots."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest
import yaml

from fmf_spark.cli import main
from fmf_spark.config import load_config
from fmf_spark.config.models import RetentionConfig
from fmf_spark.observability.run import RunContext
from fmf_spark.observability.runs import (
    LocalStore,
    S3Store,
    list_runs,
    open_store,
    plan_prune,
    prune,
)
from tests.chains.helpers import ROOT
from tests.observability.helpers import NOW, local_tree, run_files, write_local

SHARED = {  # under the root, never a run: the request cache, an export target, a stray folder
    "_cache/outputs/_delta_log/00000000000000000000.json": "{}",
    "_cache/outputs/part-0.parquet": "x",
    "exports/outputs/part-0.parquet": "x",
    "process-20200101T000000Z/documents/part-0.parquet": "x",
}


def _layout(now: datetime) -> tuple[dict[str, str], dict[str, str]]:
    """({name: run id}, files) of a root with one run of every kind."""
    runs: dict[str, str] = {}
    files = dict(SHARED)

    def add(name: str, *args, **kwargs) -> None:
        rid, more = run_files(*args, now=now, **kwargs)
        runs[name] = rid
        files.update(more)

    add("old_ok", 40, "000001")
    add("old_failed", 35, "000002", "failed", error={"code": "chain.step_failed"})
    add("recent", 1, "000003")
    add("newest", 0.5, "000009")
    # started long ago, still beating: a two-day job in progress
    add("running", 50, "000004", "running", heartbeat_ago=timedelta(minutes=1))
    # says running, but its driver stopped beating two days ago
    add("abandoned", 45, "000005", "running", heartbeat_ago=timedelta(days=2))
    add("pending", 60, "000006", "failed", pending_exports=["outputs_delta"])
    add("mid_batch", 60, "000007", "failed", checkpoint=([0, 1], [0]))
    add("export_done", 60, "000008", checkpoint=([0, 1], [0, 1]))
    add("holds_target", 70, "00000a")
    return runs, files


def _retention(**kw) -> RetentionConfig:
    return RetentionConfig(**kw)


def _config_with_target(root: str, run_id: str):
    """A config whose Delta exporter writes inside the run ``run_id``'s folder."""
    return load_config(
        ROOT / "conf" / "fmf.yaml",
        profile="local",
        environ={},
        overrides=[f"exporters.outputs_delta.path={root}/{run_id}/delivered"],
    )


def test_prune_local_keeps_what_is_needed(tmp_path: Path) -> None:
    root = tmp_path / "artefacts"
    runs, files = _layout(NOW)
    write_local(root, files)
    before = local_tree(root)
    cfg = _config_with_target(str(root), runs["holds_target"])
    retention = _retention(keep_last=2, max_age_days=30)

    plan = prune(str(root), retention, exporters=cfg, dry_run=True, now=NOW)
    assert local_tree(root) == before  # a dry run deletes nothing
    decisions = {d.run.run_id: (d.delete, d.reason) for d in plan.decisions}
    name = {rid: n for n, rid in runs.items()}
    assert {name[rid]: d for rid, d in decisions.items()} == {
        "newest": (False, "among the newest 2"),
        "recent": (False, "among the newest 2"),
        "old_ok": (True, "not among the newest 2 and older than 30 days"),
        "old_failed": (True, "not among the newest 2 and older than 30 days"),
        "running": (False, "in progress (recent heartbeat)"),
        "abandoned": (True, "not among the newest 2 and older than 30 days"),
        "pending": (False, "export still needs it: outputs_delta not finished"),
        "mid_batch": (
            False,
            "export still needs it: checkpoint _checkpoints/outputs_delta mid-batch",
        ),
        "export_done": (True, "not among the newest 2 and older than 30 days"),
        "holds_target": (False, f"holds an export target: {root}/{runs['holds_target']}/delivered"),
    }
    assert {d.run.run_id: d.run.status for d in plan.decisions}[runs["abandoned"]] == "abandoned"

    result = prune(str(root), retention, exporters=cfg, now=NOW)
    gone = {runs[n] for n in ("old_ok", "old_failed", "abandoned", "export_done")}
    assert {r.run_id for r in result.deleted} == gone
    expected = {f for f in before if f.split("/")[0] not in gone}
    assert local_tree(root) == expected  # the cache, exports/ and process-* untouched
    assert result.files_deleted == len(before) - len(expected)


def test_keep_failed_and_no_rule(tmp_path: Path) -> None:
    root = tmp_path / "artefacts"
    runs, files = _layout(NOW)
    write_local(root, files)
    kept_failed = plan_prune(str(root), _retention(max_age_days=30, keep_failed=True), now=NOW)
    deleted = {d.run.run_id for d in kept_failed if d.delete}
    assert deleted == {runs["old_ok"], runs["export_done"], runs["holds_target"]}
    reasons = {d.run.run_id: d.reason for d in kept_failed}
    assert reasons[runs["abandoned"]] == "abandoned runs are kept (keep_failed)"
    assert reasons[runs["old_failed"]] == "failed runs are kept (keep_failed)"
    # no rule: nothing goes
    assert not any(d.delete for d in plan_prune(str(root), _retention(), now=NOW))


def test_a_run_in_progress_is_never_pruned(tmp_path: Path) -> None:
    root = tmp_path / "artefacts"
    cfg = load_config(
        ROOT / "conf" / "fmf.yaml",
        profile="local",
        environ={},
        overrides=[f"artefacts.root={root}", "observability.mlflow.enabled=false"],
    )
    ctx = RunContext.start(cfg)
    record = yaml.safe_load((root / ctx.run_id / "run.yaml").read_text())
    assert record["status"] == "running"  # on record from the start
    assert (root / ctx.run_id / "heartbeat").is_file()
    keep_none = _retention(keep_last=0)
    (decision,) = plan_prune(str(root), keep_none)
    assert (decision.delete, decision.reason) == (False, "in progress (recent heartbeat)")
    assert prune(str(root), keep_none).deleted == []
    ctx.finish("succeeded")
    assert [r.run_id for r in prune(str(root), keep_none).deleted] == [ctx.run_id]
    assert not (root / ctx.run_id).exists()


def test_runs_list_and_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "artefacts"
    now = datetime.now(timezone.utc)
    runs, files = _layout(now)
    write_local(root, files)
    assert main(["runs", "list", "--artefacts", str(root), "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["run_id"] for r in listed] == [
        runs[n]
        for n in (
            "newest",
            "recent",
            "old_failed",
            "old_ok",
            "abandoned",
            "running",
            "export_done",  # started at the same time: by run id, descending
            "mid_batch",
            "pending",
            "holds_target",
        )
    ]
    started = now - timedelta(days=1)
    assert listed[1] == {
        "run_id": runs["recent"],
        "chain": "sample",
        "status": "succeeded",
        "started_at": started.isoformat(timespec="seconds"),
        "duration_s": 180.0,
        "documents": 6,
        "calls": 40,
        "tokens": 10000,
        "cost_usd": 0.0021,
    }
    assert {r["run_id"]: r["status"] for r in listed}[runs["running"]] == "running"

    assert main(["runs", "list", "--artefacts", str(root), "--limit", "2"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == [
        "run", "id", "chain", "status", "started", "(UTC)", "duration", "docs", "calls",
        "tokens", "cost", "USD",
    ]  # fmt: skip
    assert table[3].split() == [
        runs["recent"],
        "sample",
        "succeeded",
        *started.strftime("%Y-%m-%d %H:%M:%S").split(),
        "3m00s",
        "6",
        "40",
        "10000",
        "0.002100",
    ]
    assert table[-1] == "(8 older runs not shown; --limit)"

    assert main(["runs", "show", runs["pending"], "--artefacts", str(root)]) == 0
    shown = capsys.readouterr().out
    assert f"run {runs['pending']}: failed" in shown
    assert "export outputs_delta: NOT FINISHED" in shown
    assert main(["runs", "show", "20990101T000000Z-nope00", "--artefacts", str(root)]) == 2
    assert "no run 20990101T000000Z-nope00" in capsys.readouterr().err


def test_prune_on_s3(moto_endpoint: str, monkeypatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_endpoint)
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="fmf-runs")
    root = "s3://fmf-runs/team/artefacts"
    runs, files = _layout(datetime.now(timezone.utc))
    for rel, text in files.items():
        s3.put_object(Bucket="fmf-runs", Key=f"team/artefacts/{rel}", Body=text.encode())
    s3.put_object(Bucket="fmf-runs", Key="team/other/keep.txt", Body=b"x")

    def keys() -> set[str]:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket="fmf-runs")
        return {o["Key"] for p in pages for o in p.get("Contents", [])}

    before = keys()
    args = ["runs", "prune", "--artefacts", root]
    rules = [
        "--set",
        "artefacts.retention.keep_last=2",
        "--set",
        "artefacts.retention.max_age_days=30",
        "--set",  # an export target inside a run folder keeps that run
        f"exporters.outputs_delta.path=s3a://fmf-runs/team/artefacts/{runs['holds_target']}/out",
    ]
    assert main([*args, "--dry-run", *rules]) == 0
    out = capsys.readouterr().out
    assert keys() == before
    assert "dry run: 4 of 10 runs would be deleted from s3://fmf-runs/team/artefacts" in out

    assert main([*args, *rules]) == 0
    out = capsys.readouterr().out
    gone = {runs[n] for n in ("old_ok", "old_failed", "abandoned", "export_done")}
    assert keys() == {k for k in before if k.split("/")[2] not in gone}
    assert (
        f"deleted 4 of 10 runs ({sum(1 for k in before if k.split('/')[2] in gone)} files)" in out
    )
    assert [r.run_id for r in list_runs(root)][:2] == [runs["newest"], runs["recent"]]


def test_roots_map_to_stores(tmp_path: Path, moto_endpoint: str, monkeypatch) -> None:
    volumes = open_store("/Volumes/main/fmf/artefacts")
    assert isinstance(volumes, LocalStore) and volumes.path == Path("/Volumes/main/fmf/artefacts")
    dbfs = open_store("dbfs:/fmf/artefacts")
    assert isinstance(dbfs, LocalStore) and dbfs.path == Path("/dbfs/fmf/artefacts")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_endpoint)
    s3 = open_store("s3://bucket/a/b/")
    assert isinstance(s3, S3Store) and (s3.bucket, s3.prefix) == ("bucket", "a/b")
    assert open_store(str(tmp_path / "none")).folders() == []


@pytest.mark.slow
def test_an_interrupted_export_keeps_its_run(spark, tmp_path: Path) -> None:
    """A real export killed mid-batch: its run stays until the export is finished."""
    from fmf_spark.errors import ExportError
    from fmf_spark.exporters import export_table
    from fmf_spark.exporters.base import set_failpoint
    from fmf_spark.exporters.report import record_export
    from fmf_spark.schemas import OUTPUTS_SCHEMA
    from tests.exporters.conftest import output_row

    root = tmp_path / "artefacts"
    cfg = load_config(
        ROOT / "conf" / "fmf.yaml",
        profile="local",
        environ={},
        overrides=[
            f"artefacts.root={root}",
            f"exporters.outputs_delta.path={tmp_path / 'delivered'}",
            "observability.mlflow.enabled=false",
        ],
    )
    ctx = RunContext.start(cfg)
    outputs = f"{ctx.run_dir}/outputs"
    rows = [output_row(i) for i in range(6)]
    spark.createDataFrame(rows, OUTPUTS_SCHEMA).write.format("delta").save(outputs)

    def crash(info):
        raise ExportError("killed after the batch was written")

    ctx.export_started("outputs_delta")
    set_failpoint("export.after_batch_written", crash)
    try:
        with pytest.raises(ExportError):
            export_table(
                spark,
                cfg,
                "outputs_delta",
                outputs,
                run_id=ctx.run_id,
                checkpoint_root=f"{ctx.run_dir}/_checkpoints",
            )
    finally:
        set_failpoint("export.after_batch_written", None)
    ctx.finish("failed", ExportError("killed"))
    keep_none = _retention(keep_last=0)
    (decision,) = plan_prune(str(root), keep_none)
    assert (decision.delete, decision.reason) == (
        False,
        "export still needs it: outputs_delta not finished",
    )
    # without the run.yaml mark (an export started by hand), the checkpoint tells
    record = yaml.safe_load((root / ctx.run_id / "run.yaml").read_text())
    record.pop("pending_exports")
    (root / ctx.run_id / "run.yaml").write_text(yaml.safe_dump(record))
    (decision,) = plan_prune(str(root), keep_none)
    assert (decision.delete, decision.reason) == (
        False,
        "export still needs it: checkpoint _checkpoints/outputs_delta mid-batch",
    )
    # the export resumes from the checkpoint and finishes: now the run may go
    result = export_table(
        spark, cfg, "outputs_delta", outputs, run_id=ctx.run_id,
        checkpoint_root=f"{ctx.run_dir}/_checkpoints",
    )  # fmt: skip
    record_export(outputs, result, cfg)
    assert [r.run_id for r in prune(str(root), keep_none).deleted] == [ctx.run_id]
    delivered = spark.read.format("delta").load(str(tmp_path / "delivered"))
    assert sorted(r["request_id"] for r in delivered.collect()) == sorted(r[0] for r in rows)
