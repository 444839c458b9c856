"""Two commands the CLI tests add to ``fmf`` (through ``COMMAND_MODULES``).

``probe-env`` prints what a command sees of ``FMF_VERBOSE``; ``probe-worker-error``
runs a Spark job whose Python worker raises an FmfError (``--rdd``: through the RDD
API, which Spark wraps in a ``Py4JJavaError`` rather than a ``PythonException``).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from typing import Any

import pandas as pd

from fmf_spark.errors import ChainError

#: what the worker raises: a code other than the class's, and a hint
CODE, MESSAGE, HINT = "chain.step_failed", "step 'x' failed in a worker", "lower the batch size"


def raise_in_worker(_: Any) -> Iterator[pd.DataFrame]:
    raise ChainError(MESSAGE, code=CODE, hint=HINT)
    yield  # pragma: no cover  (makes this a generator, as mapInPandas wants)


def _probe_env(args: argparse.Namespace, ctx: Any) -> int:
    print(f"FMF_VERBOSE={os.environ.get('FMF_VERBOSE')}")
    return 0


def _probe_worker_error(args: argparse.Namespace, ctx: Any) -> int:
    from fmf_spark.spark import get_spark

    spark = get_spark()  # the tests' session: it is active
    if args.rdd:
        spark.sparkContext.parallelize([1], 1).map(
            lambda _: (_ for _ in ()).throw(ChainError(MESSAGE, code=CODE, hint=HINT))
        ).collect()
    else:
        spark.range(2, numPartitions=1).mapInPandas(raise_in_worker, "id long").collect()
    return 0


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    env = subparsers.add_parser("probe-env", parents=[common])
    env.set_defaults(handler=_probe_env)
    worker = subparsers.add_parser("probe-worker-error", parents=[common])
    worker.add_argument("--rdd", action="store_true")
    worker.set_defaults(handler=_probe_worker_error)
