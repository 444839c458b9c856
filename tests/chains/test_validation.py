"""Chain validation before any Spark work: interpolation, scopes, prompts, sinks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fmf_spark.chains.interpolation import Ref, parse_input, parse_ref
from fmf_spark.chains.model import load_chain
from fmf_spark.chains.plan import plan_chain
from fmf_spark.errors import ChainError
from fmf_spark.prompts.registry import PromptRegistry
from tests.chains.helpers import EXTRACT, ROOT, chain_dict, make_chain, make_config, make_registry


def test_parse_input_literals_refs_and_escape() -> None:
    parts = parse_input("A ${doc.metadata.title} $${not.a.ref} ${steps.s1.output_json.a.b}!")
    assert parts == [
        "A ",
        Ref("doc", "metadata.title"),
        " ${not.a.ref} ",
        Ref("steps", "output_json.a.b", "s1"),
        "!",
    ]
    assert parse_ref("all.s.output_text") == Ref("all", "output_text", "s")
    assert Ref("steps", "output_json.a.b", "s1").json_path == ["a", "b"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${chunk.txt}", "unknown field"),
        ("${doc.metadata}", "unknown field"),
        ("${steps.s}", "bad reference"),
        ("${steps.s.output}", "bad reference"),
        ("${steps.s.output_text.x}", "output_text has no fields"),
        ("${env.HOME}", "unknown reference"),
        ("${chunk.text", "unclosed"),
    ],
)
def test_malformed_refs(text: str, message: str) -> None:
    with pytest.raises(ChainError, match=message):
        parse_input(text)


def test_valid_chain_plans_every_step(tmp_path: Path) -> None:
    chain = make_chain(
        [
            EXTRACT,
            {
                "id": "per_doc",
                "prompt": "combine#1",
                "scope": "document",
                "inputs": {"items": "${steps.extract.output_json.entity.name}: ${chunk.text}"},
                "params": {"max_tokens": 99, "temperature": 0.3},
            },
            {
                "id": "overall",
                "prompt": "combine@latest",
                "scope": "all",
                "inputs": {"items": "${all.per_doc.output_text}"},
            },
        ],
        outputs=[{"export": "outputs_delta"}],
    )
    plan = plan_chain(chain, make_config(), make_registry(tmp_path))
    modes = {s.id: [(r.text, m) for r, m in s.refs] for s in plan.steps}
    assert modes == {
        "extract": [("${chunk.text}", "direct"), ("${doc.path}", "direct")],
        "per_doc": [
            ("${steps.extract.output_json.entity.name}", "gather_chunks"),
            ("${chunk.text}", "gather_chunks"),
        ],
        "overall": [("${all.per_doc.output_text}", "broadcast")],
    }
    per_doc = plan.step("per_doc")
    # step params override the prompt's; the model comes from the provider
    assert (per_doc.max_tokens, per_doc.temperature, per_doc.provider, per_doc.model) == (
        99,
        0.3,
        "simulator",
        "sim-gpt-4o-mini",
    )
    assert plan.step("extract").max_tokens == 40


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        # a variable of the prompt not provided
        ([{**EXTRACT, "inputs": {"text": "${chunk.text}"}}], "needs variable\\(s\\) path"),
        # an input the prompt does not declare
        (
            [{**EXTRACT, "inputs": {**EXTRACT["inputs"], "lang": "en"}}],
            "input\\(s\\) lang are not variables",
        ),
        # nested JSON field the schema does not declare
        (
            [
                EXTRACT,
                {
                    "id": "b",
                    "prompt": "combine#1",
                    "inputs": {"items": "${steps.extract.output_json.entity.age}"},
                },
            ],
            "no field 'age' at entity",
        ),
        # output_json of a prompt without schema
        (
            [
                {**EXTRACT},
                {"id": "b", "prompt": "combine#1", "inputs": {"items": "x"}},
                {"id": "c", "prompt": "combine#1", "inputs": {"items": "${steps.b.output_json.x}"}},
            ],
            "has no response_schema",
        ),
        # a later step
        (
            [
                {
                    "id": "b",
                    "prompt": "combine#1",
                    "inputs": {"items": "${steps.extract.output_text}"},
                },
                EXTRACT,
            ],
            "not an earlier step",
        ),
        # chunk values in an all-scope step
        (
            [
                {
                    "id": "b",
                    "prompt": "combine#1",
                    "scope": "all",
                    "inputs": {"items": "${chunk.text}"},
                }
            ],
            "cannot be used in an all-scope step",
        ),
        # per-row output of a chunk step from an all-scope step
        (
            [
                EXTRACT,
                {
                    "id": "b",
                    "prompt": "combine#1",
                    "scope": "all",
                    "inputs": {"items": "${steps.extract.output_text}"},
                },
            ],
            "use \\$\\{all.extract.output_text\\}",
        ),
        ([{**EXTRACT, "prompt": "extract#7"}], "has no version '7'"),
        ([{**EXTRACT, "params": {"provider": "bedrock"}}], "provider 'bedrock'"),
    ],
)
def test_invalid_chains(tmp_path: Path, steps: list[dict], message: str) -> None:
    with pytest.raises(ChainError, match=message) as err:
        plan_chain(make_chain(steps), make_config(), make_registry(tmp_path))
    assert err.value.hint == "fix the chain file; nothing was run"


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    chain = make_chain(
        [{**EXTRACT, "prompt": "missing#1"}, {**EXTRACT, "id": "x", "inputs": {}}],
        inputs={"connector": "nowhere"},
        outputs=[{"export": "no_sink"}],
        processing={"chunking": {"strategy": "sentences"}},
    )
    with pytest.raises(ChainError) as err:
        plan_chain(chain, make_config(), make_registry(tmp_path))
    lines = err.value.message.splitlines()[1:]
    assert len(lines) == 5
    joined = "\n".join(lines)
    for fragment in (
        "'nowhere'",
        "processing.chunking.strategy",
        "'no_sink'",
        "'missing'",
        "step 'x'",
    ):
        assert fragment in joined


def test_load_chain_structure_errors(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(chain_dict([EXTRACT, EXTRACT])))
    with pytest.raises(ChainError, match="step id 'extract' is used twice"):
        load_chain(path)
    path.write_text(yaml.safe_dump(chain_dict([{**EXTRACT, "scope": "page"}])))
    with pytest.raises(ChainError, match=r"steps\.0\.scope"):
        load_chain(path)


def test_sample_chain_is_valid() -> None:
    chain = load_chain(ROOT / "chains" / "sample.yaml")
    plan = plan_chain(chain, make_config(), PromptRegistry(ROOT / "prompts"))
    assert [(s.id, s.scope) for s in plan.steps] == [
        ("summarize", "chunk"),
        ("brief", "document"),
        ("digest", "all"),
    ]


@pytest.mark.parametrize(
    ("on_error", "max_ratio", "failed", "stops"),
    [
        ("continue", None, 10, False),  # continue: failed rows are carried, the chain goes on
        ("continue", 0.2, 2, False),
        ("continue", 0.2, 3, True),
        ("fail", None, 1, True),  # fail: any failure stops the chain
        ("fail", 0.5, 5, False),
        ("fail", None, 0, False),
    ],
)
def test_failure_ratio(tmp_path: Path, on_error: str, max_ratio, failed: int, stops: bool) -> None:
    from fmf_spark.chains.runner import StepSummary, _check_failures

    step = {**EXTRACT, "on_error": on_error, "max_failed_ratio": max_ratio}
    plan = plan_chain(make_chain([step]), make_config(), make_registry(tmp_path)).steps[0]
    summary = StepSummary(
        "extract",
        "chunk",
        "extract#1",
        "h",
        "simulator",
        "m",
        rows=10,
        failed=failed,
        failures_by_code={"inference.auth": failed},
    )
    if stops:
        with pytest.raises(ChainError, match=r"failed on \d+ of 10 rows") as err:
            _check_failures(plan, summary)
        assert err.value.code == "chain.step_failed"
        assert "inference.auth" in err.value.message
    else:
        _check_failures(plan, summary)


def test_load_chain_from_s3(moto_endpoint: str, monkeypatch) -> None:
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_endpoint)
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="fmf-chains")
    local = ROOT / "chains" / "sample.yaml"
    s3.put_object(Bucket="fmf-chains", Key="chains/sample.yaml", Body=local.read_bytes())
    remote = load_chain("s3://fmf-chains/chains/sample.yaml")
    assert remote.model_dump() == load_chain(local).model_dump()
    assert remote.text == local.read_text()
    with pytest.raises(ChainError, match=r"cannot read chain file s3://fmf-chains/nope\.yaml"):
        load_chain("s3://fmf-chains/nope.yaml")
