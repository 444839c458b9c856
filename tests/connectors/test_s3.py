"""The S3 connector against a moto server: >1,000 keys, SSE, streamed reads, error rows."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from fmf_spark.config.models import FmfConfig
from fmf_spark.connectors import get_connector
from fmf_spark.connectors.s3 import S3Connector
from fmf_spark.errors import ConnectorError
from fmf_spark.schemas import FILES_SCHEMA


def _s3(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


def _config(endpoint: str, bucket: str, **extra) -> FmfConfig:
    spec = {
        "type": "s3",
        "bucket": bucket,
        "prefix": "in",
        "endpoint_url": endpoint,
        "region": "us-east-1",
        "max_file_bytes": 64,
        **extra,
    }
    return FmfConfig.model_validate({"connectors": {"lake": spec}})


@pytest.fixture(scope="module")
def bucket(moto_endpoint: str) -> str:
    name = f"fmf-{uuid.uuid4().hex[:8]}"
    s3 = _s3(moto_endpoint)
    s3.create_bucket(Bucket=name)
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda i: s3.put_object(
                    Bucket=name, Key=f"in/many/f{i:04d}.txt", Body=f"file {i}".encode()
                ),
                range(1005),
            )
        )
    s3.put_object(Bucket=name, Key="in/docs/a.md", Body=b"# a")
    s3.put_object(Bucket=name, Key="in/docs/big.md", Body=b"y" * 100)
    s3.put_object(Bucket=name, Key="in/docs/", Body=b"")  # a console-made "folder"
    s3.put_object(Bucket=name, Key="other/x.md", Body=b"outside the prefix")
    return name


def test_lists_more_than_one_page(moto_endpoint: str, bucket: str) -> None:
    conn = get_connector("lake", _config(moto_endpoint, bucket))
    conn.precheck()
    paths = [i.ref.path for i in conn.list("many/*.txt")]
    assert len(paths) == 1005
    assert paths[0] == "many/f0000.txt" and paths[-1] == "many/f1004.txt"
    everything = {i.ref.path for i in conn.list()}
    assert everything == set(paths) | {"docs/a.md", "docs/big.md"}


def test_to_dataframe_streams_and_flags_big_objects(spark, moto_endpoint: str, bucket: str) -> None:
    conn = get_connector("lake", _config(moto_endpoint, bucket))
    infos = {i.ref.path: i for i in conn.list("docs/*.md")}
    df = conn.to_dataframe(spark, "docs/*.md")
    expected = spark.createDataFrame(
        [
            (
                "lake",
                f"s3://{bucket}/in/docs/a.md",
                "docs/a.md",
                3,
                infos["docs/a.md"].modified,
                infos["docs/a.md"].etag,
                b"# a",
                "ok",
                None,
            ),
            (
                "lake",
                f"s3://{bucket}/in/docs/big.md",
                "docs/big.md",
                100,
                infos["docs/big.md"].modified,
                infos["docs/big.md"].etag,
                None,
                "error",
                ("connector.file_too_large", "docs/big.md is larger than max_file_bytes=64", False),
            ),
        ],
        FILES_SCHEMA,
    )
    assertDataFrameEqual(df, expected)
    many = conn.to_dataframe(spark, "many/f00[0-4]*.txt")
    counts = many.groupBy("status").agg(F.count("*").alias("n"), F.sum("size").alias("bytes"))
    assert [tuple(r) for r in counts.collect()] == [
        ("ok", 50, sum(len(f"file {i}") for i in range(50)))
    ]


def test_sse_kms_write_and_transparent_read(moto_endpoint: str, bucket: str) -> None:
    kms = boto3.client("kms", endpoint_url=moto_endpoint, region_name="us-east-1")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    conn = get_connector("lake", _config(moto_endpoint, bucket, sse="aws:kms", kms_key_id=key_id))
    assert isinstance(conn, S3Connector)
    uri = conn.put("enc/secret.md", b"encrypted at rest")
    head = _s3(moto_endpoint).head_object(Bucket=bucket, Key="in/enc/secret.md")
    assert uri == f"s3://{bucket}/in/enc/secret.md"
    assert head["ServerSideEncryption"] == "aws:kms"
    assert key_id in head["SSEKMSKeyId"]
    aes = get_connector("lake", _config(moto_endpoint, bucket, sse="AES256"))
    aes.put("enc/aes.md", b"s3 managed")  # type: ignore[attr-defined]
    head = _s3(moto_endpoint).head_object(Bucket=bucket, Key="in/enc/aes.md")
    assert head["ServerSideEncryption"] == "AES256"
    info = next(iter(conn.list("enc/secret.md")))
    with conn.open(info.ref) as stream:
        assert stream.read(9) == b"encrypted"
        assert stream.read() == b" at rest"


def test_missing_bucket_and_key(moto_endpoint: str) -> None:
    conn = get_connector("lake", _config(moto_endpoint, "no-such-bucket"))
    with pytest.raises(ConnectorError) as err:
        conn.precheck()
    assert err.value.code == "connector.not_found"
    assert "NoSuchBucket" in err.value.message
