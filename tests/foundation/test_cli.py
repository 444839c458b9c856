"""The fmf command: help, one-line errors, config show/validate."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fmf_spark.cli import main

ROOT = Path(__file__).resolve().parents[2]
CONF = str(ROOT / "conf" / "fmf.yaml")


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for command in ("config", "keys"):
        assert command in out


def test_command_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["keys", "test", "--help"])
    assert "resolve every logical secret name" in capsys.readouterr().out


def test_config_validate_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", CONF, "config", "validate"]) == 0
    assert "config OK (profile: local" in capsys.readouterr().out


def test_options_after_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            ["config", "show", "--config", CONF, "--profile", "emr", "--set", "spark.app_name=late"]
        )
        == 0
    )
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["profile"] == "emr"
    assert shown["spark"]["app_name"] == "late"
    assert shown["artefacts"]["root"].startswith("s3://")


def test_invalid_config_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--config", CONF, "--set", "observability.log_format=xml", "config", "validate"])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: config.invalid: invalid configuration (1 problem):")
    assert "observability.log_format" in lines[0] and "'human' or 'json'" in lines[0]
    assert "Traceback" not in captured.err


def test_debug_adds_the_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--debug", "--config", CONF, "--profile", "nope", "config", "validate"])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" in err and "profile: 'nope' is not defined" in err


def test_missing_config_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["--config", str(tmp_path / "absent.yaml"), "config", "validate"])
    err = capsys.readouterr().err
    assert code == 2
    assert "cannot read config file" in err and "hint: pass --config" in err
