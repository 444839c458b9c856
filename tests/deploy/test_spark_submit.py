"""``spark-submit jobs/fmf_job.py``: the session is the one spark-submit launched.

Each job is a real ``spark-submit`` of the pyspark package (its own JVM; the session
fixture is not involved in running it), given a master and Delta the way EMR gives them
(``--packages`` here, the cluster's own jars on EMR, plus the Delta SQL conf). The job's
log names the effective master; the outputs tables of the two runs are read back and
compared with each other, row for row.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import DataFrame

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
        str(ROOT / "chains" / "sample.yaml"),
        "--quiet",
        "--set",
        f"connectors.samples.root={ROOT / 'samples' / 'docs'}",
        # two small documents keep the job short; the chain is the sample's, unchanged
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
        "inference.simulator.latency_ms=1",
        # what the config would build locally; a platform session must ignore it
        "--set",
        "spark.master=local[1]",
    ]
    done = spark_submit(args, env=clean_env(), cwd=work)
    (work / "spark-submit.log").write_text(done.stderr, encoding="utf-8")
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stderr, outputs


@pytest.fixture(scope="module")
def submitted(tmp_path_factory) -> dict[str, tuple[str, Path]]:
    runs = {}
    for master in ("local-cluster[2,1,1024]", "local[2]"):
        work = tmp_path_factory.mktemp("submit")
        runs[master] = _submit_sample_chain(master, work)
    return runs


@pytest.mark.parametrize("master", ["local-cluster[2,1,1024]", "local[2]"])
def test_the_job_runs_on_the_master_it_was_given(submitted, master: str) -> None:
    log, _ = submitted[master]
    line = "using the Spark session of the platform (started by spark-submit), master "
    masters = [row.split(line, 1)[1].strip() for row in log.splitlines() if line in row]
    assert masters == [master]
    # nothing of ours went into the session: no Maven package beyond the one given
    assert "configure_spark_with_delta_pip" not in log


def _stable(df: DataFrame) -> DataFrame:
    return df.select(*STABLE)


def test_both_masters_write_the_same_outputs(spark, submitted) -> None:
    from chispa import assert_df_equality

    cluster = spark.read.format("delta").load(str(submitted["local-cluster[2,1,1024]"][1]))
    local = spark.read.format("delta").load(str(submitted["local[2]"][1]))
    assert_df_equality(_stable(cluster), _stable(local), ignore_row_order=True)
    rows = cluster.select("step", "status").collect()
    # every step of the sample chain answered, every row ok
    assert {r.step for r in rows} == {"summarize", "brief", "digest"}
    assert {r.status for r in rows} == {"ok"}
    assert sum(r.step == "digest" for r in rows) == 1
    assert sum(r.step == "brief" for r in rows) == 2
