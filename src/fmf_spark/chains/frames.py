"""Build each step's input DataFrame: one row per call, with its rendered ``messages``.

Everything here is Spark column expressions (joins, ``collect_list`` + ``array_sort``,
``concat``, ``to_json``): no Python UDF, nothing collected on the driver. The rows of a
step are:

- ``chunk`` scope: one per chunk (of the documents that parsed);
- ``document`` scope: one per document that has at least one chunk; chunk values and
  finer-grained step outputs are gathered in ``chunk_index`` order;
- ``all`` scope: exactly one row for the run.

A row whose referenced earlier step has no successful output (it failed, or was itself
skipped) is not sent to the model: it becomes an error row with code
``chain.upstream_failed``, so no row is ever dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from fmf_spark.chains.interpolation import Ref
from fmf_spark.errors import ChainError
from fmf_spark.prompts.template import Literal, parse_template

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

    from fmf_spark.chains.plan import StepPlan

UPSTREAM_FAILED = "chain.upstream_failed"
DOC_COLUMNS = (
    "doc_id",
    "path",
    "uri",
    "source",
    "content_type",
    "pages",
    "size",
    "text",
    "metadata",
)
CHUNK_COLUMNS = (
    "chunk_id",
    "chunk_index",
    "text",
    "char_start",
    "char_end",
    "token_count",
    "metadata",
)

OutputsOf = Callable[[str], "DataFrame"]


def step_frame(
    plan: StepPlan, documents: DataFrame, chunks: DataFrame, outputs_of: OutputsOf
) -> DataFrame:
    """The rows of one step: ``doc_id``, ``chunk_id``, ``messages``, ``upstream_ok``,
    ``upstream_error``.

    Args:
        plan: the validated step.
        documents: the run's documents (DOCUMENTS_SCHEMA); only ``status='ok'`` are used.
        chunks: the run's chunks (CHUNKS_SCHEMA).
        outputs_of: the outputs (OUTPUTS_SCHEMA) of an earlier step, by step id.
    """
    from pyspark.sql import functions as F

    frame = _StepFrame(plan, documents, chunks, outputs_of)
    for i, (ref, mode) in enumerate(plan.refs):
        frame.add(ref, mode, f"_v{i}", f"_ok{i}")
    upstream_ok, upstream_error = frame.upstream()
    return frame.base.select(
        "doc_id",
        "chunk_id",
        _messages(plan, frame.names).alias("messages"),
        upstream_ok.alias("upstream_ok"),
        F.when(~upstream_ok, upstream_error).alias("upstream_error"),
    )


class _StepFrame:
    """One step's rows, one column per reference (its value, and whether it is there)."""

    def __init__(
        self, plan: StepPlan, documents: DataFrame, chunks: DataFrame, outputs_of: OutputsOf
    ) -> None:
        from pyspark.sql import functions as F

        self.plan = plan
        self.documents = documents
        self.chunks = chunks
        self.outputs_of = outputs_of
        self.docs = documents.where(F.col("status") == "ok").select(
            "doc_id", F.struct(*[F.col(c) for c in DOC_COLUMNS]).alias("doc")
        )
        self.chk = chunks.select(
            "doc_id", "chunk_id", F.struct(*[F.col(c) for c in CHUNK_COLUMNS]).alias("chunk")
        )
        self.base = self._scope_rows()
        #: the column holding each reference's value
        self.names: dict[Ref, str] = {}
        #: the references to earlier steps, with the column saying they have an answer
        self.ok_columns: list[tuple[Ref, str]] = []

    def _scope_rows(self) -> DataFrame:
        """One row per chunk, per document with chunks, or one for the run."""
        from pyspark.sql import functions as F

        scope = self.plan.scope
        if scope == "chunk":
            return self.chk.join(self.docs, "doc_id", "left")
        if scope == "document":
            with_chunks = self.chunks.select("doc_id").distinct()
            return self.docs.join(with_chunks, "doc_id", "left_semi").withColumn(
                "chunk_id", F.lit(None).cast("string")
            )
        return self.documents.sparkSession.range(1).select(
            F.lit(None).cast("string").alias("doc_id"), F.lit(None).cast("string").alias("chunk_id")
        )

    def add(self, ref: Ref, mode: str, value: str, ok: str) -> None:
        """Add the column ``value`` holding ``ref`` (and ``ok`` for an earlier step's)."""
        from pyspark.sql import functions as F

        self.names[ref] = value
        if ref.kind in ("chunk", "doc") and mode == "direct":
            self.base = self.base.withColumn(value, _field(F.col(ref.kind), ref).cast("string"))
        elif ref.kind == "chunk":
            self.base = self.base.join(self._chunks_gathered(ref, value), "doc_id", "left")
        else:
            self.ok_columns.append((ref, ok))
            self._join_step(ref, mode, value, ok)

    def _chunks_gathered(self, ref: Ref, value: str) -> DataFrame:
        """A chunk field gathered per document, in chunk order."""
        from pyspark.sql import functions as F

        return self.chk.groupBy("doc_id").agg(
            _gather(
                [F.col("chunk.chunk_index"), F.col("chunk_id")],
                _field(F.col("chunk"), ref).cast("string"),
                F.lit(True),
                self.plan.step.separator,
            ).alias(value)
        )

    def _join_step(self, ref: Ref, mode: str, value: str, ok: str) -> None:
        """Join an earlier step's answers the way ``mode`` says."""
        from pyspark.sql import functions as F

        if ref.step is None:  # parse_ref always sets it for steps./all.; keeps mypy honest
            raise ChainError(f"{ref.text} names no step")
        out = self.outputs_of(ref.step)
        out_value, out_ok = _output_value(ref), F.col("status") == "ok"
        sep = self.plan.step.separator
        if mode == "join_chunk":
            side = out.select("chunk_id", out_value.alias(value), out_ok.alias(ok))
            self.base = self.base.join(side, "chunk_id", "left")
        elif mode == "join_doc":
            side = out.select("doc_id", out_value.alias(value), out_ok.alias(ok))
            self.base = self.base.join(side, "doc_id", "left")
        elif mode == "gather_chunks":
            ordered = out.join(self.chunks.select("chunk_id", "chunk_index"), "chunk_id", "left")
            side = ordered.groupBy("doc_id").agg(
                _gather([F.col("chunk_index"), F.col("chunk_id")], out_value, out_ok, sep).alias(
                    value
                ),
                F.max(out_ok.cast("int")).eqNullSafe(1).alias(ok),
            )
            self.base = self.base.join(side, "doc_id", "left")
        elif ref.kind == "steps":  # broadcast of an all-scope step's single output
            side = out.select(out_value.alias(value), out_ok.alias(ok)).limit(1)
            self.base = self.base.join(side, F.lit(True), "left")
        else:  # ${all.<step>...}: every output of the step, in document then chunk order
            side = self._all_outputs(out, out_value, value, ok)
            self.base = self.base.join(side, F.lit(True), "left")

    def _all_outputs(self, out: DataFrame, out_value: Column, value: str, ok: str) -> DataFrame:
        """Every answer of a step gathered in one row, in document then chunk order."""
        from pyspark.sql import functions as F

        ordered = out.join(self.chunks.select("chunk_id", "chunk_index"), "chunk_id", "left").join(
            self.documents.select("doc_id", F.col("path").alias("_path")), "doc_id", "left"
        )
        out_ok = F.col("status") == "ok"
        return ordered.agg(
            _gather(
                # document-scope outputs have no chunk: they sort by path alone
                [
                    F.coalesce(F.col("_path"), F.lit("")),
                    F.coalesce(F.col("chunk_index"), F.lit(-1)),
                    F.coalesce(F.col("doc_id"), F.lit("")),
                    F.coalesce(F.col("chunk_id"), F.lit("")),
                ],
                out_value,
                out_ok,
                self.plan.step.separator,
            ).alias(value),
            F.max(out_ok.cast("int")).eqNullSafe(1).alias(ok),
        )

    def upstream(self) -> tuple[Column, Column]:
        """Whether every referenced earlier step answered this row, and if not, why."""
        from pyspark.sql import functions as F

        if not self.ok_columns:
            return F.lit(True), F.lit(None).cast("string")
        upstream_ok = F.lit(True)
        for _, ok in self.ok_columns:
            upstream_ok = upstream_ok & F.coalesce(F.col(ok), F.lit(False))
        upstream_error = F.concat_ws(
            "; ",
            *[
                F.when(
                    ~F.coalesce(F.col(ok), F.lit(False)),
                    F.lit(f"{ref.text}: step '{ref.step}' has no successful output for this row"),
                )
                for ref, ok in self.ok_columns
            ],
        )
        return upstream_ok, upstream_error


