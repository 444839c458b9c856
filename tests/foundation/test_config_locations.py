"""Relative paths in the config resolve against the config file, wherever the command runs;
the config, prompts and chains load from local folders, ``s3://`` and ``abfss://``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from fmf_spark.chains.model import find_chain, load_chain
from fmf_spark.clients import adls
from fmf_spark.config import load_config
from fmf_spark.config.models import FmfConfig
from fmf_spark.errors import ConfigError, FmfError, PromptError
from fmf_spark.prompts.registry import PromptRegistry
from fmf_spark.storage import exists, list_files, read_text, write_text
from tests.servers.adls import AdlsState, adls_server, identity_env

ROOT = Path(__file__).resolve().parents[2]

CONFIG: dict[str, Any] = {
    "base_dir": "..",
    "artefacts": {"root": "out/artefacts"},
    "prompts": {"dir": "prompts"},
    "chains": {"dir": "chains"},
    "secrets": {"providers": {"env": {"type": "env", "dotenv": ".env"}}},
    "connectors": {
        "docs": {"type": "local", "root": "docs"},
        "abs": {"type": "local", "root": "/data/docs"},
    },
    "exporters": {
        "delta": {"type": "delta", "path": "out/exports", "checkpoint": "out/ckpt"},
        "table": {"type": "delta", "table": "main.fmf.outputs"},
        "fabric": {
            "type": "fabric",
            "path": "abfss://ws@onelake.dfs.fabric.microsoft.com/lh.Lakehouse/Tables/o",
        },
    },
}


def locations(cfg: FmfConfig) -> dict[str, Any]:
    """Every path-like value of the test config."""
    return {
        "base_dir": cfg.base_dir,
        "artefacts": cfg.artefacts.root,
        "prompts": cfg.prompts.dir,
        "chains": cfg.chains.dir,
        "dotenv": cfg.secrets.providers["env"].dotenv,  # type: ignore[union-attr]
        "docs": cfg.connectors["docs"].root,  # type: ignore[attr-defined]
        "abs": cfg.connectors["abs"].root,  # type: ignore[attr-defined]
        "delta": (cfg.exporters["delta"].path, cfg.exporters["delta"].checkpoint),  # type: ignore[attr-defined]
        "table": (cfg.exporters["table"].path, cfg.exporters["table"].table),  # type: ignore[attr-defined]
        "fabric": cfg.exporters["fabric"].path,  # type: ignore[attr-defined]
    }


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``<tmp>/project/conf/fmf.yaml``, with the working directory somewhere else."""
    (tmp_path / "project" / "conf").mkdir(parents=True)
    (tmp_path / "project" / "conf" / "fmf.yaml").write_text(yaml.safe_dump(CONFIG))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    return tmp_path / "project"


def test_file_paths_resolve_against_the_config_file_not_the_working_directory(
    project: Path,
) -> None:
    cfg = load_config(project / "conf" / "fmf.yaml", environ={})
    p = str(project)
    assert locations(cfg) == {
        "base_dir": p,
        "artefacts": f"{p}/out/artefacts",
        "prompts": f"{p}/prompts",
        "chains": f"{p}/chains",
        "dotenv": f"{p}/.env",
        "docs": f"{p}/docs",
        "abs": "/data/docs",
        "delta": (f"{p}/out/exports", f"{p}/out/ckpt"),
        "table": (None, "main.fmf.outputs"),
        "fabric": CONFIG["exporters"]["fabric"]["path"],
    }
    # a relative --config is relative to the working directory, and the same file
    relative = os.path.relpath(project / "conf" / "fmf.yaml")
    assert load_config(relative, environ={}) == cfg


def test_without_base_dir_paths_are_relative_to_the_config_folder(project: Path) -> None:
    cfg = load_config(project / "conf" / "fmf.yaml", environ={}, overrides=[])
    data = {k: v for k, v in CONFIG.items() if k != "base_dir"}
    (project / "conf" / "plain.yaml").write_text(yaml.safe_dump(data))
    plain = load_config(project / "conf" / "plain.yaml", environ={})
    assert plain.base_dir == str(project / "conf")
    assert plain.prompts.dir == str(project / "conf" / "prompts")
    assert cfg.prompts.dir == str(project / "prompts")


