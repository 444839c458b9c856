"""Precedence of configuration sources, one test per adjacent pair and one end to end:
file < profile < environment (FMF__A__B) < CLI --set."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fmf_spark.config import load_config
from fmf_spark.errors import ConfigError

BASE = {
    "spark": {"shuffle_partitions": 3, "app_name": "from-file"},
    "observability": {"log_level": "INFO"},
    "profiles": {
        "local": {"spark": {"shuffle_partitions": 5}},
        "databricks": {"observability": {"log_format": "json"}},
    },
}


@pytest.fixture
def cfg_file(tmp_path: Path) -> Path:
    path = tmp_path / "fmf.yaml"
    path.write_text(yaml.safe_dump(BASE))
    return path


def test_file_alone(cfg_file: Path) -> None:
    cfg = load_config(cfg_file, environ={})
    assert cfg.spark.shuffle_partitions == 3
    assert cfg.profile is None


def test_profile_beats_file(cfg_file: Path) -> None:
    cfg = load_config(cfg_file, profile="local", environ={})
    assert cfg.spark.shuffle_partitions == 5
    assert cfg.spark.app_name == "from-file"  # untouched keys keep the file's value
    assert cfg.profile == "local"


def test_env_beats_profile(cfg_file: Path) -> None:
    env = {"FMF__SPARK__SHUFFLE_PARTITIONS": "7"}
    cfg = load_config(cfg_file, profile="local", environ=env)
    assert cfg.spark.shuffle_partitions == 7


def test_set_beats_env(cfg_file: Path) -> None:
    env = {"FMF__SPARK__SHUFFLE_PARTITIONS": "7"}
    cfg = load_config(
        cfg_file, profile="local", environ=env, overrides=["spark.shuffle_partitions=9"]
    )
    assert cfg.spark.shuffle_partitions == 9


def test_env_beats_file_without_profile(cfg_file: Path) -> None:
    cfg = load_config(cfg_file, environ={"FMF__SPARK__APP_NAME": "from-env"})
    assert cfg.spark.app_name == "from-env"


def test_profile_from_environment(cfg_file: Path) -> None:
    cfg = load_config(cfg_file, environ={"FMF_PROFILE": "databricks"})
    assert cfg.profile == "databricks"
    assert cfg.observability.log_format == "json"


def test_env_creates_nested_sections(cfg_file: Path) -> None:
    env = {
        "FMF__CONNECTORS__DOCS__TYPE": "local",
        "FMF__CONNECTORS__DOCS__ROOT": "/data/in",
        "FMF__CONNECTORS__DOCS__MAX_FILE_BYTES": "1024",
    }
    cfg = load_config(cfg_file, environ=env)
    docs = cfg.connectors["docs"]
    assert (docs.type, docs.root, docs.max_file_bytes) == ("local", "/data/in", 1024)


def test_set_parses_yaml_scalars_and_lists(cfg_file: Path) -> None:
    cfg = load_config(
        cfg_file,
        environ={},
        overrides=["observability.mlflow.enabled=false", "processing.ocr.languages=eng+deu"],
    )
    assert cfg.observability.mlflow.enabled is False
    assert cfg.processing.ocr.languages == "eng+deu"


def test_unknown_profile_names_the_allowed_ones(cfg_file: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(cfg_file, profile="prod", environ={})
    assert "profile: 'prod' is not defined; allowed: databricks, local" in info.value.message


def test_shipped_config_has_the_five_profiles() -> None:
    root = Path(__file__).resolve().parents[2]
    for name in ("local", "databricks", "emr", "aws_batch", "aws_lambda"):
        assert load_config(root / "conf" / "fmf.yaml", profile=name, environ={}).profile == name


def test_spark_conf_keys_keep_their_dots_and_case(cfg_file: Path) -> None:
    """Spark's keys hold dots and are case-sensitive: below ``spark.conf`` the rest of a
    ``--set`` key, or of a variable's name, is one key."""
    env = {
        "FMF__SPARK__CONF__SPARK.DRIVER.MEMORY": "3g",  # all capitals: lower-cased
        "FMF__SPARK__CONF__spark.sql.adaptive.coalescePartitions.enabled": "false",
    }
    cfg = load_config(
        cfg_file,
        environ=env,
        overrides=["spark.conf.spark.eventLog.enabled=true", "spark.conf.spark.ui.port=4050"],
    )
    assert cfg.spark.conf == {
        "spark.driver.memory": "3g",
        "spark.sql.adaptive.coalescePartitions.enabled": "false",
        "spark.eventLog.enabled": "true",
        "spark.ui.port": "4050",
    }
