"""The asset bundle deploys jobs that would run.

- its resources load into the ``databricks-bundles`` package's resource models (the
  Python mirror of the bundle schema: unknown keys and bad enum values fail) and back,
  key for key;
- every variable it references is declared, and has a value in every target;
- every library path and entry point it names exists in the wheel its artifact builds;
- the parameters each job passes parse with the real CLI and load a valid config that
  plans the chain, and a failing run fails the task (a python_wheel_task ignores the
  entry point's return value).
"""

from __future__ import annotations

import configparser
import fnmatch
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from databricks.bundles.core import Bundle
from databricks.bundles.jobs import Job
from databricks.bundles.schemas import Schema
from databricks.bundles.volumes import Volume

from fmf_spark.chains.model import load_chain
from fmf_spark.chains.plan import plan_chain
from fmf_spark.cli import build_parser
from fmf_spark.config import load_config
from fmf_spark.prompts.registry import PromptRegistry
from tests.deploy import bundle as b
from tests.deploy.bundle import ROOT

MODELS: dict[str, Any] = {"jobs": Job, "schemas": Schema, "volumes": Volume}

REQUIREMENTS = ROOT / "requirements" / "databricks.txt"


def _jobs() -> list[b.Resource]:
    return [r for r in b.resources() if r.kind == "jobs"]


def _wheel_tasks(job: Job) -> list[Any]:
    return [t for t in job.tasks if t.python_wheel_task is not None]


# --- the bundle's shape ------------------------------------------------------------------


def test_include_covers_every_resource_file() -> None:
    on_disk = sorted((ROOT / "resources").glob("*.yml"))
    assert on_disk == b.resource_files()
    assert [p.name for p in on_disk] == ["fmf_job.yml", "fmf_storage.yml"]


def test_resources_load_into_the_bundle_models() -> None:
    loaded = {}
    for res in b.resources():
        assert res.kind in MODELS, f"no model checked for resources.{res.kind}"
        model = MODELS[res.kind].from_dict(res.raw)
        # nothing dropped or renamed on the way: the model gives back the same mapping
        assert model.as_dict() == res.raw, f"{res.kind}.{res.name}"
        loaded[(res.kind, res.name)] = model
    assert sorted(loaded) == [
        ("jobs", "fmf_run"),
        ("jobs", "fmf_run_serverless"),
        ("schemas", "fmf"),
        ("volumes", "fmf"),
    ]
    volume = loaded[("volumes", "fmf")]
    # the volume lives in the schema the bundle creates, under its deployed name
    assert str(volume.schema_name) == "${resources.schemas.fmf.name}"
    assert volume.volume_type.value == "MANAGED"


def test_a_bad_key_would_fail_the_models() -> None:
    # the check above means something: the models refuse what the schema refuses
    raw = b.resource("jobs", "fmf_run").raw
    broken = {**raw, "tasks": [{**raw["tasks"][0], "python_wheel_tsk": {}}]}
    with pytest.raises(ValueError, match="Unexpected field 'python_wheel_tsk'"):
        Job.from_dict(broken)


def test_every_variable_is_declared_used_and_set_in_every_target() -> None:
    declared = set(b.bundle_config()["variables"])
    used = set()
    for res in b.resources():
        used |= {r.removeprefix("var.") for r in b.references(res.raw) if r.startswith("var.")}
    assert used <= declared, f"undeclared: {sorted(used - declared)}"
    assert declared - used == set(), f"declared but unused: {sorted(declared - used)}"
    for target in b.targets():
        assert set(b.variables(target)) == declared, target


def test_targets_cover_three_clouds_and_production() -> None:
    targets = b.targets()
    assert [name for name, t in targets.items() if t.get("default")] == ["azure"]
    node_types = {name: b.variables(name)["node_type_id"] for name in targets}
    # each cloud's own node type names
    assert re.fullmatch(r"Standard_\w+", node_types["azure"])
    assert re.fullmatch(r"[a-z0-9]+\.[a-z0-9]+", node_types["aws"])
    assert re.fullmatch(r"[a-z0-9]+-[a-z]+-\d+", node_types["gcp"])
    for name in ("azure", "aws", "gcp"):
        assert targets[name]["mode"] == "development"
    # the CLI refuses a production target without an explicit root path
    assert targets["prod"]["mode"] == "production"
    assert "${bundle.target}" in targets["prod"]["workspace"]["root_path"]


