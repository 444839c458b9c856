"""Shared fixtures: one Spark session for the whole run, servers on loopback."""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers.moto import apply_aws_test_env, moto_server

ROOT = Path(__file__).resolve().parents[1]

# Set before anything imports boto3 or pyspark.
apply_aws_test_env()
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)


#: The files (or folders) that take longest, longest first: what `make test`'s two
#: workers take first (--dist loadfile), so that a pass does not end with one worker on a
#: long file while the other idles, and a pass cut short at its time budget
#: (FMF_TEST_DEADLINE, the Spark 3.5 pass) has run the end-to-end ones. The other files
#: follow in the usual order (under 20 s each). Ranked by the sum of both passes'
#: durations (`--durations`, 2 workers, Spark 4.2 + 3.5): tests/deploy with test_wheel is
#: one unit (:data:`PACKAGING`: 690 + 440 s), then 240 s (the Connect chain) down to 19 s.
LONGEST_FIRST = (
    "tests/deploy",
    "tests/chains/test_connect.py",
    "tests/chains/test_durability.py",
    "tests/exporters/test_delta.py",
    "tests/exporters/test_s3.py",
    "tests/chains/test_e2e.py",
    "tests/processing/test_spark.py",
    "tests/chains/test_failed_step.py",
    "tests/inference/test_runner.py",
    "tests/exporters/test_postgres.py",
    "tests/foundation/test_quiet_start.py",
    "tests/exporters/test_dynamodb.py",
    "tests/foundation/test_class_archive.py",
    "tests/inference/test_quota_sharing.py",
    "tests/inference/test_cluster.py",
    "tests/inference/test_progress.py",
    "tests/observability/test_progress.py",
    "tests/processing/test_formats_spark.py",
    "tests/observability/test_otel.py",
    "tests/exporters/test_sharepoint_excel.py",
    "tests/connectors/test_s3.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that uses the ``spark`` fixture (directly or through another
    fixture) with ``spark``, so ``make check`` can leave them out: ``-m "not spark"``.
    Then, on an xdist worker, put the tests of :data:`LONGEST_FIRST` first (a stable
    sort: every worker collects the same order; xdist sets its workers' ``dist`` to
    ``no``, so ``workerinput`` tells them)."""
    for item in items:
        if "spark" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.spark)
    if hasattr(config, "workerinput"):

        def rank(item: pytest.Item) -> int:
            path = item.nodeid.split("::", 1)[0]
            return next(
                (i for i, p in enumerate(LONGEST_FIRST) if path == p or path.startswith(p + "/")),
                len(LONGEST_FIRST),
            )

        items.sort(key=rank)


# `pytest -n 2 --dist loadfile` (make test): a test file goes to one worker as a whole (a
# module's servers start once), and so do all the files that build wheels and venvs from
# the repository: their session fixtures (the wheels, the jars) are built once, and no two
# builds write the source tree's build/ at the same time. (xdist's own `loadgroup` cannot
# express this on pytest 9: it renames the node ids, which pytest 9 no longer reads.)
PACKAGING = ("tests/deploy/", "tests/foundation/test_wheel.py")


def worker_group(nodeid: str) -> str:
    """The unit of work of a test under ``--dist loadfile``: ``packaging`` for the files
    of :data:`PACKAGING`, else its own file."""
    path = nodeid.split("::", 1)[0]
    return "packaging" if path.startswith(PACKAGING) else path


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile`` with the packaging files in one unit (:func:`worker_group`).

    The workers take the units in the collection's order (:data:`LONGEST_FIRST`
    first): xdist's default (``--loadscope-reorder``) hands out the units with the most
    tests first, which put the long one-test files (the Connect chain, the kill and
    rerun) at the end of a pass."""
    if config.getvalue("dist") != "loadfile":
        return None
    config.option.loadscopereorder = False
    from xdist.scheduler import LoadFileScheduling

    class GroupedFiles(LoadFileScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return worker_group(nodeid)

    return GroupedFiles(config, log)


#: the reason of a test skipped at ``FMF_TEST_DEADLINE`` (also how the summary counts them)
BUDGET_SKIP = "not started: the run's time budget was used up (FMF_TEST_DEADLINE)"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """``FMF_TEST_DEADLINE``, a Unix time (scripts/test.sh sets it for the Spark 3.5 pass,
    which runs its files most important first): a test not started by then is skipped
    before its fixtures start anything; a test already running is never cut short."""
    deadline = os.environ.get("FMF_TEST_DEADLINE")
    if deadline and time.time() >= float(deadline):
        pytest.skip(BUDGET_SKIP)


#: a JVM exception's cause in a Py4J error ("Caused by: ...") or its first line
_JAVA_CAUSE = re.compile(r"^(?:E\s+)?(?:Caused by: |: )(\S+(?:Exception|Error)\b.*)$")


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any) -> None:
    """After the failures, the Java causes inside each failed test's Py4J errors.

    A Spark failure's report is a long JVM stack whose root cause sits in its middle; CI
    shows a run's last lines, so the causes are repeated here, at the end.
    """
    lines: list[str] = []
    for key in ("failed", "error"):
        for report in terminalreporter.stats.get(key, []):
            text = getattr(report, "longreprtext", "") or ""
            causes = dict.fromkeys(
                m.group(1)[:300]
                for line in text.splitlines()
                if (m := _JAVA_CAUSE.match(line.strip()))
            )
            if causes:
                lines.append(f"{report.nodeid} ({report.when}):")
                lines += [f"  {cause}" for cause in list(causes)[:12]]
    if lines:
        terminalreporter.write_sep("=", "Java causes of the failures above")
        for line in lines:
            terminalreporter.write_line(line)
    late = [
        r.nodeid
        for r in terminalreporter.stats.get("skipped", [])
        if isinstance(r.longrepr, tuple) and r.longrepr[2].endswith(BUDGET_SKIP)
    ]
    if late:
        files = sorted({nodeid.split("::", 1)[0] for nodeid in late})
        terminalreporter.write_sep("=", f"{len(late)} tests not started at the time budget")
        terminalreporter.write_line("in " + ", ".join(files))


@pytest.fixture(scope="session")
def spark():
    """One local Spark session with Delta for the whole test run.

    ``local[2]``, UI off, few shuffle partitions; built by the product's own factory so
    the tests exercise ``get_spark``.
    """
    from fmf_spark.config import load_config
    from fmf_spark.spark import get_spark

    cfg = load_config(
        ROOT / "conf" / "fmf.yaml",
        profile="local",
        environ={},
        overrides=["spark.master=local[2]", "spark.shuffle_partitions=2"],
    )
    session = get_spark(cfg, extra_conf={"spark.default.parallelism": "2"})
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """Endpoint URL of a moto server (S3, DynamoDB, Secrets Manager, SSM) on loopback."""
    with moto_server() as url:
        yield url


@pytest.fixture
def tmp_artefacts(tmp_path: Path) -> Path:
    path = tmp_path / "artefacts"
    path.mkdir()
    return path