def test_command_line_and_environment_paths_are_relative_to_the_working_directory(
    project: Path,
) -> None:
    cwd = Path.cwd()
    cfg = load_config(
        project / "conf" / "fmf.yaml",
        environ={"FMF__ARTEFACTS__ROOT": "env-artefacts"},
        overrides=["connectors.docs.root=my-docs", "exporters.delta={type: delta, path: x}"],
    )
    assert cfg.artefacts.root == str(cwd / "env-artefacts")
    assert cfg.connectors["docs"].root == str(cwd / "my-docs")  # type: ignore[attr-defined]
    # a whole section given on the command line: everything in it
    assert cfg.exporters["delta"].path == str(cwd / "x")  # type: ignore[attr-defined]
    # what the command line did not touch still follows the file
    assert cfg.prompts.dir == str(project / "prompts")
    # base_dir itself, given on the command line
    moved = load_config(project / "conf" / "fmf.yaml", environ={}, overrides=["base_dir=."])
    assert moved.base_dir == str(cwd)
    assert moved.prompts.dir == str(cwd / "prompts")


def test_defaults_not_written_in_the_file_follow_it_too(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "cfg.yaml").write_text("project: x\n")
    monkeypatch.chdir("/")
    cfg = load_config(tmp_path / "cfg.yaml", environ={})
    assert (cfg.artefacts.root, cfg.prompts.dir) == (
        str(tmp_path / "artefacts"),
        str(tmp_path / "prompts"),
    )


def test_without_a_config_file_the_working_directory_is_the_base(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(environ={})
    assert (cfg.base_dir, cfg.prompts.dir) == (str(tmp_path), str(tmp_path / "prompts"))


def test_the_shipped_config_points_at_the_repository_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(ROOT / "conf" / "fmf.yaml", profile="local", environ={})
    assert cfg.base_dir == str(ROOT)
    assert cfg.prompts.dir == str(ROOT / "prompts")
    assert cfg.connectors["samples"].root == str(ROOT / "samples" / "docs")  # type: ignore[attr-defined]
    assert PromptRegistry(cfg.prompts.dir).ids() == PromptRegistry(ROOT / "prompts").ids()
    for name in ("sample.yaml", "chains/sample.yaml"):
        assert find_chain(name, cfg) == str(ROOT / "chains" / "sample.yaml")
    # a name found nowhere is returned as typed, and fails as such
    assert find_chain("nope.yaml", cfg) == "nope.yaml"


# --- s3:// -------------------------------------------------------------------------------


@pytest.fixture
def bucket(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    # boto3's default client, as the product builds it, finds the endpoint here
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_endpoint)
    s3 = boto3.client("s3", endpoint_url=moto_endpoint)
    name = "fmf-config-locations"
    if name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=name)
    s3.upload_file(str(ROOT / "conf" / "fmf.yaml"), name, "fmf/conf/fmf.yaml")
    s3.upload_file(str(ROOT / "chains" / "sample.yaml"), name, "fmf/chains/sample.yaml")
    for path in (ROOT / "prompts").iterdir():
        s3.upload_file(str(path), name, f"fmf/prompts/{path.name}")
    s3.put_object(Bucket=name, Key="fmf/prompts/old/ignored.yaml", Body=b"not: [a prompt")
    return name


def test_config_prompts_and_chain_from_s3(bucket: str) -> None:
    cfg = load_config(f"s3://{bucket}/fmf/conf/fmf.yaml", profile="local", environ={})
    base = f"s3://{bucket}/fmf"
    assert (cfg.base_dir, cfg.prompts.dir, cfg.artefacts.root) == (
        base,
        f"{base}/prompts",
        f"{base}/artefacts",
    )
    remote = PromptRegistry(cfg.prompts.dir)
    local = PromptRegistry(ROOT / "prompts")
    assert remote.read_only and remote.location == f"{base}/prompts"
    for prompt_id, label in local.all_versions():
        ref = f"{prompt_id}#{label}"
        assert remote.get(ref).content_hash == local.get(ref).content_hash
        assert remote.is_registered(remote.get(ref))
    assert remote.get("summarize_chunk#1").source == f"{base}/prompts/summarize_chunk.yaml"
    with pytest.raises(PromptError, match="read-only"):
        remote.register("summarize_chunk#1")
    chain = find_chain("sample.yaml", cfg)
    assert chain == f"{base}/chains/sample.yaml"
    assert load_chain(chain).text == (ROOT / "chains" / "sample.yaml").read_text()


