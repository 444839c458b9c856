"""The prompt registry: parsing, hashing, references, validation, immutability."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from fmf_spark.errors import PromptError
from fmf_spark.prompts.model import PromptVersionSpec, content_hash
from fmf_spark.prompts.registry import LOCK_FILE, PromptRef, PromptRegistry, version_sort_key
from fmf_spark.prompts.template import Literal, Placeholder, parse_template, render

ROOT = Path(__file__).resolve().parents[2]


def write_prompt(folder: Path, data: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{data['id']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def greet(versions: dict) -> dict:
    return {"id": "greet", "versions": versions}


V1 = {
    "variables": ["name"],
    "messages": [
        {"role": "system", "content": "Be nice."},
        {"role": "user", "content": "Greet {{ name }}."},
    ],
    "params": {"temperature": 0.0, "max_tokens": 20},
}


def test_template_parse_and_render() -> None:
    parts = parse_template("Hi {{name}}, {{ name }} and {{other_1}}!")
    assert parts == [
        Literal("Hi "),
        Placeholder("name"),
        Literal(", "),
        Placeholder("name"),
        Literal(" and "),
        Placeholder("other_1"),
        Literal("!"),
    ]
    assert render("Hi {{ name }}{{x}}", {"name": "Ada", "x": None}) == "Hi Ada"
    with pytest.raises(PromptError, match="malformed placeholder"):
        parse_template("Hi {{ name }")
    with pytest.raises(PromptError, match="no value"):
        render("{{ a }}", {})


def test_refs_parse() -> None:
    assert PromptRef.parse("greet#2") == PromptRef("greet", "2", None)
    assert PromptRef.parse("greet@latest") == PromptRef("greet", None, "latest")
    for bad in ("greet", "greet#", "greet@stable", "#1", "a b#1"):
        with pytest.raises(PromptError):
            PromptRef.parse(bad)
    assert sorted(["10", "2", "1.10", "1.2"], key=version_sort_key) == ["1.2", "1.10", "2", "10"]


def test_hash_is_canonical_and_ignores_tests_and_descriptions() -> None:
    a = PromptVersionSpec.model_validate(V1)
    reordered = {
        "params": {"max_tokens": 20, "temperature": 0.0},
        "messages": V1["messages"],
        "variables": ["name"],
        "description": "another description",
        "tests": [{"inputs": {"name": "x"}}],
    }
    assert content_hash(a) == content_hash(PromptVersionSpec.model_validate(reordered))
    changed = {**V1, "params": {"temperature": 0.5, "max_tokens": 20}}
    assert content_hash(a) != content_hash(PromptVersionSpec.model_validate(changed))


def test_get_pinned_and_latest(tmp_path: Path) -> None:
    v2 = {**V1, "messages": [{"role": "user", "content": "Hello {{ name }}!"}]}
    v10 = {**V1, "messages": [{"role": "user", "content": "Hey {{ name }}"}]}
    write_prompt(tmp_path, greet({1: V1, "2": v2, "10": v10}))
    registry = PromptRegistry(tmp_path)
    assert registry.versions("greet") == ["1", "2", "10"]
    assert registry.get("greet@latest").version == "10"
    pinned = registry.get("greet#2")
    assert (pinned.ref, pinned.variables) == ("greet#2", ["name"])
    assert pinned.content_hash == content_hash(PromptVersionSpec.model_validate(v2))
    with pytest.raises(PromptError, match="has no version '3'"):
        registry.get("greet#3")
    with pytest.raises(PromptError, match="no prompt 'nope'"):
        registry.get("nope#1")


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ({**V1, "variables": []}, "undeclared variable"),
        ({**V1, "variables": ["name", "extra"]}, "that no message uses"),
        (
            {**V1, "response_schema": {"type": "object", "properties": {"a": {"type": "nope"}}}},
            "not a valid JSON schema",
        ),
        ({**V1, "response_schema": {"type": "array"}}, "must have type: object"),
    ],
)
def test_validation_errors(tmp_path: Path, version: dict, message: str) -> None:
    write_prompt(tmp_path, greet({"1": version}))
    with pytest.raises(PromptError, match=message):
        PromptRegistry(tmp_path).get("greet#1")


def test_invalid_file_is_a_clear_error(tmp_path: Path) -> None:
    write_prompt(tmp_path, {"id": "greet", "versions": {"1": {"messages": [{"role": "bot"}]}}})
    with pytest.raises(PromptError, match=r"invalid prompt file .*versions\.1\.messages"):
        PromptRegistry(tmp_path)


def test_registered_versions_are_immutable(tmp_path: Path) -> None:
    path = write_prompt(tmp_path, greet({"1": V1}))
    registry = PromptRegistry(tmp_path)
    [first] = registry.register(f"{path}#1")
    assert first.action == "registered"
    lock = yaml.safe_load((tmp_path / LOCK_FILE).read_text())
    assert lock == {
        "greet": {
            "1": {
                "hash": first.version.content_hash,
                "registered_at": lock["greet"]["1"]["registered_at"],
                "file": "greet.yaml",
            }
        }
    }
    # same content again: a no-op
    assert [r.action for r in PromptRegistry(tmp_path).register(f"{path}#1")] == ["unchanged"]

    # change the content of the registered version: register and get both refuse
    edited = {**V1, "messages": [{"role": "user", "content": "Yo {{ name }}"}]}
    write_prompt(tmp_path, greet({"1": edited}))
    registry = PromptRegistry(tmp_path)
    with pytest.raises(PromptError, match="registered with hash") as err:
        registry.register(f"{path}#1")
    assert err.value.code == "prompt.immutable"
    assert 'versions."2"' in (err.value.hint or "")
    with pytest.raises(PromptError, match="registered with hash"):
        registry.get("greet#1")
    assert yaml.safe_load((tmp_path / LOCK_FILE).read_text()) == lock  # untouched

    # the way out: a new version
    write_prompt(tmp_path, greet({"1": V1, "2": edited}))
    results = PromptRegistry(tmp_path).register(str(path))
    assert [(r.version.ref, r.action) for r in results] == [
        ("greet#1", "unchanged"),
        ("greet#2", "registered"),
    ]


def test_register_refuses_files_outside_the_registry(tmp_path: Path) -> None:
    write_prompt(tmp_path / "reg", greet({"1": V1}))
    outside = write_prompt(tmp_path / "elsewhere", greet({"1": V1}))
    with pytest.raises(PromptError, match="not in the prompt registry folder"):
        PromptRegistry(tmp_path / "reg").register(f"{outside}#1")


def test_shipped_prompts_are_valid(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "prompts", tmp_path / "prompts")
    registry = PromptRegistry(tmp_path / "prompts")
    assert registry.ids() == ["corpus_digest", "doc_brief", "summarize_chunk"]
    for prompt_id in registry.ids():
        version = registry.get(f"{prompt_id}@latest")
        assert version.used_variables() == version.variables or set(
            version.used_variables()
        ) == set(version.variables)
