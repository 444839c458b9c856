# Databricks notebook source
# MAGIC %md
# MAGIC # fmf_spark: run a chain
# MAGIC
# MAGIC Runs one chain of this bundle with the notebook's own Spark session, then shows the
# MAGIC outputs table, the cost of each step and the MLflow run.
# MAGIC
# MAGIC - **Install**: the `fmf_spark` wheel that `databricks bundle deploy` built and
# MAGIC   uploaded (it is not on PyPI), with `requirements/databricks.txt`.
# MAGIC - **Paths**: `config` and `chain` are relative to the bundle's files, found from this
# MAGIC   notebook's folder (`bundle_root`, default `..`: notebooks run in their own folder).
# MAGIC - **Overrides**: `a.b=value` items separated by `;`, applied last (like `fmf --set`),
# MAGIC   e.g. `inference.default_provider=bedrock; artefacts.root=/Volumes/main/fmf/fmf/artefacts`.
# MAGIC
# MAGIC A failed run raises, so a job running this notebook fails too.
# MAGIC See `docs/deploy/databricks.md`.

# COMMAND ----------

import glob
import os

dbutils.widgets.text("bundle_root", "..", "Bundle root (from this notebook's folder)")
dbutils.widgets.text("wheel", "", "fmf_spark wheel (default: the bundle's)")
dbutils.widgets.text("config", "conf/fmf.yaml", "Config file")
dbutils.widgets.text("profile", "databricks", "Profile")
dbutils.widgets.text("chain", "chains/sample.yaml", "Chain file")
dbutils.widgets.text("overrides", "", "Overrides: a.b=v; c.d=w")

root = os.path.abspath(dbutils.widgets.get("bundle_root"))
wheel = dbutils.widgets.get("wheel")
if not wheel:
    # `bundle deploy` uploads the wheel to <root_path>/artifacts/.internal, beside the
    # bundle's files in <root_path>/files; a local build leaves it in dist/
    found = glob.glob(os.path.join(root, "..", "artifacts", ".internal", "fmf_spark-*.whl"))
    found += glob.glob(os.path.join(root, "dist", "fmf_spark-*.whl"))
    if not found:
        raise FileNotFoundError(
            f"no fmf_spark wheel in {root}/../artifacts/.internal or {root}/dist: "
            "run `databricks bundle deploy` or set the `wheel` widget"
        )
    wheel = max(found, key=os.path.getmtime)
wheel = os.path.abspath(wheel)
requirements = os.path.join(root, "requirements", "databricks.txt")
print(f"bundle root: {root}\nwheel: {wheel}")

# COMMAND ----------

# MAGIC %pip install --quiet $wheel -r $requirements

# COMMAND ----------

# the install may have upgraded packages this Python process already imported
dbutils.library.restartPython()

# COMMAND ----------

import os

from fmf_spark.chains import load_chain
from fmf_spark.cli import app
from fmf_spark.cli.run import summary_lines
from fmf_spark.config import load_config

root = os.path.abspath(dbutils.widgets.get("bundle_root"))
overrides = [item.strip() for item in dbutils.widgets.get("overrides").split(";") if item.strip()]
# relative paths in the config (prompts/, chains/) resolve against the config file, not
# this notebook's folder
config = load_config(
    os.path.join(root, dbutils.widgets.get("config")),
    profile=dbutils.widgets.get("profile"),
    overrides=overrides,
)
chain = load_chain(os.path.join(root, dbutils.widgets.get("chain")))

# The composition root `fmf run` uses: it prechecks the chain's connector, providers and
# sinks before any Spark job, then runs on this notebook's session as it is.
result = app.run_chain(spark, chain, config, emit=print)
print("\n".join(summary_lines(result)))

# COMMAND ----------

# MAGIC %md
# MAGIC ## Outputs
# MAGIC One row per model call: `status` says whether it worked, `error` why not.

# COMMAND ----------

outputs = spark.read.format("delta").load(result.outputs_path)
display(outputs.orderBy("step", "doc_id", "chunk_id"))

# COMMAND ----------

# MAGIC %md
# MAGIC ## Cost per step
# MAGIC What this run called and paid (answers found in the request cache cost nothing).

# COMMAND ----------

costs = spark.createDataFrame(
    [
        (
            s.id, s.scope, s.model, s.calls, s.cached, s.failed,
            s.prompt_tokens, s.completion_tokens, round(s.cost_usd, 6),
        )
        for s in result.steps
    ],
    "step string, scope string, model string, calls long, cached long, failed long, "
    "prompt_tokens long, completion_tokens long, cost_usd double",
)
display(costs)

# COMMAND ----------

# MAGIC %md
# MAGIC ## MLflow run
# MAGIC The run's parameters, metrics and `run.yaml` are also in the MLflow experiment.

# COMMAND ----------

if result.mlflow_run_id:
    from mlflow import MlflowClient

    from fmf_spark.observability.mlflow_run import tracking_uri

    run = MlflowClient(tracking_uri(config)).get_run(result.mlflow_run_id)
    facts = [
        ("mlflow run", run.info.run_id),
        ("experiment", config.observability.mlflow.experiment),
        ("status", run.info.status),
        ("artifact uri", run.info.artifact_uri),
        ("run.yaml", str(result.run_yaml)),
    ]
    facts += [(f"metric {k}", str(v)) for k, v in sorted(run.data.metrics.items())]
    display(spark.createDataFrame(facts, "name string, value string"))
else:
    print(f"MLflow is off for profile {config.profile}; the run record: {result.run_yaml}")
