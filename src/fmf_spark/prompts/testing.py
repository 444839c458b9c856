"""Prompt tests: a version's messages rendered with a test's inputs, and its expectations.

Running the tests (one model call each, through the batch runner) is
:func:`fmf_spark.chains.prompt_tests.run_prompt_tests`: prompts sit below inference and
never call a model themselves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from fmf_spark.errors import PromptError
from fmf_spark.prompts.model import PromptExpectation, PromptVersion
from fmf_spark.prompts.template import render


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