def test_job_cluster_settings_resolve_per_target() -> None:
    job = Job.from_dict(b.resource("jobs", "fmf_run").raw)
    cluster = job.job_clusters[0].new_cluster
    serverless = Job.from_dict(b.resource("jobs", "fmf_run_serverless").raw)
    for target in b.targets():
        bundle = Bundle(target=target, variables=b.variables(target))
        assert bundle.resolve_variable(cluster.node_type_id) == b.variables(target)["node_type_id"]
        assert bundle.resolve_variable(cluster.num_workers) == 2
        # a Spark 4 runtime until 3.5 runtimes are supported (issue 12 phase B)
        assert re.fullmatch(
            r"1[7-9]\.\d+\.x-scala2\.13", bundle.resolve_variable(cluster.spark_version)
        )
        spec = serverless.environments[0].spec
        assert bundle.resolve_variable(spec.environment_version) == "4"
    # dedicated access mode: the library still uses classic Spark APIs
    assert cluster.data_security_mode.value == "SINGLE_USER"


# --- what the jobs install and call ------------------------------------------------------


def test_both_jobs_run_the_same_command() -> None:
    classic = Job.from_dict(b.resource("jobs", "fmf_run").raw)
    serverless = Job.from_dict(b.resource("jobs", "fmf_run_serverless").raw)
    (task,) = _wheel_tasks(classic)
    (stask,) = _wheel_tasks(serverless)
    assert task.python_wheel_task == stask.python_wheel_task
    # classic: a job cluster with libraries; serverless: an environment, no libraries
    assert task.job_cluster_key == classic.job_clusters[0].job_cluster_key
    assert [lib.as_dict() for lib in task.libraries] == [
        {"whl": "../dist/*.whl"},
        {"requirements": "../requirements/databricks.txt"},
    ]
    assert stask.job_cluster_key is None and stask.new_cluster is None and stask.libraries == []
    (env,) = serverless.environments
    assert stask.environment_key == env.environment_key
    assert env.spec.dependencies == ["../dist/*.whl", "-r ../requirements/databricks.txt"]


def _library_paths(res: b.Resource) -> tuple[list[Path], list[Path]]:
    """(wheel globs, requirements files) a job names, resolved as the CLI resolves them."""
    job = Job.from_dict(res.raw)
    wheels, requirements = [], []
    for task in job.tasks:
        for lib in task.libraries:
            if lib.whl:
                wheels.append(res.local_path(lib.whl))
            if lib.requirements:
                requirements.append(res.local_path(lib.requirements))
    for env in job.environments:
        for dep in env.spec.dependencies:
            if dep.startswith("-r "):
                requirements.append(res.local_path(dep.removeprefix("-r ").strip()))
            elif dep.endswith(".whl"):
                wheels.append(res.local_path(dep))
    return wheels, requirements


def test_library_paths_are_the_built_wheel_and_the_requirements(bundle_wheel: Path) -> None:
    for res in _jobs():
        wheels, requirements = _library_paths(res)
        assert wheels, res.name
        for pattern in wheels:
            # the folder the artifact builds into, and a glob the built wheel matches
            assert pattern.parent == b.artifact_wheel_dir(), res.name
            assert fnmatch.fnmatch(bundle_wheel.name, pattern.name), (bundle_wheel.name, pattern)
        assert requirements == [REQUIREMENTS], res.name


def test_requirements_file_is_current_and_leaves_the_runtime_alone() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import databricks_requirements as script
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    assert REQUIREMENTS.read_text(encoding="utf-8") == script.build(), (
        "requirements/databricks.txt is stale: run python scripts/databricks_requirements.py"
    )
    lines = [ln for ln in REQUIREMENTS.read_text().splitlines() if ln and not ln.startswith("#")]
    names = {re.split(r"[\[<>=!~;]", ln, maxsplit=1)[0] for ln in lines}
    # what the runs import on Databricks: PDFs, tokens, Azure OpenAI, Bedrock, S3, ...
    assert {"pypdf", "bpe-openai", "openai", "azure-identity", "boto3", "openpyxl"} <= names
    # never reinstall what the runtime provides
    assert not names & {"pyspark", "delta-spark", "mlflow", "databricks-sdk", "pyarrow"}


