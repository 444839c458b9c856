"""Fixtures of the deployment tests: the wheels, the baked jars, an S3 bucket of inputs."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from tests.chains.helpers import first_step
from tests.deploy.bundle import artifact_build_command
from tests.deploy.helpers import ROOT

DOCS = {
    "supplier_onboarding.md": (ROOT / "samples" / "docs" / "supplier_onboarding.md").read_bytes(),
    "notes/q3_meeting_notes.txt": (ROOT / "samples" / "docs" / "q3_meeting_notes.txt").read_bytes(),
}


@dataclass
class Bucket:
    """A moto S3 bucket holding the config, prompts, chain and documents of a job."""

    name: str
    endpoint: str

    @property
    def client(self):
        return boto3.client("s3", endpoint_url=self.endpoint)

    def uri(self, key: str) -> str:
        return f"s3://{self.name}/{key}"

    def keys(self, prefix: str) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.name, Prefix=prefix
        )
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def download(self, prefix: str, dest: Path) -> Path:
        """Copy every object under ``prefix`` to ``dest`` (a Delta table stays readable)."""
        for key in self.keys(prefix):
            target = dest / key[len(prefix) :].lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            self.client.download_file(self.name, key, str(target))
        return dest


def doc_ids() -> set[str]:
    return {hashlib.sha256(body).hexdigest() for body in DOCS.values()}


def make_bucket(endpoint: str, name: str) -> Bucket:
    """A bucket with conf/, prompts/, the AWS chains under chains/ (cut to their first
    step, see :func:`tests.chains.helpers.first_step`) and docs under incoming/."""
    bucket = Bucket(name, endpoint)
    s3 = bucket.client
    s3.create_bucket(Bucket=name)
    s3.upload_file(str(ROOT / "conf" / "fmf.yaml"), name, "conf/fmf.yaml")
    for path in sorted((ROOT / "prompts").iterdir()):
        s3.upload_file(str(path), name, f"prompts/{path.name}")
    for chain in ("aws_sample.yaml", "aws_lambda.yaml"):
        s3.put_object(Bucket=name, Key=f"chains/{chain}", Body=first_step(ROOT / "chains" / chain))
    for key, body in DOCS.items():
        s3.put_object(Bucket=name, Key=f"incoming/{key}", Body=body)
    return bucket


def job_settings(bucket: Bucket, exports: str = "exports/outputs") -> list[str]:
    """``--set`` values that point a profile's job at ``bucket`` (the docs' connector)."""
    return [
        "connectors.docs.type=s3",
        f"connectors.docs.bucket={bucket.name}",
        "connectors.docs.prefix=incoming/",
        f"artefacts.root=s3a://{bucket.name}/artefacts",
        f"exporters.outputs_delta.path=s3a://{bucket.name}/{exports}",
        # the simulator stands in for the LLM, started by the job itself
        "inference.providers.simulator.server.latency_ms=1",
    ]


def s3a_env(endpoint: str) -> dict[str, str]:
    """Spark conf, through ``FMF__SPARK__CONF__*``, that sends S3A to the moto server."""
    return {
        "FMF__SPARK__CONF__SPARK.HADOOP.FS.S3A.ENDPOINT": endpoint,
        "FMF__SPARK__CONF__SPARK.HADOOP.FS.S3A.ENDPOINT.REGION": "us-east-1",
        "FMF__SPARK__CONF__SPARK.HADOOP.FS.S3A.PATH.STYLE.ACCESS": "'true'",
        "FMF__SPARK__CONF__SPARK.HADOOP.FS.S3A.CONNECTION.SSL.ENABLED": "'false'",
        # boto3 clients of the product (connector, sinks, run.yaml) find moto here
        "AWS_ENDPOINT_URL": endpoint,
        # a small heap on a shared test machine (the profiles size it for the platform)
        "FMF__SPARK__CONF__SPARK.DRIVER.MEMORY": "1g",
    }


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fmf_spark wheel, built once."""
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist), str(ROOT)],
        check=True,
        timeout=300,
    )
    (built,) = dist.glob("fmf_spark-*.whl")
    return built


def uv_env() -> dict[str, str]:
    """``UV`` for ``deploy/install.sh``: the uv of this venv, as the images use theirs (the
    images also precompile the bytecode, which the tests skip)."""
    uv = Path(sys.executable).with_name("uv")
    return {"UV": str(uv)} if uv.exists() else {}


def install(wheel: Path, extras: str, mode: str, dest: Path) -> Path:
    """``deploy/install.sh``, as the images run it: ``mode`` is ``venv`` or ``target``."""
    subprocess.run(
        ["sh", str(ROOT / "deploy" / "install.sh"), str(wheel), extras, mode, str(dest)],
        check=True,
        timeout=1200,
        env={**os.environ, **uv_env()},
    )
    return dest


@pytest.fixture(scope="session")
def jars_dir() -> Path:
    """The Delta + S3A jars, fetched by the images' build-time script (kept between runs,
    one folder per pyspark version: the 3.5 pass needs other jars than the main one)."""
    import pyspark

    cache_home = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    cache = cache_home / "fmf_spark" / "jars" / pyspark.__version__
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "fetch_jars.py"), str(cache)],
        check=True,
        timeout=900,
        capture_output=True,
    )
    return cache


@pytest.fixture
def job_bucket(moto_endpoint: str, request: pytest.FixtureRequest) -> Iterator[Bucket]:
    name = "fmf-" + request.node.name.lower().replace("_", "-")[:40]
    yield make_bucket(moto_endpoint, name)


@pytest.fixture(scope="session")
def bundle_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``fmf_spark`` wheel, built by the ``build`` command of databricks.yml's artifact."""
    wheel_dir = tmp_path_factory.mktemp("dist")
    subprocess.run(
        artifact_build_command(wheel_dir), cwd=ROOT, check=True, capture_output=True, timeout=600
    )
    (wheel,) = wheel_dir.glob("*.whl")
    return wheel
