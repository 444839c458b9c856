"""DynamoDB sink against a moto server (and a proxy that injects UnprocessedItems)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import boto3
import pytest
from boto3.dynamodb.types import TypeDeserializer

from fmf_spark.errors import ExportError
from fmf_spark.exporters import export_table
from fmf_spark.exporters.dynamodb import item_size, to_item
from fmf_spark.schemas import OUTPUTS_SCHEMA
from tests.exporters.conftest import N_FILES, N_ROWS, output_row
from tests.exporters.dynamo_proxy import UnprocessedInjector, dynamo_fault_proxy


@pytest.fixture
def table(moto_endpoint):
    client = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1")
    name = f"fmf-{uuid.uuid4().hex[:10]}"
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "request_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "request_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return client, name


def _scan(client, name):
    deser = TypeDeserializer()
    items = []
    for page in client.get_paginator("scan").paginate(TableName=name):
        items.extend({k: deser.deserialize(v) for k, v in it.items()} for it in page["Items"])
    return sorted(items, key=lambda r: r["request_id"])


def _expected(rows):
    names = OUTPUTS_SCHEMA.fieldNames()
    out = []
    for row in rows:
        rec = dict(zip(names, row, strict=True))
        if rec["error"] is not None:
            rec["error"] = dict(zip(["code", "message", "retryable"], rec["error"], strict=True))
        out.append(to_item(rec))

    # numbers come back from DynamoDB as Decimal
    def dec(v):
        if isinstance(v, bool) or not isinstance(v, int | float | Decimal):
            return {k: dec(x) for k, x in v.items()} if isinstance(v, dict) else v
        return Decimal(str(v))

    return sorted(({k: dec(v) for k, v in r.items()} for r in out), key=lambda r: r["request_id"])


def _sink(name, endpoint, **extra):
    return {
        "type": "dynamodb",
        "table": name,
        "endpoint_url": endpoint,
        "region": "us-east-1",
        "backoff_base_s": 0.001,
        "backoff_max_s": 0.01,
        **extra,
    }


def test_kill_after_batch_2_then_rerun_holds_each_item_once(
    spark, make_outputs, make_config, moto_endpoint, table, kill_process_after_batch, expected_rows
):
    """The export process is killed after batch 2 was written; the replayed batch
    re-puts the same keys."""
    client, name = table
    inp = make_outputs()
    cfg = make_config(_sink(name, moto_endpoint))
    kill_process_after_batch(cfg, inp, 2)
    rerun = export_table(spark, cfg, "sink", inp, run_id="run1")
    assert rerun.batches == 3
    assert _scan(client, name) == _expected(expected_rows)
    # the cost fields are floats in Spark and Decimal in DynamoDB
    assert any(isinstance(it.get("cost_usd"), Decimal) for it in _scan(client, name))

    # the same run again from a fresh checkpoint, in one batch this time: same items
    one_batch = make_config(_sink(name, moto_endpoint, max_files_per_trigger=N_FILES))
    again = export_table(spark, one_batch, "sink", inp, run_id="run1", checkpoint_root=inp + "_ck2")
    assert (again.batches, again.rows_written) == (1, N_ROWS)
    assert _scan(client, name) == _expected(expected_rows)


def test_40_percent_unprocessed_items_all_land_and_retries_are_counted(
    spark, make_outputs, make_config, moto_endpoint, table, expected_rows
):
    client, name = table
    inp = make_outputs()
    injector = UnprocessedInjector(fraction=0.4, times=2)
    with dynamo_fault_proxy(moto_endpoint, injector) as proxy:
        cfg = make_config(_sink(name, proxy))
        result = export_table(spark, cfg, "sink", inp, run_id="run1")
    assert 0.25 * N_ROWS <= injector.dropped / 2 <= 0.55 * N_ROWS  # ~40% of items, twice each
    assert (result.rows_written, result.rows_failed) == (N_ROWS, 0)
    assert result.retries >= 2 * result.batches  # every batch had items left over twice
    assert _scan(client, name) == _expected(expected_rows)


def test_items_still_unprocessed_after_max_retries_become_row_failures(
    spark, make_outputs, make_config, moto_endpoint, table, spark_errors_reader
):
    client, name = table
    inp = make_outputs(files=1)
    injector = UnprocessedInjector(fraction=0.4, times=100)
    with dynamo_fault_proxy(moto_endpoint, injector) as proxy:
        cfg = make_config(_sink(name, proxy, max_retries=2))
        result = export_table(spark, cfg, "sink", inp, run_id="run1")
    stored = len(_scan(client, name))
    assert result.rows_failed == N_ROWS - stored > 0
    assert result.rows_written == stored
    errors = spark_errors_reader(result.errors_path)
    assert errors.count() == result.rows_failed
    assert {r["error"]["code"] for r in errors.collect()} == {"export.throttled"}


def test_duplicate_keys_and_oversized_items(
    spark, make_outputs, make_config, moto_endpoint, table, spark_errors_reader
):
    client, name = table
    big = output_row(1, text="x" * (401 * 1024))
    rows = [output_row(0), output_row(0, latency=5000), big, output_row(2)]
    inp = make_outputs(rows=rows, files=1)
    cfg = make_config(_sink(name, moto_endpoint, order_column="latency_ms"))
    result = export_table(spark, cfg, "sink", inp, run_id="run1")
    assert (result.rows_written, result.rows_failed) == (2, 1)
    assert _scan(client, name) == _expected([output_row(0, latency=5000), output_row(2)])
    errors = spark_errors_reader(result.errors_path).collect()
    assert [(e["key"], e["error"]["code"]) for e in errors] == [
        (f'{{"request_id": "{big[0]}"}}', "export.item_too_large")
    ]


def test_precheck_rejects_key_fields_that_are_not_the_table_key(
    spark, make_outputs, make_config, moto_endpoint, table
):
    _, name = table
    inp = make_outputs(files=1)
    cfg = make_config(_sink(name, moto_endpoint, key_fields=["doc_id"]))
    with pytest.raises(ExportError) as err:
        export_table(spark, cfg, "sink", inp, run_id="run1")
    assert err.value.code == "export.schema_mismatch"


def test_float_mapping_and_item_size():
    item = to_item({"a": 0.1, "b": float("nan"), "c": None, "d": {"x": 1.5, "y": None}, "e": True})
    assert item == {"a": Decimal("0.1"), "d": {"x": Decimal("1.5")}, "e": True}
    assert item_size({"k": "x" * 100}) == 101
