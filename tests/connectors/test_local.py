"""The local connector, the glob rules and the files DataFrame (bytes read on executors)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from pyspark.testing import assertDataFrameEqual

from fmf_spark.config.models import FmfConfig
from fmf_spark.connectors import get_connector, glob_match, register_connector
from fmf_spark.connectors.base import PathFilter
from fmf_spark.connectors.local import LocalConnectorConfig
from fmf_spark.errors import ConnectorError
from fmf_spark.schemas import FILES_SCHEMA


@pytest.mark.parametrize(
    ("path", "pattern", "expected"),
    [
        ("a.md", "**/*.md", True),
        ("x/y/a.md", "**/*.md", True),
        ("x/y/a.md", "*.md", True),  # no slash: matches the name at any depth
        ("x/y/a.md", "x/*.md", False),
        ("x/a.md", "x/*.md", True),
        ("x/y/a.txt", "x/**", True),
        ("x/.hidden", "**/.*", True),
        ("report-2024.csv", "report-20[0-9][0-9].csv", True),
    ],
)
def test_glob_match(path: str, pattern: str, expected: bool) -> None:
    assert glob_match(path, pattern) is expected


def test_path_filter_prefix() -> None:
    assert PathFilter(["**/*"], [], ["docs/2024/*.md", "docs/2025/**"]).prefix() == "docs/"
    assert PathFilter(["**/*"], [], ["*.md"]).prefix() == ""


def _config(root: Path, max_bytes: int = 1000) -> FmfConfig:
    return FmfConfig.model_validate(
        {
            "connectors": {
                "docs": {
                    "type": "local",
                    "root": str(root),
                    "exclude": ["**/.*"],
                    "max_file_bytes": max_bytes,
                }
            }
        }
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.md").write_text("# A\n")
    (tmp_path / "sub" / "b.txt").write_text("bee")
    (tmp_path / "sub" / "big.txt").write_bytes(b"x" * 2000)
    (tmp_path / ".secret").write_text("hidden")
    return tmp_path


def test_list_include_exclude_selector(tree: Path) -> None:
    conn = get_connector("docs", _config(tree))
    assert [i.ref.path for i in conn.list()] == ["a.md", "sub/b.txt", "sub/big.txt"]
    assert [i.ref.path for i in conn.list("**/*.txt")] == ["sub/b.txt", "sub/big.txt"]
    info = next(iter(conn.list("*.md")))
    assert info.size == 4
    assert info.ref.uri == (tree / "a.md").as_uri()
    with conn.open(info.ref) as stream:
        assert stream.read() == b"# A\n"


def test_to_dataframe_reads_on_executors_and_flags_big_files(spark, tree: Path) -> None:
    conn = get_connector("docs", _config(tree))
    df = conn.to_dataframe(spark)
    assert df.schema == FILES_SCHEMA
    expected_rows = []
    for info in conn.list():
        big = info.ref.path == "sub/big.txt"
        expected_rows.append(
            (
                "docs",
                info.ref.uri,
                info.ref.path,
                info.size,
                info.modified,
                info.etag,
                None if big else (tree / info.ref.path).read_bytes(),
                "error" if big else "ok",
                (
                    (
                        "connector.file_too_large",
                        "sub/big.txt is larger than max_file_bytes=1000",
                        False,
                    )
                    if big
                    else None
                ),
            )
        )
    assertDataFrameEqual(df, spark.createDataFrame(expected_rows, FILES_SCHEMA))


def test_empty_listing_and_missing_root(spark, tmp_path: Path) -> None:
    conn = get_connector("docs", _config(tmp_path))
    assert conn.to_dataframe(spark, "**/*.nothing").count() == 0
    missing = get_connector("docs", _config(tmp_path / "nope"))
    with pytest.raises(ConnectorError) as err:
        missing.precheck()
    assert err.value.code == "connector.not_found"


def test_registry_rejects_duplicates_and_unknown_names(tmp_path: Path) -> None:
    get_connector("docs", _config(tmp_path))  # loads the built-ins
    with pytest.raises(ValueError, match="already registered"):
        register_connector("local", LocalConnectorConfig, lambda n, c, r: None)  # type: ignore[arg-type,return-value]
    with pytest.raises(ConnectorError, match="no connector named 'other'"):
        get_connector("other", _config(tmp_path))


def test_modified_is_utc(tree: Path) -> None:
    info = next(iter(get_connector("docs", _config(tree)).list("a.md")))
    assert info.modified is not None and info.modified.tzinfo == timezone.utc
    assert info.modified <= datetime.now(timezone.utc)
