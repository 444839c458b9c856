"""``fmf prompt test``: run a version's tests against the configured provider.

Each test renders the version's messages with its ``inputs`` and sends them through the
same batch runner as a chain (:func:`fmf_spark.inference.infer`), against the provider
of the config (with the ``local`` profile, the simulator), then checks ``expect``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fmf_spark.errors import PromptError
from fmf_spark.prompts.model import PromptExpectation, PromptVersion
from fmf_spark.prompts.template import render

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from fmf_spark.config.models import FmfConfig


@dataclass
class PromptTestResult:
    name: str
    passed: bool
    problems: list[str] = field(default_factory=list)
    output: str | None = None


def render_messages(version: PromptVersion, inputs: dict[str, Any]) -> list[dict[str, str]]:
    """The version's messages with ``inputs`` filled in.

    Raises:
        PromptError: a declared variable has no value.
    """
    missing = [v for v in version.variables if v not in inputs]
    if missing:
        raise PromptError(f"no value for variable(s) {', '.join(missing)} of {version.ref}")
    return [{"role": m.role, "content": render(m.content, inputs)} for m in version.messages]


def check_expectation(
    expect: PromptExpectation, status: str, output_text: str | None, error_code: str | None
) -> list[str]:
    """What does not hold in one answer (empty: the test passed)."""
    problems: list[str] = []
    if status != expect.status:
        problems.append(
            f"status is {status} ({error_code or 'no error'}), expected {expect.status}"
        )
        return problems
    if expect.error_code and error_code != expect.error_code:
        problems.append(f"error code is {error_code}, expected {expect.error_code}")
    text = output_text or ""
    if expect.json_keys:
        try:
            data = json.loads(text)
        except ValueError:
            problems.append("the answer is not JSON")
        else:
            if not isinstance(data, dict):
                problems.append("the answer is not a JSON object")
            else:
                missing = [k for k in expect.json_keys if k not in data]
                if missing:
                    problems.append(f"JSON answer lacks {', '.join(missing)}")
    problems += [f"answer does not contain {s!r}" for s in expect.contains if s not in text]
    problems += [f"answer contains {s!r}" for s in expect.not_contains if s in text]
    return problems


def run_prompt_tests(
    spark: SparkSession, version: PromptVersion, config: FmfConfig, *, provider: str | None = None
) -> list[PromptTestResult]:
    """Run every test of ``version`` (one model call each) and check its expectations.

    Raises:
        PromptError: the version has no tests, or a test lacks a variable.
    """
    from pyspark.sql import functions as F

    from fmf_spark.inference import InferenceStep, infer

    tests = version.spec.tests
    if not tests:
        raise PromptError(
            f"prompt {version.ref} has no tests",
            hint=f"add versions.{version.version}.tests (inputs and expect) to {version.source}",
        )
    rows = [
        (f"test-{i}", json.dumps(render_messages(version, t.inputs))) for i, t in enumerate(tests)
    ]
    df = spark.createDataFrame(rows, "doc_id string, messages string").withColumn(
        "chunk_id", F.lit(None).cast("string")
    )
    params = version.params
    step = InferenceStep(
        step=f"prompt_test.{version.id}",
        provider=provider or config.inference.default_provider or "",
        prompt_id=version.id,
        prompt_version=version.version,
        prompt_hash=version.content_hash,
        temperature=params.temperature,
        max_tokens=params.max_tokens or 1024,
        stop=params.stop,
        response_schema=version.response_schema,
    )
    answers = {r["doc_id"]: r for r in infer(df, step, config).collect()}  # a few test rows
    results = []
    for i, test in enumerate(tests):
        row = answers[f"test-{i}"]
        code = row["error"]["code"] if row["error"] is not None else None
        problems = check_expectation(test.expect, row["status"], row["output_text"], code)
        results.append(
            PromptTestResult(
                test.name or f"test {i + 1}", not problems, problems, row["output_text"]
            )
        )
    return results
