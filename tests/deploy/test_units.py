"""The small decisions of the AWS entry points, without a JVM: launch detection, jars,
the Lambda handler's event parsing, selection and environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from fmf_spark.connectors.base import PathFilter
from fmf_spark.connectors.s3 import S3ConnectorConfig
from fmf_spark.errors import ConfigError
from fmf_spark.jobs.lambda_handler import (
    S3Object,
    literal_glob,
    prepare_environment,
    s3_objects,
    selection,
)
from fmf_spark.spark import brings_own_jars, expand_jars, platform_launch


@pytest.fixture
def no_context(monkeypatch: pytest.MonkeyPatch) -> None:
    # the test session's own SparkContext would count as "launched"
    from pyspark import SparkContext

    monkeypatch.setattr(SparkContext, "_active_spark_context", None)


@pytest.mark.parametrize(
    ("environ", "reason"),
    [
        ({}, None),
        ({"PYSPARK_SUBMIT_ARGS": "--driver-memory 2g pyspark-shell"}, None),
        ({"PYSPARK_GATEWAY_PORT": "41234"}, "started by spark-submit"),
        (
            {"PYSPARK_SUBMIT_ARGS": "--master yarn pyspark-shell"},
            "PYSPARK_SUBMIT_ARGS names a master",
        ),
        (
            {"PYSPARK_SUBMIT_ARGS": "--master=local[2] pyspark-shell"},
            "PYSPARK_SUBMIT_ARGS names a master",
        ),
    ],
)
def test_platform_launch_reads_the_launch(
    no_context: None, environ: dict, reason: str | None
) -> None:
    assert platform_launch(environ) == reason


def test_spark_defaults_with_a_master_is_a_launched_platform(
    no_context: None, tmp_path: Path
) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    assert platform_launch({"SPARK_HOME": str(tmp_path)}) is None  # no defaults file
    (conf / "spark-defaults.conf").write_text("# spark.master local\nspark.ui.enabled false\n")
    assert platform_launch({"SPARK_HOME": str(tmp_path)}) is None  # no master in it
    (conf / "spark-defaults.conf").write_text("spark.master   yarn\n")
    reason = f"{conf / 'spark-defaults.conf'} sets spark.master"
    assert platform_launch({"SPARK_HOME": str(tmp_path)}) == reason
    assert platform_launch({"SPARK_CONF_DIR": str(conf)}) == reason


def test_a_running_context_is_a_launched_platform(spark) -> None:
    assert platform_launch({}) == "a SparkContext is running"


@pytest.mark.parametrize(
    ("conf", "own"),
    [
        ({}, False),
        ({"spark.jars": ""}, False),
        ({"spark.jars": "/opt/fmf/jars/*.jar"}, True),
        ({"spark.jars.packages": "io.delta:delta-spark_4.2_2.13:4.4.0"}, True),
    ],
)
def test_own_jars(conf: dict[str, str], own: bool) -> None:
    assert brings_own_jars(conf) is own


def test_expand_jars_resolves_globs_and_refuses_an_empty_one(tmp_path: Path) -> None:
    for name in ("b-1.0.jar", "a-2.0.jar", "notes.txt"):
        (tmp_path / name).write_text("")
    given = f"{tmp_path}/*.jar, /opt/other.jar"
    assert expand_jars(given) == f"{tmp_path}/a-2.0.jar,{tmp_path}/b-1.0.jar,/opt/other.jar"
    with pytest.raises(ConfigError, match=r"no file matches /nowhere/\*\.jar"):
        expand_jars("/nowhere/*.jar")


def _record(key: str, bucket: str = "b", event: str = "ObjectCreated:Put") -> dict:
    return {"eventSource": "aws:s3", "eventName": event,
            "s3": {"bucket": {"name": bucket}, "object": {"key": key}}}  # fmt: skip


def test_s3_objects_decode_keys_and_keep_created_objects_once() -> None:
    event = {
        "Records": [
            _record("incoming/q3+notes%5B1%5D.txt"),
            _record("incoming/q3+notes%5B1%5D.txt"),
            _record("incoming/gone.txt", event="ObjectRemoved:Delete"),
            _record("incoming/folder/"),
            {"eventSource": "aws:sqs"},
        ]
    }
    assert s3_objects(event) == [S3Object("b", "incoming/q3 notes[1].txt")]
    assert s3_objects({}) == []


@pytest.mark.parametrize("name", ["a.txt", "we[ir]d*name?.md", "sub/x y.pdf", "[x].md"])
def test_literal_glob_matches_only_the_path(name: str) -> None:
    keep = PathFilter([literal_glob(name)], [])
    assert keep(name)
    assert not keep(name.replace(".", "_"))
    assert not keep("other/" + name) or "/" not in name


def test_selection_narrows_the_connector_and_reports_the_rest() -> None:
    config = S3ConnectorConfig(bucket="b", prefix="incoming", exclude=["**/.*"])
    objects = [
        S3Object("b", "incoming/a*.md"),
        S3Object("b", "elsewhere/c.md"),
        S3Object("other", "incoming/d.md"),
    ]
    settings, ignored = selection(objects, "docs", config)
    assert settings == [
        'connectors.docs.include=["a[*].md"]',
        'connectors.docs.exclude=["**/.*", "*/**"]',
    ]
    assert ignored == objects[1:]
    nested, _ = selection([S3Object("b", "incoming/x/y.md")], "docs", config)
    assert nested == ['connectors.docs.include=["x/y.md"]']
    assert selection(objects[1:], "docs", config) == ([], objects[1:])


def test_top_level_selection_keeps_subfolders_out(tmp_path: Path) -> None:
    # the settings, applied as the CLI applies --set, select exactly the one object
    from fmf_spark.config.loader import apply_overrides

    config = S3ConnectorConfig(bucket="b", prefix="in/")
    settings, _ = selection([S3Object("b", "in/a.md")], "docs", config)
    data = apply_overrides({"connectors": {"docs": config.model_dump()}}, settings)
    docs = data["connectors"]["docs"]
    keep = PathFilter(docs["include"], docs["exclude"])
    assert [p for p in ("a.md", "sub/a.md", "b.md") if keep(p)] == ["a.md"]


def test_prepare_environment_moves_an_unusable_home(tmp_path: Path) -> None:
    scratch = str(tmp_path / "scratch")
    # root may write anywhere, so a missing folder stands for Lambda's read-only HOME
    for home in (str(tmp_path / "missing"), ""):
        environ = {"HOME": home, "TMPDIR": scratch}
        assert prepare_environment(environ) == scratch
        assert environ["HOME"] == scratch
    writable = {"HOME": str(tmp_path), "TMPDIR": scratch}
    prepare_environment(writable)
    assert writable["HOME"] == str(tmp_path)