# --- abfss:// (ADLS Gen2, OneLake) ---------------------------------------------------------


@pytest.fixture
def onelake(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, AdlsState]]:
    """A DFS-compatible server as OneLake; tokens from azure-identity's managed identity."""
    with adls_server() as (url, state):
        monkeypatch.setenv(adls.ENDPOINT_ENV, url)
        for key, value in identity_env(url).items():
            monkeypatch.setenv(key, value)
        for key in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET"):
            monkeypatch.delenv(key, raising=False)
        monkeypatch.setattr(adls, "_client", None)  # a client of this server's
        files = "fmf_lh.Lakehouse/Files/fmf"
        state.put("ws", f"{files}/conf/fmf.yaml", (ROOT / "conf" / "fmf.yaml").read_bytes())
        state.put(
            "ws", f"{files}/chains/sample.yaml", (ROOT / "chains" / "sample.yaml").read_bytes()
        )
        for path in (ROOT / "prompts").iterdir():
            state.put("ws", f"{files}/prompts/{path.name}", path.read_bytes())
        state.put("ws", f"{files}/prompts/old/ignored.yaml", b"not: [a prompt")
        yield f"abfss://ws@onelake.dfs.fabric.microsoft.com/{files}", state


def test_config_prompts_chain_and_run_yaml_on_onelake(
    onelake: tuple[str, AdlsState], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, state = onelake
    monkeypatch.chdir(tmp_path)  # no chains/sample.yaml here: the chain comes from OneLake
    cfg = load_config(f"{base}/conf/fmf.yaml", profile="local", environ={})
    assert (cfg.base_dir, cfg.prompts.dir, cfg.artefacts.root) == (
        base,
        f"{base}/prompts",
        f"{base}/artefacts",
    )
    remote = PromptRegistry(cfg.prompts.dir)
    local = PromptRegistry(ROOT / "prompts")
    assert [(i, remote.get(f"{i}#{v}").content_hash) for i, v in remote.all_versions()] == [
        (i, local.get(f"{i}#{v}").content_hash) for i, v in local.all_versions()
    ]
    chain = find_chain("chains/sample.yaml", cfg)
    assert chain == f"{base}/chains/sample.yaml"
    assert load_chain(chain).text == (ROOT / "chains" / "sample.yaml").read_text()

    # run.yaml: written (create, append, flush), read back, listed
    run_yaml = f"{cfg.artefacts.root}/r1/run.yaml"
    text = "run_id: r1\nstatus: ok\n" * 50
    write_text(run_yaml, text)
    assert read_text(run_yaml) == text
    assert exists(run_yaml) and not exists(f"{cfg.artefacts.root}/r1")
    assert list_files(f"{cfg.artefacts.root}/r1") == ["run.yaml"]
    assert list_files(f"{cfg.artefacts.root}/none") == []
    # the listing came in pages (2 entries a page) and the token was asked for once
    assert sum("continuation=" in r for r in state.requests) >= 2
    assert sum(r.startswith("GET /msi/token") for r in state.requests) == 1


def test_onelake_errors_are_one_line_with_the_service_code(
    onelake: tuple[str, AdlsState], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, _ = onelake
    with pytest.raises(ConfigError) as caught:
        load_config(f"{base}/conf/missing.yaml", environ={})
    assert caught.value.one_line().startswith(
        f"config.invalid: cannot read {base}/conf/missing.yaml: 404 PathNotFound"
    )
    # a token the service refuses: 401 and the role to grant, the token never shown
    client = adls.AdlsClient(lambda: ("wrong-token-1234", 2e9))
    with pytest.raises(FmfError) as refused:
        client.read(f"{base}/conf/fmf.yaml")
    line = refused.value.one_line()
    assert "401 InvalidAuthenticationInfo" in line and "Storage Blob Data" in line
    assert "wrong-token-1234" not in line + repr(client)
    # no identity at all: one line that says how to sign in
    for key in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "EnvironmentCredential")
    with pytest.raises(FmfError) as none:
        adls.AdlsClient().read(f"{base}/conf/fmf.yaml")
    assert none.value.code == "storage.auth"
    assert "az login" in (none.value.hint or "")