def _field(struct: Column, ref: Ref) -> Column:
    key = ref.metadata_key
    if key is not None:
        return struct.getField("metadata").getItem(key)
    return struct.getField(ref.field)


def _output_value(ref: Ref) -> Column:
    from pyspark.sql import functions as F

    if ref.field == "output_text":
        return F.col("output_text")
    path = ref.json_path
    if not path:
        return F.col("output_json")
    return F.get_json_object(F.col("output_json"), "$." + ".".join(path))


def _gather(keys: list[Column], value: Column, ok: Column, sep: str) -> Column:
    """Successful values ordered by ``keys`` (typed: ``chunk_index`` sorts as a number),
    joined by ``sep``."""
    from pyspark.sql import functions as F

    entry = F.struct(*[k.alias(f"k{i}") for i, k in enumerate(keys)], value.alias("v"))
    # collect_list drops nulls: failed rows (when(ok) -> null) are left out
    items = F.array_sort(F.collect_list(F.when(ok, entry)))
    return F.concat_ws(sep, F.transform(items, lambda x: x.getField("v")))


def _messages(plan: StepPlan, names: dict[Ref, str]) -> Column:
    from pyspark.sql import functions as F

    rendered = []
    for message in plan.prompt.messages:
        pieces: list[Column] = []
        for part in parse_template(message.content):
            if isinstance(part, Literal):
                pieces.append(F.lit(part.text))
                continue
            for item in plan.inputs[part.name]:
                if isinstance(item, str):
                    pieces.append(F.lit(item))
                else:
                    pieces.append(F.coalesce(F.col(names[item]), F.lit("")))
        content = F.concat(*pieces) if pieces else F.lit("")
        rendered.append(F.struct(F.lit(message.role).alias("role"), content.alias("content")))
    return F.to_json(F.array(*rendered))


