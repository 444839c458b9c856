# Databricks notebook source
# MAGIC %md
# MAGIC # fmf_spark: run a chain from a notebook
# MAGIC Install the wheel on the cluster (or `%pip install` it), pick a chain, run it.
# MAGIC The notebook's `spark` session is used as it is.

# COMMAND ----------

# MAGIC %pip install fmf-spark[processing,azure,aws,mlflow]

# COMMAND ----------

dbutils.widgets.text("chain", "chains/sample.yaml")  # type: ignore[name-defined]  # noqa: F821
dbutils.widgets.text("profile", "databricks")  # type: ignore[name-defined]  # noqa: F821
chain = dbutils.widgets.get("chain")  # type: ignore[name-defined]  # noqa: F821
profile = dbutils.widgets.get("profile")  # type: ignore[name-defined]  # noqa: F821

# COMMAND ----------

# The composition root `fmf run` uses: it prechecks the chain's connector, providers and
# sinks before any Spark job, then runs on this notebook's session.
from fmf_spark.chains import load_chain  # noqa: E402
from fmf_spark.cli import app  # noqa: E402
from fmf_spark.cli.run import summary_lines  # noqa: E402
from fmf_spark.config import load_config  # noqa: E402

result = app.run_chain(spark, load_chain(chain), load_config(profile=profile), emit=print)  # type: ignore[name-defined]  # noqa: F821
print("\n".join(summary_lines(result)))
