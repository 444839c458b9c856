"""A Spark Connect server (``local[2]``, with Delta) in a process of its own, on a free port.

Its clients are then really remote: the process that builds the DataFrames is not the
driver, so a ``sparkContext``, a driver-side socket or driver state shared with a
``foreachBatch`` callback would fail here as it does on Databricks serverless. The
server is a classic local session with Spark's Connect plugin, built with the product's
own conf (:func:`fmf_spark.spark.local_conf`: Delta, quiet log, a warehouse under the
temp dir); its Python workers (``mapInPandas``, ``foreachBatch``) run this interpreter.

``python -m tests.servers.spark_connect PORT`` runs it until its stdin closes.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[2]

#: the local Connect server JVM starts in about 20 s on a quiet machine; a busy one is slower
_START_TIMEOUT_S = 300

#: the Connect server plugin for a Spark 3.5 runtime (the newest on Maven Central)
_CONNECT_35 = "org.apache.spark:spark-connect_2.12:3.5.7"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def spark_connect_server(env: dict[str, str] | None = None) -> Iterator[str]:
    """Start the server; yield its ``sc://127.0.0.1:<port>`` URL; stop it."""
    port = _free_port()
    server_env = {**os.environ, **(env or {}), "PYSPARK_PYTHON": sys.executable}
    # its output goes to a file: a pipe nobody reads would block the server once full
    with tempfile.TemporaryFile(mode="w+") as output:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.servers.spark_connect", str(port)],
            cwd=ROOT,
            env=server_env,
            stdin=subprocess.PIPE,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            _wait_ready(proc, port, output)
            yield f"sc://127.0.0.1:{port}"
        finally:
            if proc.stdin is not None:
                proc.stdin.close()  # the server stops its session and exits
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ready(proc: subprocess.Popen[str], port: int, output: IO[str]) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            output.seek(0)
            raise RuntimeError(
                f"the Spark Connect server exited ({proc.returncode}): {output.read()}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"the Spark Connect server did not listen on {port}")


def main(port: int) -> None:
    import pyspark
    from pyspark.sql import SparkSession

    from fmf_spark.spark import local_conf

    conf = local_conf(2, {"spark.default.parallelism": "2"}, verbose=False)
    if pyspark.__version__.startswith("3."):
        # pyspark 3.5 ships the Connect client but not the server's plugin; Maven Central
        # has it up to 3.5.7 (spark-core and spark-sql are ``provided``, so the 3.5.7
        # plugin runs on the 3.5.x runtime the lock holds)
        conf["spark.jars.packages"] = _CONNECT_35
    conf["spark.plugins"] = "org.apache.spark.sql.connect.SparkConnectPlugin"
    conf["spark.connect.grpc.binding.address"] = "127.0.0.1"
    conf["spark.connect.grpc.binding.port"] = str(port)
    builder = SparkSession.builder.master("local[2]").appName("fmf_connect_server")
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    try:
        sys.stdin.read()  # until the test closes our stdin
    finally:
        session.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]))
