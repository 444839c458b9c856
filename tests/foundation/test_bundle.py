"""The asset bundle is valid against Databricks' bundle schema (when it is available),
and its job calls an entry point the wheel really declares."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT.parent / "shared" / "databricks-bundle-schema.json"


def _bundle() -> dict:
    bundle = yaml.safe_load((ROOT / "databricks.yml").read_text())
    for path in sorted((ROOT / "resources").glob("*.yml")):
        for kind, items in yaml.safe_load(path.read_text())["resources"].items():
            bundle.setdefault("resources", {}).setdefault(kind, {}).update(items)
    return bundle


def test_job_calls_the_wheel_entry_point() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    task = _bundle()["resources"]["jobs"]["fmf_run"]["tasks"][0]["python_wheel_task"]
    assert task["entry_point"] in project["scripts"]
    assert task["package_name"].replace("_", "-") == project["name"]
    assert "run" in task["parameters"]


@pytest.mark.skipif(
    not SCHEMA.exists(), reason="the bundle schema is a development aid in ../shared"
)
def test_bundle_matches_schema() -> None:
    import jsonschema

    # Python's re has no \\p{L}/\\p{N}: use ASCII classes (enough for our names)
    text = (
        SCHEMA.read_text()
        .replace(r"[\\p{L}\\p{N}]", "[a-zA-Z0-9]")
        .replace(r"\\p{L}", "[a-zA-Z]")
        .replace(r"\\p{N}", "[0-9]")
    )
    validator = jsonschema.Draft202012Validator(json.loads(text))
    documents = [ROOT / "databricks.yml", *sorted((ROOT / "resources").glob("*.yml"))]
    for path in documents:
        errors = [
            f"{list(e.absolute_path)}: {e.message}"
            for e in validator.iter_errors(yaml.safe_load(path.read_text()))
        ]
        assert errors == [], f"{path.name}: {errors[:5]}"
