"""The deployment files, checked without a cloud: linters and the AWS APIs' own schemas.

- every Dockerfile passes hadolint (the only ignored rules are the ones each Dockerfile
  justifies in a comment above the instruction);
- every identity policy under deploy/iam passes parliament (the Bedrock one with the one
  finding parliament's own Bedrock table causes, checked to be only that);
- the Batch job definition, the Lambda function and the EMR step validate against the
  request shapes of botocore's service models (what the AWS CLI and SDK send).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from botocore.session import get_session
from botocore.validate import ParamValidator

from tests.deploy.helpers import ROOT

DOCKERFILES = sorted((ROOT / "deploy").rglob("Dockerfile"))
POLICIES = sorted((ROOT / "deploy" / "iam").glob("*.json"))
BEDROCK = ROOT / "deploy" / "iam" / "fmf-bedrock.json"


def _validate(service: str, operation: str, params: dict[str, Any]) -> None:
    shape = get_session().get_service_model(service).operation_model(operation).input_shape
    report = ParamValidator().validate(params, shape)
    assert not report.has_errors(), report.generate_report()


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: install the test extra (scripts/setup.sh test)")
    return path


def test_every_dockerfile_is_found() -> None:
    assert [p.relative_to(ROOT).as_posix() for p in DOCKERFILES] == [
        "deploy/aws_batch/Dockerfile",
        "deploy/lambda/Dockerfile",
    ]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_hadolint_passes(dockerfile: Path) -> None:
    done = subprocess.run(
        [_tool("hadolint"), "--no-color", str(dockerfile)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # each ignored rule has its reason in the comment lines just above it
    lines = dockerfile.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("# hadolint ignore="):
            assert lines[i - 1].startswith("#") and not lines[i - 1].startswith("# hadolint")


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_images_bake_the_jars_and_never_run_as_root_with_a_shell(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    assert "scripts/fetch_jars.py /opt/fmf/jars" in text
    assert "deploy/install.sh" in text
    # Java 17 from a pinned OS release
    assert "bookworm" in text or "public.ecr.aws/lambda/python:3.12" in text
    if "aws_batch" in str(dockerfile):
        assert re.search(r"^USER 10001$", text, re.M)
        assert 'ENTRYPOINT ["fmf"]' in text


def _parliament(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_tool("parliament"), *args], capture_output=True, text=True, stdin=subprocess.DEVNULL
    )


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_images_install_with_the_uv_of_the_lock(dockerfile: Path) -> None:
    """The images install through uv (deploy/install.sh with UV), as the tests do: the
    version they pin is the one the tests ran (requirements/spark4/test.lock)."""
    lock = (ROOT / "requirements" / "spark4" / "test.lock").read_text(encoding="utf-8")
    (locked,) = re.findall(r"^uv==(\S+)", lock, re.MULTILINE)
    assert re.findall(r"pip install uv==(\S+)", dockerfile.read_text(encoding="utf-8")) == [locked]


def test_parliament_passes_every_identity_policy() -> None:
    others = [str(p) for p in POLICIES if p != BEDROCK]
    done = _parliament("--files", ",".join(others))
    assert done.returncode == 0 and done.stdout.strip() == "", done.stdout + done.stderr


def test_parliament_on_the_bedrock_policy_reports_only_its_table_gap() -> None:
    # parliament 1.6.4 reports RESOURCE_MISMATCH for any bedrock:InvokeModel resource,
    # listing the resource formats the statement does not use; its ignore_locations
    # setting cannot be used (its make_list drops values read from a config file). So:
    # that one finding and nothing else, and the foundation-model format is matched
    # (absent from the list of unmatched formats).
    done = _parliament("--json", "--files", str(BEDROCK))
    findings = [json.loads(line) for line in done.stdout.splitlines()]
    assert [f["issue"] for f in findings] == ["RESOURCE_MISMATCH"], done.stdout
    unmatched = {d["required_format"] for d in findings[0]["detail"]}
    assert "arn:*:bedrock:*::foundation-model/*" not in unmatched
    assert "arn:*:bedrock:*:*:inference-profile/*" in unmatched


def test_parliament_would_catch_a_wildcard() -> None:
    # the linter is live: a policy granting s3:* on * is reported
    done = _parliament(
        "--string",
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
        '"Action": "s3:*", "Resource": "*"}]}',
    )
    assert done.returncode != 0 and "Unnecessary use of Resource *" in done.stdout


def test_no_policy_grants_a_wildcard_action_or_resource() -> None:
    for path in POLICIES:
        for statement in json.loads(path.read_text())["Statement"]:
            actions = statement["Action"]
            for action in [actions] if isinstance(actions, str) else actions:
                assert "*" not in action, f"{path.name}: {action}"
            resources = statement["Resource"]
            for resource in [resources] if isinstance(resources, str) else resources:
                assert resource != "*" and ":*:" not in resource, f"{path.name}: {resource}"


def test_the_copy_role_trusts_redshift_only() -> None:
    trust = json.loads(
        (ROOT / "deploy" / "iam" / "trust" / "redshift-copy-role-trust.json").read_text()
    )
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"Service": "redshift.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole"


def test_batch_job_definition_matches_the_api() -> None:
    job = json.loads((ROOT / "deploy" / "aws_batch" / "job-definition.json").read_text())
    _validate("batch", "RegisterJobDefinition", job)
    assert job["retryStrategy"]["attempts"] == 3
    assert job["timeout"]["attemptDurationSeconds"] > 0
    # bad input (exit 2: one-line FmfError) is not retried; crashes and lost hosts are
    assert job["retryStrategy"]["evaluateOnExit"][0] == {"onExitCode": "2", "action": "EXIT"}
    assert job["containerProperties"]["command"][:2] == ["run", "--chain"]


def test_lambda_function_matches_the_api() -> None:
    function = json.loads((ROOT / "deploy" / "lambda" / "function.json").read_text())
    _validate("lambda", "CreateFunction", function)
    assert function["Timeout"] == 900 and function["MemorySize"] >= 8192
    for name in function["Environment"]["Variables"]:
        # Lambda's rule for variable names: no dots
        assert re.fullmatch(r"[a-zA-Z]\w+", name), name


def test_emr_step_matches_the_api() -> None:
    (step,) = json.loads((ROOT / "deploy" / "emr" / "step.json").read_text())
    # the AWS CLI's `emr add-steps` shape, as the API receives it
    api_step = {
        "Name": step["Name"],
        "ActionOnFailure": step["ActionOnFailure"],
        "HadoopJarStep": {"Jar": step["Jar"], "Args": step["Args"]},
    }
    _validate("emr", "AddJobFlowSteps", {"JobFlowId": "j-1ABCDEFGHIJKL", "Steps": [api_step]})
    assert step["Args"][0] == "spark-submit"
    # the job, then the fmf arguments; config, chain and prompts from S3
    args = step["Args"]
    assert args[args.index("--config") + 1].startswith("s3://")
    assert args[args.index("--chain") + 1].startswith("s3://")
    assert any(a.startswith("prompts.dir=s3://") for a in args)
    assert "spark.archives=s3://my-fmf-bucket/fmf/fmf_spark_emr.tar.gz#environment" in args
