# Databricks notebook source
# MAGIC %md
# MAGIC # fmf_spark: run a chain from a notebook
# MAGIC Install the wheel on the cluster (or `%pip install` it), pick a chain, run it.
# MAGIC The notebook's `spark` session is reused: `get_spark()` returns the active session.

# COMMAND ----------

# MAGIC %pip install fmf-spark[processing,azure,aws,mlflow]

# COMMAND ----------

dbutils.widgets.text("chain", "chains/sample.yaml")  # type: ignore[name-defined]  # noqa: F821
dbutils.widgets.text("profile", "databricks")  # type: ignore[name-defined]  # noqa: F821
chain = dbutils.widgets.get("chain")  # type: ignore[name-defined]  # noqa: F821
profile = dbutils.widgets.get("profile")  # type: ignore[name-defined]  # noqa: F821

# COMMAND ----------

from fmf_spark.cli import main  # noqa: E402

exit_code = main(["--profile", profile, "run", "--chain", chain])
assert exit_code == 0, f"fmf run failed with exit code {exit_code}; see the output above"
