#!/usr/bin/env python3
"""Fetch, at build time, the jars a self-built Spark session needs: Delta and S3A.

Used by the container images (``deploy/aws_batch/Dockerfile``, ``deploy/lambda/Dockerfile``)
and by the tests that check what those images run, so nothing reaches Maven at run time:
the session is then built with ``spark.jars=<dest>/*.jar`` (see the ``aws_batch`` and
``aws_lambda`` profiles of ``conf/fmf.yaml``).

What it fetches, for the pyspark and delta-spark installed in the running interpreter:

- ``io.delta:delta-spark_<spark major.minor>_2.13:<delta-spark version>`` (the artifact
  ``delta.configure_spark_with_delta_pip`` would resolve at run time);
- ``org.apache.hadoop:hadoop-aws:<the Hadoop version pyspark ships>`` for ``s3a://``,
  with the AWS SDK v2 as the modules S3A uses (``s3``, ``sts``, ``s3-transfer-manager``)
  at the version that Hadoop release was built with, instead of the SDK ``bundle``
  (one 650 MB jar of every AWS service).

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
from importlib.metadata import version
from pathlib import Path

MAVEN = "https://repo1.maven.org/maven2"
SDK_MODULES = ("s3", "sts", "s3-transfer-manager")
EXCLUDED = ("software.amazon.awssdk:bundle",)
_VERSIONED = re.compile(r"^(?P<artifact>.*?)-(?P<version>\d[^/]*)\.jar$")


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def hadoop_version(home: Path) -> str:
    """The Hadoop version of the client jars pyspark ships."""
    for jar in (home / "jars").glob("hadoop-client-api-*.jar"):
        return jar.name.removeprefix("hadoop-client-api-").removesuffix(".jar")
    raise SystemExit(f"no hadoop-client-api jar under {home / 'jars'}")


def sdk_version(hadoop: str) -> str:
    """The AWS SDK v2 version a Hadoop release was built with (its hadoop-project POM)."""
    url = f"{MAVEN}/org/apache/hadoop/hadoop-project/{hadoop}/hadoop-project-{hadoop}.pom"
    with urllib.request.urlopen(url, timeout=60) as response:
        pom = response.read().decode("utf-8")
    match = re.search(r"<aws-java-sdk-v2\.version>([^<]+)</aws-java-sdk-v2\.version>", pom)
    if match is None:
        raise SystemExit(f"aws-java-sdk-v2.version not found in {url}")
    return match.group(1)


def coordinates(home: Path) -> list[str]:
    """The Maven coordinates to resolve for the installed pyspark and delta-spark."""
    import pyspark

    spark_minor = ".".join(pyspark.__version__.split(".")[:2])
    hadoop = hadoop_version(home)
    sdk = sdk_version(hadoop)
    return [
        f"io.delta:delta-spark_{spark_minor}_2.13:{version('delta-spark')}",
        f"org.apache.hadoop:hadoop-aws:{hadoop}",
        *(f"software.amazon.awssdk:{module}:{sdk}" for module in SDK_MODULES),
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
