"""The IAM policies of deploy/iam, enforced by a moto server: enough, and no more.

A moto server of its own (a subprocess) is set up with an admin identity, then switched
to IAM enforcement (``/moto-api/reset-auth``, the runtime form of
``INITIAL_NO_AUTH_ACTION_COUNT``). A user holding only ``fmf-s3.json``,
``fmf-dynamodb.json`` and ``fmf-secrets.json`` then runs the product: the AWS secret
providers (``fmf keys test``), and a chain whose documents come through the S3
connector and whose outputs go to the S3 and DynamoDB sinks, in its own process with
only that user's keys. What the policies leave out is refused, as our one-line errors.

What moto checks: actions for every service, and resources for S3 (bucket and key
ARNs). For DynamoDB, Secrets Manager and SSM moto evaluates the request against the
resource ``*``, so their statements are given ``Resource: *`` here (their ARNs are
checked by parliament and by test_static); and moto names S3's HeadBucket
``s3:HeadBucket`` where IAM authorises it with ``s3:ListBucket``, so that name is added
next to ``s3:ListBucket``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.chains.helpers import first_step
from tests.deploy.conftest import DOCS, doc_ids
from tests.deploy.helpers import ROOT, clean_env

IAM = ROOT / "deploy" / "iam"
JOB_POLICIES = ("fmf-s3.json", "fmf-dynamodb.json", "fmf-secrets.json")
BUCKET, OTHER_BUCKET, TABLE = "my-fmf-bucket", "someone-elses-bucket", "fmf-outputs"
SECRET, PARAMETER = "fmf/llm-api-key", "/fmf/redshift-password"
REGION = "us-east-1"


@dataclass
class Keys:
    access_key_id: str
    secret_access_key: str

    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_DEFAULT_REGION": REGION,
        }

    def client(self, service: str, endpoint: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            aws_session_token=None,
        )


def moto_view(policy: dict[str, Any]) -> dict[str, Any]:
    """The policy as moto can evaluate it (see the module docstring)."""
    statements = []
    for statement in policy["Statement"]:
        statement = dict(statement)
        actions = statement["Action"]
        actions = [actions] if isinstance(actions, str) else list(actions)
        if not all(a.startswith("s3:") for a in actions):
            statement["Resource"] = "*"
        if "s3:ListBucket" in actions:
            actions.append("s3:HeadBucket")
        statement["Action"] = actions
        statements.append(statement)
    return {**policy, "Statement": statements}


@pytest.fixture(scope="module")
def enforcing_moto() -> Iterator[str]:
    """A moto server in its own process (IAM enforcement is process-wide in moto)."""
    code = (
        "import sys; from moto.server import ThreadedMotoServer as S; "
        "s = S(ip_address='127.0.0.1', port=0, verbose=False); s.start(); "
        "print('http://%s:%s' % s.get_host_and_port(), flush=True); sys.stdin.read()"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "inf"},
    )
    assert process.stdout is not None
    try:
        yield process.stdout.readline().strip()
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def accounts(enforcing_moto: str) -> tuple[Keys, Keys]:
    """Resources, an admin and the fmf job user; then enforcement on. (admin, job)."""
    endpoint = enforcing_moto
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
    for name in (BUCKET, OTHER_BUCKET):
        s3.create_bucket(Bucket=name)
    for key, body in DOCS.items():
        s3.put_object(Bucket=BUCKET, Key=f"incoming/{key}", Body=body)
    s3.put_object(Bucket=OTHER_BUCKET, Key="private.txt", Body=b"not yours")
    boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION).create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "request_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "request_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    boto3.client("secretsmanager", endpoint_url=endpoint, region_name=REGION).create_secret(
        Name=SECRET, SecretString="sk-test-not-a-real-key-1234"
    )
    boto3.client("ssm", endpoint_url=endpoint, region_name=REGION).put_parameter(
        Name=PARAMETER, Value="pg-test-password-5678", Type="SecureString"
    )
    iam = boto3.client("iam", endpoint_url=endpoint, region_name=REGION)

    def user(name: str, policies: dict[str, dict[str, Any]]) -> Keys:
        iam.create_user(UserName=name)
        for policy_name, document in policies.items():
            arn = iam.create_policy(
                PolicyName=f"{name}-{policy_name}", PolicyDocument=json.dumps(document)
            )["Policy"]["Arn"]
            iam.attach_user_policy(UserName=name, PolicyArn=arn)
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return Keys(key["AccessKeyId"], key["SecretAccessKey"])

    admin = user("admin", {"all": {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"}]}})  # fmt: skip
    job = user(
        "fmf-job",
        {
            name.removesuffix(".json"): moto_view(json.loads((IAM / name).read_text()))
            for name in JOB_POLICIES
        },
    )
    # from now on every request is authenticated and authorised (0 more without)
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=b"0",
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.loads(response.read())["status"] == "ok"
    return admin, job


@pytest.fixture
def as_job_user(accounts: tuple[Keys, Keys], monkeypatch: pytest.MonkeyPatch) -> Keys:
    """This process acts with the job user's keys (boto3's default session re-reads them)."""
    _, job = accounts
    for key, value in job.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    return job


def _config(tmp_path: Path, endpoint: str) -> Path:
    config = {
        "project": "fmf",
        "secrets": {
            "providers": {
                "sm": {"type": "aws_secrets_manager", "region": REGION, "endpoint_url": endpoint},
                "ssm": {"type": "aws_ssm", "region": REGION, "endpoint_url": endpoint},
            },
            "names": {
                "llm_key": {"provider": "sm", "key": SECRET},
                "pg_password": {"provider": "ssm", "key": PARAMETER},
            },
        },
        "connectors": {
            "docs": {
                "type": "s3",
                "bucket": BUCKET,
                "prefix": "incoming/",
                "region": REGION,
                "endpoint_url": endpoint,
            },
        },
        "inference": {
            "default_provider": "simulator",
            "providers": {
                "simulator": {
                    "type": "simulator",
                    "model": "sim-gpt-4o-mini",
                    "api_key": {"secret": "llm_key"},
                    "server": {"latency_ms": 1},
                },
            },
        },
        "prompts": {"dir": str(ROOT / "prompts")},
        "artefacts": {"root": str(tmp_path / "artefacts")},
        "exporters": {
            "outputs_s3": {
                "type": "s3",
                "bucket": BUCKET,
                "prefix": "exports/${run_id}",
                "region": REGION,
                "endpoint_url": endpoint,
            },
            "outputs_dynamodb": {
                "type": "dynamodb",
                "table": TABLE,
                "region": REGION,
                "endpoint_url": endpoint,
            },
        },
        "observability": {"mlflow": {"enabled": False}},
    }
    path = tmp_path / "fmf.yaml"
    path.write_text(json.dumps(config))
    return path


def _fmf(
    args: list[str], keys: Keys, cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = clean_env({**keys.env(), "AWS_EC2_METADATA_DISABLED": "true"})
    env.pop("AWS_SESSION_TOKEN", None)
    env.pop("SPARK_HOME")
    return subprocess.run(
        [sys.executable, "-m", "fmf_spark.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_job_user_resolves_its_named_secrets(
    accounts: tuple[Keys, Keys], enforcing_moto: str, tmp_path: Path
) -> None:
    _, job = accounts
    config = _config(tmp_path, enforcing_moto)
    done = _fmf(["--config", str(config), "keys", "test"], job, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = sorted(line.split()[:3] for line in done.stdout.splitlines() if line.strip())
    assert lines == [["llm_key", "sm", "OK"], ["pg_password", "ssm", "OK"]]
    # values never printed
    assert "sk-test" not in done.stdout + done.stderr


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_the_job_user_runs_a_chain_from_s3_to_s3_and_dynamodb(
    accounts: tuple[Keys, Keys], enforcing_moto: str, tmp_path: Path
) -> None:
    admin, job = accounts
    config = _config(tmp_path, enforcing_moto)
    # docs -> outputs_s3, outputs_dynamodb (the chain's first step: first_step)
    chain = tmp_path / "aws_lambda.yaml"
    chain.write_bytes(first_step(ROOT / "chains" / "aws_lambda.yaml"))
    done = _fmf(["--config", str(config), "run", "--chain", str(chain), "--quiet"], job, tmp_path,
                timeout=1700)  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]

    items = admin.client("dynamodb", enforcing_moto).scan(TableName=TABLE)["Items"]
    assert {i["doc_id"]["S"] for i in items if i["step"]["S"] != "digest"} == doc_ids()
    s3 = admin.client("s3", enforcing_moto)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="exports/")["Contents"]]
    rows = [
        json.loads(line)
        for key in keys
        for line in s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().splitlines()
    ]
    assert sorted(r["request_id"] for r in rows) == sorted(i["request_id"]["S"] for i in items)


def test_another_bucket_is_refused_to_the_s3_connector(
    as_job_user: Keys, enforcing_moto: str
) -> None:
    from fmf_spark.connectors.s3 import S3Connector, S3ConnectorConfig
    from fmf_spark.errors import ConnectorError

    allowed = S3Connector(
        "docs", S3ConnectorConfig(bucket=BUCKET, prefix="incoming/", endpoint_url=enforcing_moto)
    )
    allowed.precheck()
    assert sorted(i.ref.path for i in allowed.list()) == sorted(DOCS)

    other = S3Connector(
        "other", S3ConnectorConfig(bucket=OTHER_BUCKET, endpoint_url=enforcing_moto)
    )
    with pytest.raises(ConnectorError) as refused:
        other.precheck()
    assert refused.value.code == "connector.denied"
    assert refused.value.one_line().startswith(
        f"connector.denied: other: cannot list s3://{OTHER_BUCKET}/: AccessDenied"
    )
    # the sources are read-only to the job
    with pytest.raises(ConnectorError) as written:
        allowed.put("new.txt", b"x")
    assert written.value.code == "connector.denied"
    assert "AccessDenied" in written.value.message


def test_the_s3_sink_is_refused_another_bucket(as_job_user: Keys, enforcing_moto: str) -> None:
    from fmf_spark.errors import ExportAuthError
    from fmf_spark.exporters.s3 import S3Exporter, S3ExporterConfig

    S3Exporter("ok", S3ExporterConfig(bucket=BUCKET, endpoint_url=enforcing_moto)).precheck()
    sink = S3Exporter(
        "elsewhere", S3ExporterConfig(bucket=OTHER_BUCKET, endpoint_url=enforcing_moto)
    )
    with pytest.raises(ExportAuthError) as refused:
        sink.precheck()
    assert refused.value.one_line().startswith(
        f"export.auth: sink 'elsewhere': bucket {OTHER_BUCKET}: "
    )
    assert "403" in refused.value.message or "AccessDenied" in refused.value.message


@pytest.mark.parametrize(
    ("service", "call", "kwargs", "action"),
    [
        ("dynamodb", "delete_table", {"TableName": TABLE}, "dynamodb:DeleteTable"),
        ("dynamodb", "scan", {"TableName": TABLE}, "dynamodb:Scan"),
        ("secretsmanager", "put_secret_value", {"SecretId": SECRET, "SecretString": "x"},
         "secretsmanager:PutSecretValue"),
        ("secretsmanager", "list_secrets", {}, "secretsmanager:ListSecrets"),
        ("ssm", "put_parameter", {"Name": PARAMETER, "Value": "x", "Overwrite": True},
         "ssm:PutParameter"),
        ("s3", "delete_object", {"Bucket": BUCKET, "Key": "incoming/supplier_onboarding.md"},
         None),
        ("s3", "get_object", {"Bucket": OTHER_BUCKET, "Key": "private.txt"}, None),
    ],
    ids=lambda v: v if isinstance(v, str) and "_" in v else None,
)  # fmt: skip
def test_what_the_policies_leave_out_is_refused(
    accounts: tuple[Keys, Keys],
    enforcing_moto: str,
    service: str,
    call: str,
    kwargs: dict[str, Any],
    action: str | None,
) -> None:
    _, job = accounts
    with pytest.raises(ClientError) as refused:
        getattr(job.client(service, enforcing_moto), call)(**kwargs)
    error = refused.value.response["Error"]
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    if action is None:  # S3's own error document
        assert error["Code"] == "AccessDenied"
    else:
        # moto answers JSON services with an XML error body; AWS says AccessDeniedException
        assert f"user/fmf-job is not authorized to perform: {action}" in error["Message"]
