"""Run folders made the way fmf writes them, at chosen times (for the index tests)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from fmf_spark.observability.run import HEARTBEAT_FILE, RUN_FILE, render_run_yaml

NOW = datetime(2026, 6, 30, 12, 0, tzinfo=timezone.utc)


def run_id(started: datetime, suffix: str) -> str:
    return f"{started.strftime('%Y%m%dT%H%M%SZ')}-{suffix}"


def run_files(
    days_ago: float,
    suffix: str,
    status: str = "succeeded",
    *,
    now: datetime = NOW,
    heartbeat_ago: timedelta | None = None,
    checkpoint: tuple[list[int], list[int]] | None = None,
    **record: Any,
) -> tuple[str, dict[str, str]]:
    """(run id, {relative path: text}) of one run folder.

    ``checkpoint`` = (offset batches, commit batches) of ``_checkpoints/outputs_delta``.
    """
    started = now - timedelta(days=days_ago)
    rid = run_id(started, suffix)
    data = {
        "run_id": rid,
        "status": status,
        "started_at": started.isoformat(timespec="milliseconds"),
        "ended_at": (started + timedelta(minutes=3)).isoformat(timespec="milliseconds"),
        "duration_s": 180.0,
        "chain": {"path": "chains/sample.yaml", "name": "sample"},
        "metrics": {
            "documents": 6,
            "calls": 40,
            "prompt_tokens": 9000,
            "completion_tokens": 1000,
            "cost_usd": 0.0021,
        },
        **record,
    }
    files = {f"{rid}/{RUN_FILE}": render_run_yaml(data), f"{rid}/outputs/part-0.parquet": "x"}
    if heartbeat_ago is not None:
        files[f"{rid}/{HEARTBEAT_FILE}"] = (now - heartbeat_ago).isoformat(timespec="seconds")
    if checkpoint is not None:
        offsets, commits = checkpoint
        base = f"{rid}/_checkpoints/outputs_delta"
        files[f"{base}/metadata"] = '{"id":"q"}'
        for b in offsets:
            files[f"{base}/offsets/{b}"] = "v1"
            files[f"{base}/sources/0/{b}"] = "v1"
        for b in commits:
            files[f"{base}/commits/{b}"] = "v1"
    return rid, files


def write_local(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def local_tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
