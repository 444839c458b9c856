"""Thin entry point for ``spark-submit`` (EMR) and Fabric.

It only forwards its arguments to the ``fmf`` command of the installed wheel, so every
platform runs the same code path; the session is the one spark-submit launched (its
master, jars and conf; see ``fmf_spark.spark.get_spark``):

    spark-submit --master yarn jobs/fmf_job.py --profile emr run --chain s3://bucket/chains/x.yaml

EMR: ``docs/deploy/emr.md`` (the packed virtualenv and the step). The AWS Batch image
runs the ``fmf`` command itself (``deploy/aws_batch/Dockerfile``); Lambda calls
``fmf_spark.jobs.lambda_handler.handler``.

On Databricks use the bundle (``databricks.yml``), which calls the wheel's ``fmf-job``
entry point directly through a ``python_wheel_task``; on Fabric, make this file the main
definition file of a Spark job definition (``docs/deploy/fabric.md``).
"""

from __future__ import annotations

import sys

from fmf_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
