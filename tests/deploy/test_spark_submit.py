"""``spark-submit jobs/fmf_job.py``: the session is the one spark-submit launched.

Each job is a real ``spark-submit`` of the pyspark package (its own JVM; the session
fixture is not involved in running it), given a master and Delta the way EMR gives them
(``--packages`` here, the cluster's own jars on EMR, plus the Delta SQL conf). The job's
log names the effective master; the outputs tables of the two runs are read back and
compared with each other, row for row.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pyspark.sql import DataFrame

from tests.chains.helpers import first_step
from tests.deploy.helpers import (
    DELTA_CONF,
    ROOT,
    SMALL_CONF,
    clean_env,
    delta_package,
    python_exe,
    spark_submit,
)

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

#: columns that depend only on the input and the (deterministic) simulator
STABLE = ["request_id", "doc_id", "chunk_id", "step", "prompt_id", "status", "output_text"]


def _submit_sample_chain(master: str, work: Path) -> tuple[str, Path]:
    outputs = work / "exports" / "outputs"
    chain = work / "sample.yaml"
    chain.write_bytes(first_step(ROOT / "chains" / "sample.yaml"))
    args = [
        "--master",
        master,
        "--packages",
        delta_package(),
        *DELTA_CONF,
        *SMALL_CONF,
        "--conf",
        f"spark.pyspark.python={python_exe()}",
        "--conf",
        f"spark.pyspark.driver.python={python_exe()}",
        str(ROOT / "jobs" / "fmf_job.py"),
        "--config",
        str(ROOT / "conf" / "fmf.yaml"),
        "--profile",
        "local",
        "run",
        "--chain",
        str(chain),
        "--quiet",
        "--set",
        f"connectors.samples.root={ROOT / 'samples' / 'docs'}",
        # two small documents and the sample chain's first step keep the job short
        "--set",
        'connectors.samples.include=["*.md", "*.txt"]',
        "--set",
        f"prompts.dir={ROOT / 'prompts'}",
        "--set",
        f"artefacts.root={work / 'artefacts'}",
        "--set",
        f"exporters.outputs_delta.path={outputs}",
        "--set",
        "observability.mlflow.enabled=false",
        "--set",
        "inference.providers.simulator.server.latency_ms=1",
        # what the config would build locally; a platform session must ignore it
        "--set",
        "spark.master=local[1]",
    ]
    done = spark_submit(args, env=clean_env(), cwd=work)
    # spark-submit merges the Python driver's stderr (our log) into the JVM's stdout
    log = done.stdout + done.stderr
    (work / "spark-submit.log").write_text(log, encoding="utf-8")
    assert done.returncode == 0, log[-4000:]
    return log, outputs


CLUSTER, LOCAL = "local-cluster[2,1,1024]", "local[2]"
_runs: dict[str, tuple[str, Path]] = {}


def _run(master: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """One spark-submit of the sample chain per master for the whole module."""
    if master not in _runs:
        _runs[master] = _submit_sample_chain(master, tmp_path_factory.mktemp("submit"))
    return _runs[master]


def _masters_in(log: str) -> list[str]:
    line = "using the Spark session of the platform (started by spark-submit), master "
    return [row.split(line, 1)[1].strip() for row in log.splitlines() if line in row]


@pytest.mark.timeout(1800)
def test_local_cluster_master_is_the_one_given(tmp_path_factory) -> None:
    log, _ = _run(CLUSTER, tmp_path_factory)
    # the config said local[1]; the session is spark-submit's, with two executors
    assert _masters_in(log) == [CLUSTER]
    # executors were granted on both workers of the local cluster (the master may grant
    # more while the application shuts down, so the hosts are counted, not the grants)
    hosts = set(re.findall(r"Granted executor ID \S+ on hostPort (\S+)", log))
    assert len(hosts) == 2, hosts


@pytest.mark.timeout(1800)
def test_local_master_with_delta_from_packages(tmp_path_factory) -> None:
    log, _ = _run(LOCAL, tmp_path_factory)
    assert _masters_in(log) == [LOCAL]
    # Delta came only from --packages: one resolution, of the package given
    assert log.count(":: resolving dependencies ::") == 1
    assert f"{delta_package().split(':')[1]} added as a dependency" in log.replace("#", ":")


def _stable(df: DataFrame) -> DataFrame:
    return df.select(*STABLE)


@pytest.mark.timeout(1800)
def test_both_masters_write_the_same_outputs(spark, tmp_path_factory) -> None:
    from chispa import assert_df_equality

    cluster = spark.read.format("delta").load(str(_run(CLUSTER, tmp_path_factory)[1]))
    local = spark.read.format("delta").load(str(_run(LOCAL, tmp_path_factory)[1]))
    assert_df_equality(_stable(cluster), _stable(local), ignore_row_order=True)
    rows = cluster.select("doc_id", "step", "status").collect()
    # the step answered every chunk of both documents, every row ok
    assert {r.step for r in rows} == {"summarize"}
    assert {r.status for r in rows} == {"ok"}
    assert len({r.doc_id for r in rows}) == 2
