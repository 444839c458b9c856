#!/usr/bin/env python3
"""Fetch, at build time, the jars a self-built Spark session needs: Delta and S3A.

Used by the container images (``deploy/aws_batch/Dockerfile``, ``deploy/lambda/Dockerfile``)
and by the tests that check what those images run, so nothing reaches Maven at run time:
the session is then built with ``spark.jars=<dest>/*.jar`` (see the ``aws_batch`` and
``aws_lambda`` profiles of ``conf/fmf.yaml``).

What it fetches, for the pyspark and delta-spark installed in the running interpreter:

- the Delta artifact ``delta.configure_spark_with_delta_pip`` would resolve at run time
  (``io.delta:delta-spark_4.2_2.13:4.4.0`` for delta-spark 4, ``io.delta:delta-spark_2.12:3.3.3``
  for delta-spark 3 on Spark 3.5);
- ``org.apache.hadoop:hadoop-aws:<the Hadoop version pyspark ships>`` for ``s3a://``,
  with the modules of the AWS SDK that S3A uses, at the version that Hadoop release was
  built with, instead of the SDK's bundle (one jar of every AWS service, 650 MB for v2):
  SDK v2 (``s3``, ``sts``, ``s3-transfer-manager``) for Hadoop 3.4 and later, SDK v1
  (``s3``, ``sts``, ``dynamodb``) for the Hadoop 3.3 of Spark 3.5.

Resolution is Spark's own (``spark-submit --packages``, Ivy, Maven Central), so the jar
set is what ``--packages`` gives; jars of which pyspark already ships a version
(Hadoop client, Jackson, Netty, Parquet...) are left out, so one copy of each class is
on the classpath. ``<dest>/jars.txt`` lists the coordinates; a second call with the same
coordinates does nothing.

Usage: python scripts/fetch_jars.py <dest>   (e.g. /opt/fmf/jars)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

MAVEN = "https://repo1.maven.org/maven2"
#: (group, version property of hadoop-project's POM, modules) of the AWS SDK v2, then v1
SDKS = (
    ("software.amazon.awssdk", "aws-java-sdk-v2.version", ("s3", "sts", "s3-transfer-manager")),
    (
        "com.amazonaws",
        "aws-java-sdk.version",
        ("aws-java-sdk-s3", "aws-java-sdk-sts", "aws-java-sdk-dynamodb"),
    ),
)
EXCLUDED = ("software.amazon.awssdk:bundle", "com.amazonaws:aws-java-sdk-bundle")
_VERSIONED = re.compile(r"^(?P<artifact>.*?)-(?P<version>\d[^/]*)\.jar$")


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def hadoop_version(home: Path) -> str:
    """The Hadoop version of the client jars pyspark ships."""
    for jar in (home / "jars").glob("hadoop-client-api-*.jar"):
        return jar.name.removeprefix("hadoop-client-api-").removesuffix(".jar")
    raise SystemExit(f"no hadoop-client-api jar under {home / 'jars'}")


def sdk_modules(hadoop: str) -> list[str]:
    """The AWS SDK modules S3A needs, at the version a Hadoop release was built with.

    Hadoop 3.4+ names ``aws-java-sdk-v2.version`` in its hadoop-project POM, Hadoop 3.3
    (Spark 3.5) only the v1 ``aws-java-sdk.version``.
    """
    url = f"{MAVEN}/org/apache/hadoop/hadoop-project/{hadoop}/hadoop-project-{hadoop}.pom"
    with urllib.request.urlopen(url, timeout=60) as response:
        pom = response.read().decode("utf-8")
    for group, prop, modules in SDKS:
        match = re.search(rf"<{re.escape(prop)}>([^<]+)</{re.escape(prop)}>", pom)
        if match is not None:
            return [f"{group}:{module}:{match.group(1)}" for module in modules]
    raise SystemExit(f"no AWS SDK version ({', '.join(p for _, p, _ in SDKS)}) in {url}")


def delta_coordinates() -> list[str]:
    """The Delta artifact(s) delta-spark's pip helper asks for (its Scala and Spark suffix)."""
    from delta import configure_spark_with_delta_pip
    from pyspark.sql import SparkSession

    # it only sets spark.jars.packages on the builder it gets; nothing starts
    builder = configure_spark_with_delta_pip(SparkSession.Builder())
    packages = str(builder._options.get("spark.jars.packages", ""))
    return [p for p in packages.split(",") if p]


def coordinates(home: Path) -> list[str]:
    """The Maven coordinates to resolve for the installed pyspark and delta-spark."""
    hadoop = hadoop_version(home)
    return [
        *delta_coordinates(),
        f"org.apache.hadoop:hadoop-aws:{hadoop}",
        *sdk_modules(hadoop),
    ]


def artifact_of(jar_name: str) -> str:
    """``group_artifact-1.2.jar`` (Ivy) or ``artifact-1.2.jar`` (pyspark) -> ``artifact``."""
    name = jar_name.split("_", 1)[1] if "_" in jar_name.split("-", 1)[0] else jar_name
    match = _VERSIONED.match(name)
    return match.group("artifact") if match else name.removesuffix(".jar")


def resolve(coords: list[str], home: Path, ivy: Path) -> Path:
    """Resolve ``coords`` with spark-submit's Ivy into ``ivy``; return the jars folder."""
    noop = ivy / "noop.py"
    noop.parent.mkdir(parents=True, exist_ok=True)
    noop.write_text("# nothing to run: spark-submit resolved --packages before starting\n")
    env = {**os.environ, "SPARK_HOME": str(home)}
    command = [
        str(home / "bin" / "spark-submit"),
        "--master",
        "local[1]",
        "--conf",
        f"spark.jars.ivy={ivy}",
        "--conf",
        f"spark.pyspark.python={sys.executable}",
        "--conf",
        f"spark.pyspark.driver.python={sys.executable}",
        "--packages",
        ",".join(coords),
        "--exclude-packages",
        ",".join(EXCLUDED),
        str(noop),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"resolving {coords} failed (exit {done.returncode})")
    return ivy / "jars"


def fetch(dest: Path) -> list[Path]:
    """Fill ``dest`` with the jars; return them. Does nothing when ``dest`` is current."""
    home = spark_home()
    coords = coordinates(home)
    listing = dest / "jars.txt"
    wanted = "\n".join(coords) + "\n"
    if listing.is_file() and listing.read_text() == wanted:
        return sorted(dest.glob("*.jar"))
    shipped = {artifact_of(jar.name) for jar in (home / "jars").glob("*.jar")}
    with tempfile.TemporaryDirectory(prefix="fmf-ivy-") as tmp:
        resolved = resolve(coords, home, Path(tmp))
        dest.mkdir(parents=True, exist_ok=True)
        for old in dest.glob("*.jar"):
            old.unlink()
        for jar in sorted(resolved.glob("*.jar")):
            if artifact_of(jar.name) not in shipped:
                shutil.copy2(jar, dest / jar.name)
    listing.write_text(wanted)
    return sorted(dest.glob("*.jar"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dest", type=Path, help="folder for the jars, e.g. /opt/fmf/jars")
    args = parser.parse_args(argv)
    jars = fetch(args.dest)
    total = sum(j.stat().st_size for j in jars) / 1e6
    print(f"{len(jars)} jars, {total:.0f} MB in {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