def test_requirements_pin_to_a_lock_when_given(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import databricks_requirements as script
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    reqs = script.extra_requirements(
        {
            "project": {
                "name": "fmf-spark",
                "optional-dependencies": {
                    "a": ["openai>=1.40", "jsonschema>=4.18", "pyspark>=4.0"],
                    "b": ["fmf-spark[a]", "jsonschema>=4.18,<5", "pypdf[crypto]>=5.0"],
                },
            }
        },
        extras=("b",),
    )
    lock = tmp_path / "lock.txt"
    lock.write_text(
        "jsonschema==4.26.0 \\\n    --hash=sha256:00\nopenai==2.1.0 ; python_version >= '3.10'\n"
        "pypdf==6.0.0\npyspark==4.1.0\n"
    )
    pinned = script.render(reqs, script.read_lock(lock)).splitlines()[3:]
    assert pinned == ["jsonschema==4.26.0", "openai==2.1.0", "pypdf[crypto]==6.0.0"]
    ranged = script.render(reqs).splitlines()[3:]
    assert ranged == ["jsonschema<5,>=4.18", "openai>=1.40", "pypdf[crypto]>=5.0"]


def _wheel_metadata(wheel: Path) -> tuple[str, configparser.ConfigParser, set[str]]:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        (meta,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        (eps,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        name = re.search(r"^Name: (.+)$", zf.read(meta).decode(), re.M).group(1)  # type: ignore[union-attr]
        parser = configparser.ConfigParser()
        parser.read_string(zf.read(eps).decode())
    return name, parser, names


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_entry_points_exist_in_the_wheel(bundle_wheel: Path) -> None:
    dist_name, entry_points, files = _wheel_metadata(bundle_wheel)
    for res in _jobs():
        for task in _wheel_tasks(Job.from_dict(res.raw)):
            wheel_task = task.python_wheel_task
            assert _normalize(wheel_task.package_name) == _normalize(dist_name)
            target = entry_points["console_scripts"][wheel_task.entry_point]
            module, _, func = target.partition(":")
            assert f"{module.replace('.', '/')}.py" in files, target
            assert func == "main"


def _job_parameters(target: str, **var: str) -> list[str]:
    (task,) = _wheel_tasks(Job.from_dict(b.resource("jobs", "fmf_run").raw))
    # a parameter that is one whole reference loads as a Variable: its str() is "${...}"
    return [b.resolve(str(p), target, var=var) for p in task.python_wheel_task.parameters]


@pytest.mark.parametrize("target", ["azure", "aws", "gcp", "prod"])
def test_job_parameters_parse_and_plan_the_chain(target: str) -> None:
    args = build_parser().parse_args(_job_parameters(target))
    values = b.variables(target)
    volume = f"/Volumes/{values['catalog']}/{values['schema']}/{values['volume']}"
    assert (args.command, args.profile) == ("run", "databricks")
    assert Path(args.config) == ROOT / "conf" / "fmf.yaml"
    assert Path(args.chain) == ROOT / "chains" / "sample.yaml"

    cfg = load_config(args.config, profile=args.profile, overrides=args.set, environ={})
    # the bundle's prompts, found through the config file (no --set for them)
    assert cfg.prompts.dir == str(ROOT / "prompts")
    assert not any(item.startswith("prompts.") for item in args.set)
    assert cfg.artefacts.root == f"{volume}/artefacts"
    assert cfg.connectors["samples"].root == f"{volume}/input"  # type: ignore[union-attr]
    sink = cfg.exporters["outputs_delta"]
    assert (sink.path, sink.table) == (None, f"{values['catalog']}.{values['schema']}.fmf_outputs")  # type: ignore[union-attr]
    assert cfg.secrets.providers["databricks"].scope == values["secret_scope"]  # type: ignore[union-attr]
    assert cfg.secrets.names["azure_openai_key"].provider == "databricks"
    assert cfg.inference.default_provider == values["provider"] == "azure"
    azure = cfg.inference.providers["azure"]
    assert (azure.type, azure.endpoint, azure.deployment) == (  # type: ignore[union-attr]
        "azure_openai",
        values["azure_openai_endpoint"],
        values["azure_openai_deployment"],
    )
    assert azure.api_key.secret == "azure_openai_key"  # type: ignore[union-attr]
    # the local simulator only starts for a step that uses it: none does here
    assert cfg.inference.providers[cfg.inference.default_provider].type != "simulator"
    assert cfg.observability.mlflow.tracking_uri == "databricks"

    # the chain validates against this config: prompts found, every step has a provider
    plan = plan_chain(load_chain(args.chain), cfg, PromptRegistry(cfg.prompts.dir))
    assert [(s.id, s.provider) for s in plan.steps] == [
        ("summarize", "azure"),
        ("brief", "azure"),
        ("digest", "azure"),
    ]


def test_bedrock_is_one_variable_away() -> None:
    args = build_parser().parse_args(_job_parameters("aws", provider="bedrock"))
    cfg = load_config(args.config, profile=args.profile, overrides=args.set, environ={})
    plan = plan_chain(load_chain(args.chain), cfg, PromptRegistry(cfg.prompts.dir))
    bedrock = cfg.inference.providers["bedrock"]
    assert {s.provider for s in plan.steps} == {"bedrock"}
    assert {s.model for s in plan.steps} == {bedrock.model_id}  # type: ignore[union-attr]
    # priced, so the run's cost is not 0
    assert bedrock.model_id in cfg.inference.prices  # type: ignore[union-attr]


def test_model_serving_is_one_variable_away() -> None:
    args = build_parser().parse_args(_job_parameters("azure", provider="serving"))
    cfg = load_config(args.config, profile=args.profile, overrides=args.set, environ={})
    plan = plan_chain(load_chain(args.chain), cfg, PromptRegistry(cfg.prompts.dir))
    serving = cfg.inference.providers["serving"]
    assert {s.provider for s in plan.steps} == {"serving"}
    assert (serving.type, serving.host, serving.token) == ("databricks", None, None)  # type: ignore[union-attr]
    assert {s.model for s in plan.steps} == {serving.endpoint}  # type: ignore[union-attr]


# --- the task fails when the run fails ---------------------------------------------------

# What a Databricks python_wheel_task does with the wheel: find the entry point by name
# in the distribution's metadata, set sys.argv, call it, drop what it returns.
_WHEEL_TASK = """
import sys
from importlib import metadata
package, entry, *params = sys.argv[1:]
sys.argv = [entry, *params]
(ep,) = [e for e in metadata.distribution(package).entry_points if e.name == entry]
assert ep.dist is not None and ep.dist.locate_file("").suffix == ".whl", ep.dist
import fmf_spark
assert ".whl" in fmf_spark.__file__, fmf_spark.__file__
ep.load()()
"""


def _run_wheel_task(wheel: Path, params: list[str]) -> subprocess.CompletedProcess[str]:
    (task,) = _wheel_tasks(Job.from_dict(b.resource("jobs", "fmf_run").raw))
    spec = task.python_wheel_task
    env = {**os.environ, "PYTHONPATH": str(wheel)}  # import fmf_spark from the wheel itself
    return subprocess.run(
        [sys.executable, "-c", _WHEEL_TASK, spec.package_name, spec.entry_point, *params],
        capture_output=True,
        text=True,
        env=env,
        cwd=wheel.parent,  # not the repository: a job's working directory is elsewhere
        timeout=300,
    )


def test_a_failed_run_fails_the_wheel_task(bundle_wheel: Path) -> None:
    params = _job_parameters("azure")
    params[-1] = str(ROOT / "chains" / "no_such_chain.yaml")
    proc = _run_wheel_task(bundle_wheel, params)
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: ") and "no_such_chain.yaml" in line


def test_a_good_command_passes_the_wheel_task(bundle_wheel: Path) -> None:
    params = _job_parameters("azure")
    global_options = params[: params.index("run")]
    proc = _run_wheel_task(bundle_wheel, [*global_options, "config", "validate"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        "config OK (profile: databricks; 1 connectors, 4 providers, 1 exporters)"
    )
