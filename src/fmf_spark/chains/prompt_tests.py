"""``fmf prompt test``: run a prompt version's tests through the batch runner.

Each test renders the version's messages with its ``inputs`` and sends them through the
same batch runner as a chain (:func:`fmf_spark.inference.infer`), against the configured
provider (with the ``local`` profile, the simulator), then checks ``expect``
(:func:`fmf_spark.prompts.testing.check_expectation`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from fmf_spark.errors import PromptError
from fmf_spark.inference import InferenceStep, infer
from fmf_spark.prompts.testing import PromptTestResult, check_expectation, render_messages

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from fmf_spark.config.models import FmfConfig
    from fmf_spark.inference.providers import ProviderRuntime
    from fmf_spark.prompts.model import PromptVersion


def prompt_test_step(version: PromptVersion, provider: str) -> InferenceStep:
    """The inference step of a version's tests: its messages' parameters and schema."""
    params = version.params
    return InferenceStep(
        step=f"prompt_test.{version.id}",
        provider=provider,
        prompt_id=version.id,
        prompt_version=version.version,
        prompt_hash=version.content_hash,
        temperature=params.temperature,
        max_tokens=params.max_tokens or 1024,
        stop=params.stop,
        response_schema=version.response_schema,
    )


def run_prompt_tests(
    spark: SparkSession,
    version: PromptVersion,
    config: FmfConfig,
    *,
    provider: str | None = None,
    runtime: ProviderRuntime | None = None,
) -> list[PromptTestResult]:
    """Run every test of ``version`` (one model call each) and check its expectations.

    Args:
        spark: the session.
        version: the prompt version whose tests run.
        config: the config (providers, prices).
        provider: a key of ``inference.providers`` (default: the default provider).
        runtime: that provider, built and prechecked by the caller.

    Raises:
        PromptError: the version has no tests, or a test lacks a variable.
    """
    from pyspark.sql import functions as F

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
    name = provider or (runtime.name if runtime else config.inference.default_provider) or ""
    step = prompt_test_step(version, name)
    answers = {r["doc_id"]: r for r in infer(df, step, config, provider=runtime).collect()}
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
