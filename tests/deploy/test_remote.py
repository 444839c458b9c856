"""``--config s3://...`` and ``prompts.dir: s3://...`` (moto S3); a remote prompt folder is
read through a local copy."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
import yaml

from fmf_spark.config import load_config
from fmf_spark.errors import ConfigError, PromptError
from fmf_spark.prompts.registry import PromptRegistry
from tests.deploy.helpers import ROOT


@pytest.fixture
def bucket(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    # boto3's default client, as the product builds it, finds the endpoint here
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_endpoint)
    s3 = boto3.client("s3", endpoint_url=moto_endpoint)
    name = "fmf-remote-conf"
    if name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=name)
    s3.upload_file(str(ROOT / "conf" / "fmf.yaml"), name, "conf/fmf.yaml")
    for path in (ROOT / "prompts").iterdir():
        s3.upload_file(str(path), name, f"prompts/{path.name}")
    s3.put_object(Bucket=name, Key="prompts/old/ignored.yaml", Body=b"not: [a prompt")
    return name


def _as_in(bucket: str, cfg: object) -> dict:
    """The local config's values as they read from the bucket: every path under the
    repository (its base_dir) is the same path under the bucket."""
    dumped = yaml.safe_dump(cfg.model_dump(mode="json"))  # type: ignore[attr-defined]
    return yaml.safe_load(dumped.replace(str(ROOT), f"s3://{bucket}"))


def test_config_from_s3_equals_the_local_file(bucket: str) -> None:
    local = load_config(ROOT / "conf" / "fmf.yaml", profile="emr", environ={})
    remote = load_config(f"s3://{bucket}/conf/fmf.yaml", profile="emr", environ={})
    # relative paths resolve against the config's folder, wherever it is
    assert remote.base_dir == f"s3://{bucket}"
    assert remote.model_dump(mode="json") == _as_in(bucket, local)


def test_config_from_s3_through_fmf_config(bucket: str) -> None:
    remote = load_config(environ={"FMF_CONFIG": f"s3://{bucket}/conf/fmf.yaml"})
    local = load_config(ROOT / "conf" / "fmf.yaml", environ={})
    assert remote.model_dump(mode="json") == _as_in(bucket, local)


def test_missing_config_object_is_one_clear_error(bucket: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(f"s3://{bucket}/conf/nope.yaml", environ={})
    line = caught.value.one_line()
    assert line.startswith(f"config.invalid: cannot read s3://{bucket}/conf/nope.yaml: ")
    assert "404" in line or "NoSuchKey" in line or "Not Found" in line


def test_prompts_from_s3_resolve_like_the_local_folder(bucket: str) -> None:
    local = PromptRegistry(ROOT / "prompts")
    remote = PromptRegistry(f"s3://{bucket}/prompts")
    assert remote.ids() == local.ids()
    assert remote.registered() == local.registered()
    for prompt_id, label in local.all_versions():
        ref = f"{prompt_id}#{label}"
        assert remote.get(ref).content_hash == local.get(ref).content_hash
        assert remote.is_registered(remote.get(ref))
    assert remote.location == f"s3://{bucket}/prompts"


def test_s3_prompts_are_read_only(bucket: str) -> None:
    remote = PromptRegistry(f"s3://{bucket}/prompts")
    with pytest.raises(PromptError, match="read-only"):
        remote.register("summarize_chunk#1")


def test_empty_prompt_prefix_is_an_error_not_an_empty_registry(bucket: str) -> None:
    with pytest.raises(PromptError, match="no file matching"):
        PromptRegistry(f"s3://{bucket}/promts")


def test_remote_copies_go_under_tmpdir(
    bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    registry = PromptRegistry(f"s3://{bucket}/prompts")
    assert registry.root.parent == tmp_path
    assert sorted(p.name for p in registry.root.iterdir()) == sorted(
        p.name for p in (ROOT / "prompts").iterdir()
    )
