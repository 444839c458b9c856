"""Fixtures of the exporter tests: a run's outputs table written as 5 Delta files."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fmf_spark.exporters.base import set_failpoint

N_ROWS = 40
N_FILES = 5


def output_row(i: int, *, text: str | None = None, latency: int | None = None) -> tuple:
    """One row of OUTPUTS_SCHEMA; ``request_id`` derives from ``i``."""
    rid = hashlib.sha256(f"req-{i}".encode()).hexdigest()[:16]
    failed = i % 7 == 3
    return (
        rid,
        f"doc-{i // 4}",
        f"chunk-{i}",
        "summarise",
        "summary",
        "v1",
        "ph1",
        "sim-gpt-4o-mini",
        None if failed else (text or f"summary of chunk {i}"),
        None if failed else f'{{"n": {i}}}',
        100 + i,
        None if failed else 20 + i,
        None if failed else round(0.0001 * i, 6),
        latency if latency is not None else 50 + i,
        1 if not failed else 3,
        "error" if failed else "ok",
        ("inference.rate_limited", "429 after 3 attempts", True) if failed else None,
    )


@pytest.fixture
def make_outputs(spark, tmp_path: Path) -> Callable[..., str]:
    """Write an outputs Delta table at ``<tmp>/artefacts/<run_id>/outputs``.

    ``rows`` defaults to N_ROWS rows; ``files`` Delta files are written (one append
    each) so that ``max_files_per_trigger: 1`` gives that many micro-batches.
    """
    from fmf_spark.schemas import OUTPUTS_SCHEMA

    def make(run_id: str = "run1", rows: list[tuple] | None = None, files: int = N_FILES) -> str:
        data = rows if rows is not None else [output_row(i) for i in range(N_ROWS)]
        path = tmp_path / "artefacts" / run_id / "outputs"
        per = -(-len(data) // files)
        for f in range(files):
            part = data[f * per : (f + 1) * per]
            if not part:
                continue
            spark.createDataFrame(part, OUTPUTS_SCHEMA).coalesce(1).write.format("delta").mode(
                "append"
            ).save(str(path))
        return str(path)

    return make


@pytest.fixture
def expected_rows() -> list[tuple]:
    return [output_row(i) for i in range(N_ROWS)]


@pytest.fixture
def make_config() -> Callable[..., Any]:
    """An FmfConfig with one sink named ``sink`` (plus optional secrets)."""
    from fmf_spark.config.models import FmfConfig

    def make(sink: dict[str, Any], secrets: dict[str, Any] | None = None) -> FmfConfig:
        sink = {"max_files_per_trigger": 1, **sink}
        data: dict[str, Any] = {"exporters": {"sink": sink}}
        if secrets:
            data["secrets"] = secrets
        return FmfConfig.model_validate(data)

    return make


class KillAfterBatch:
    """Raises inside foreachBatch after the sink wrote batch ``batch_id``, once.

    This is the worst moment for a crash: the sink has the rows but the streaming
    checkpoint has not committed the batch, so the rerun replays it.
    """

    def __init__(self, batch_id: int) -> None:
        self.batch_id = batch_id
        self.fired = False

    def __call__(self, info: dict[str, Any]) -> None:
        if info["batch_id"] == self.batch_id and not self.fired:
            self.fired = True
            raise RuntimeError(f"injected crash after batch {self.batch_id}")


@pytest.fixture
def kill_after_batch() -> Iterator[Callable[[int], KillAfterBatch]]:
    def arm(batch_id: int) -> KillAfterBatch:
        action = KillAfterBatch(batch_id)
        set_failpoint("export.after_batch_written", action)
        return action

    yield arm
    set_failpoint("export.after_batch_written", None)


@pytest.fixture
def spark_errors_reader(spark):
    def read(path: str | None):
        assert path is not None, "the export reported no errors table"
        return spark.read.format("delta").load(path)

    return read


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server for the session (skipped only when not installed)."""
    from tests.servers.postgres import PostgresUnavailable, postgres_server

    try:
        server = postgres_server()
        info = server.__enter__()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield info
    finally:
        server.__exit__(None, None, None)


@pytest.fixture
def kill_process_after_batch(tmp_path: Path) -> Callable[..., None]:
    """Run the export of ``cfg``'s sink in a separate process that is killed
    (``os._exit(137)``) right after the sink wrote batch ``batch_id``.

    Unlike :func:`kill_after_batch` nothing runs after the write: no exception handler,
    no query shutdown. ``env`` adds variables (the secrets' store) to the child only.
    """
    import json
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]

    def run(cfg: Any, outputs: str, batch_id: int, env: dict[str, str] | None = None) -> None:
        config = tmp_path / f"kill-{batch_id}.json"
        config.write_text(json.dumps(cfg.model_dump(mode="json", by_alias=True)))
        proc = subprocess.run(
            [sys.executable, "-m", "tests.exporters.kill_job", str(config), outputs, str(batch_id)],
            cwd=root,
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 137, proc.stdout + proc.stderr[-3000:]
        assert "finished without being killed" not in proc.stdout

    return run
