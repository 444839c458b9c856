"""Validation errors name the key path, the bad value and what is allowed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from fmf_spark.config import load_config
from fmf_spark.errors import ConfigError


def _error(tmp_path: Path, data: dict, **kwargs) -> str:
    path = tmp_path / "fmf.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        load_config(path, environ=kwargs.pop("environ", {}), **kwargs)
    return info.value.message


def test_wrong_literal_names_path_value_and_allowed(tmp_path: Path) -> None:
    msg = _error(tmp_path, {"observability": {"log_format": "xml"}})
    assert "observability.log_format: Input should be 'human' or 'json' (got 'xml')" in msg


def test_typo_is_an_error_listing_allowed_keys(tmp_path: Path) -> None:
    msg = _error(tmp_path, {"spark": {"shufle_partitions": 4}})
    assert (
        "spark.shufle_partitions: unknown key; allowed keys: app_name, class_archive, conf, master, remote, shuffle_partitions"
        in msg
    )


def test_typo_inside_a_named_connector(tmp_path: Path) -> None:
    msg = _error(tmp_path, {"connectors": {"docs": {"type": "local", "root": ".", "rooot": "x"}}})
    assert "connectors.docs.rooot: unknown key; allowed keys:" in msg
    assert "root" in msg.split("allowed keys:")[1]


def test_unknown_connector_type(tmp_path: Path) -> None:
    msg = _error(tmp_path, {"connectors": {"docs": {"type": "ftp", "root": "."}}})
    assert "connectors.docs" in msg
    assert "'ftp'" in msg and "'local'" in msg and "'s3'" in msg and "'sharepoint'" in msg


def test_bad_number_from_environment(tmp_path: Path) -> None:
    msg = _error(tmp_path, {}, environ={"FMF__SPARK__SHUFFLE_PARTITIONS": "0"})
    assert "spark.shuffle_partitions: Input should be greater than 0 (got 0)" in msg


def test_bad_value_from_set(tmp_path: Path) -> None:
    msg = _error(tmp_path, {}, overrides=["processing.chunking.strategy=sentences"])
    assert "processing.chunking.strategy" in msg
    assert "'tokens', 'markdown' or 'page'" in msg
    assert "(got 'sentences')" in msg


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    msg = _error(
        tmp_path, {"spark": {"master": 1, "oops": 2}, "observability": {"log_level": "LOUD"}}
    )
    assert msg.startswith("invalid configuration (3 problems):")


def test_literal_secret_value_is_refused(tmp_path: Path) -> None:
    data = {
        "inference": {
            "providers": {
                "az": {
                    "type": "azure_openai",
                    "endpoint": "https://x",
                    "deployment": "d",
                    "api_key": "sk-live-123",
                }
            }
        }
    }
    msg = _error(tmp_path, data)
    assert "inference.providers.az.api_key" in msg
    assert "never a literal value" in msg


def test_undeclared_secret_name(tmp_path: Path) -> None:
    data = {
        "inference": {
            "providers": {
                "az": {
                    "type": "azure_openai",
                    "endpoint": "https://x",
                    "deployment": "d",
                    "api_key": {"secret": "nope"},
                }
            }
        }
    }
    msg = _error(tmp_path, data)
    assert (
        "inference.providers.az.api_key refers to secret 'nope', which is not in secrets.names"
        in msg
    )


def test_set_without_equals(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=re.escape("must look like a.b.c=value")):
        load_config(None, environ={}, overrides=["spark.master"])


def test_set_below_a_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=re.escape("'spark.master' is a value, not a section")):
        load_config(None, environ={}, overrides=["spark.master=local", "spark.master.x=1"])