def upstream_error_rows(frame: DataFrame, plan: StepPlan) -> DataFrame:
    """Rows of ``frame`` whose upstream failed, as error rows in OUTPUTS_SCHEMA."""
    from pyspark.sql import functions as F

    from fmf_spark.schemas import OUTPUTS_SCHEMA, STATUS_ERROR, error_column

    prompt = plan.prompt
    key = F.concat_ws(
        "|",
        F.lit(plan.id),
        F.lit(prompt.content_hash),
        F.coalesce(F.col("doc_id"), F.lit("")),
        F.coalesce(F.col("chunk_id"), F.lit("")),
    )
    rows = frame.where(~F.col("upstream_ok")).select(
        F.sha2(key, 256).alias("request_id"),
        "doc_id",
        "chunk_id",
        F.lit(plan.id).alias("step"),
        F.lit(prompt.id).alias("prompt_id"),
        F.lit(prompt.version).alias("prompt_version"),
        F.lit(prompt.content_hash).alias("prompt_hash"),
        F.lit(plan.model).alias("model"),
        F.lit(None).alias("output_text"),
        F.lit(None).alias("output_json"),
        F.lit(0).alias("prompt_tokens"),
        F.lit(0).alias("completion_tokens"),
        F.lit(0.0).alias("cost_usd"),
        F.lit(0).alias("latency_ms"),
        F.lit(0).alias("attempts"),
        F.lit(STATUS_ERROR).alias("status"),
        # retryable: a rerun succeeds once the upstream step does
        error_column(UPSTREAM_FAILED, F.col("upstream_error"), True).alias("error"),
    )
    return rows.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in OUTPUTS_SCHEMA])
