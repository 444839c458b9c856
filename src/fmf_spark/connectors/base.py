"""The connector protocol, its resource types, the registry and the files DataFrame.

A connector lists resources on the driver (metadata only) and reads their bytes on the
executors: :func:`files_dataframe` ships the listing as a small DataFrame of references
and a ``mapInPandas`` function opens each one with a copy of the connector (pickled in
the closure; clients are rebuilt lazily on the executor, secrets registered there for
redaction). A file over ``max_file_bytes`` or one that cannot be read becomes a row
with ``status='error'``, never an out-of-memory or a crashed job.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import IO, TYPE_CHECKING, Any, Protocol, runtime_checkable

from fmf_spark.config.connectors import ConnectorConfig
from fmf_spark.config.secrets_models import SecretsConfig
from fmf_spark.errors import ConnectorError, FmfError, error_struct
from fmf_spark.registry import CONNECTORS, Plugin

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

    from fmf_spark.config.models import FmfConfig
    from fmf_spark.config.secrets import SecretResolver

#: a connector built without a config resolves no secret (its entry names none)
_NO_SECRETS = SecretsConfig()

#: bytes per Arrow batch handed back to Spark by the reader (bounded executor memory)
READ_BATCH_BYTES = 64 * 1024 * 1024
READ_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ResourceRef:
    """Where one resource lives, enough for :meth:`DataConnector.open` to read it.

    Attributes:
        source: the connector name in the config (``connectors.<name>``).
        uri: a full, human-readable address (``file:///...``, ``s3://b/k``, web URL).
        path: the path relative to the connector root, ``/``-separated; what globs match.
        id: a connector-specific handle (S3 key, Graph item id); defaults to ``path``.
    """

    source: str
    uri: str
    path: str
    id: str = ""

    @property
    def handle(self) -> str:
        return self.id or self.path


@dataclass(frozen=True)
class ResourceInfo:
    """A listed resource: its reference plus what the listing knows about it."""

    ref: ResourceRef
    size: int | None = None
    modified: datetime | None = None
    etag: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class DataConnector(Protocol):
    """What every connector implements.

    Example:
        >>> conn = get_connector("samples", cfg)  # doctest: +SKIP
        >>> [info.ref.path for info in conn.list("**/*.md")]  # doctest: +SKIP
        ['guide.md']
        >>> files = conn.to_dataframe(spark, "**/*.md")  # FILES_SCHEMA  # doctest: +SKIP
    """

    name: str
    max_file_bytes: int

    def precheck(self) -> None:
        """Check reachability and permissions; raise :class:`ConnectorError` if not."""
        ...

    def list(self, selector: str | Sequence[str] | None = None) -> Iterator[ResourceInfo]:
        """Yield the resources matching the config's include/exclude and ``selector``."""
        ...

    def open(self, ref: ResourceRef) -> IO[bytes]:
        """Open a resource as a binary stream (the caller closes it)."""
        ...

    def to_dataframe(
        self, spark: SparkSession, selector: str | Sequence[str] | None = None
    ) -> DataFrame:
        """List on the driver, read bytes on the executors; a DataFrame in FILES_SCHEMA."""
        ...


# --- glob matching ------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    """``**`` crosses folders (and may be empty), ``*`` and ``?`` do not."""
    pattern = pattern.strip().lstrip("/")
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            j = pattern.find("]", i)
            if j == -1:
                out.append(re.escape(c))
                i += 1
            else:
                out.append(fnmatch.translate(pattern[i : j + 1]).removeprefix("(?s:")[:-3])
                i = j + 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("^" + "".join(out) + "$")


def glob_match(path: str, pattern: str) -> bool:
    """Match a ``/``-separated relative path against a glob (``**`` = any folders).

    A pattern without ``/`` matches the file name at any depth (``*.md``), like
    ``.gitignore``.
    """
    path = path.lstrip("/")
    if "/" not in pattern.strip("/"):
        return bool(_glob_regex(pattern).match(path.rsplit("/", 1)[-1]))
    return bool(_glob_regex(pattern).match(path))


def _as_list(selector: str | Sequence[str] | None) -> list[str]:
    if selector is None:
        return []
    if isinstance(selector, str):
        return [selector]
    return list(selector)


class PathFilter:
    """The config's include/exclude globs, narrowed by a selector (all must match)."""

    def __init__(
        self,
        include: Sequence[str],
        exclude: Sequence[str],
        selector: str | Sequence[str] | None = None,
    ) -> None:
        self.include = list(include) or ["**/*"]
        self.exclude = list(exclude)
        self.selector = _as_list(selector)

    def __call__(self, path: str) -> bool:
        if not any(glob_match(path, p) for p in self.include):
            return False
        if any(glob_match(path, p) for p in self.exclude):
            return False
        return not self.selector or any(glob_match(path, p) for p in self.selector)

    def prefix(self) -> str:
        """The longest literal folder prefix shared by the selectors (narrows S3 listings)."""
        prefixes = []
        for pattern in self.selector:
            literal = re.split(r"[*?\[]", pattern.lstrip("/"), maxsplit=1)[0]
            prefixes.append(literal.rsplit("/", 1)[0] + "/" if "/" in literal else "")
        if not prefixes:
            return ""
        common = prefixes[0]
        for p in prefixes[1:]:
            while not p.startswith(common):
                common = common[:-1].rsplit("/", 1)[0] + "/" if "/" in common[:-1] else ""
        return common


# --- registry -----------------------------------------------------------------------------

#: ``(connector name, its validated config, secret resolver) -> connector``
ConnectorFactory = Callable[[str, Any, "SecretResolver"], DataConnector]


def register_connector(
    connector_type: str, config_model: type[ConnectorConfig], factory: ConnectorFactory
) -> Plugin[ConnectorFactory]:
    """Register a connector type: the model its config entries are validated against and
    the factory that builds it. Registering a type twice raises ``ValueError``.

    Example:
        >>> register_connector("ftp", FtpConnectorConfig, FtpConnector.from_config)  # doctest: +SKIP
    """
    return CONNECTORS.register(connector_type, Plugin(connector_type, config_model, factory))


def registered_connectors() -> list[str]:
    """The connector types a config may name."""
    return CONNECTORS.names()


def build_connector(
    name: str, spec: ConnectorConfig, resolver: SecretResolver | None = None
) -> DataConnector:
    """Build the connector of one config entry (``connectors.<name>``).

    Raises:
        ConfigError: unknown type.
        FmfError: the factory's own errors (a secret that does not resolve...).
    """
    if resolver is None:
        from fmf_spark.config.secrets import SecretResolver

        resolver = SecretResolver(_NO_SECRETS)
    factory: ConnectorFactory = CONNECTORS.get(spec.type).factory
    return factory(name, spec, resolver)


def get_connector(
    name: str, config: FmfConfig, resolver: SecretResolver | None = None
) -> DataConnector:
    """Build the connector named ``name`` in ``config.connectors``.

    Args:
        name: a key of ``connectors`` in the config.
        config: the loaded config.
        resolver: resolves secret references (S3 keys, SharePoint client secret); built
            from ``config.secrets`` when omitted.

    Raises:
        ConnectorError: unknown name.
    """
    spec = config.connectors.get(name)
    if spec is None:
        known = ", ".join(sorted(config.connectors)) or "none declared"
        raise ConnectorError(
            f"no connector named '{name}' (declared: {known})",
            code="connector.unknown",
            hint="add it under `connectors:` in the config",
        )
    if resolver is None:
        from fmf_spark.config.secrets import SecretResolver

        resolver = SecretResolver(config.secrets)
    return build_connector(name, spec, resolver)


# --- reading on the executors -------------------------------------------------------------


def read_limited(stream: IO[bytes], limit: int) -> bytes | None:
    """Read a stream, or return None as soon as it exceeds ``limit`` bytes."""
    buf = bytearray()
    while True:
        chunk = stream.read(READ_CHUNK)
        if not chunk:
            return bytes(buf)
        buf += chunk
        if len(buf) > limit:
            return None


def read_resource(connector: DataConnector, info: ResourceInfo) -> dict[str, Any]:
    """One FILES_SCHEMA row for one resource; failures become error rows."""
    ref = info.ref
    row: dict[str, Any] = {
        "source": ref.source,
        "uri": ref.uri,
        "path": ref.path,
        "size": info.size,
        "modified": info.modified,
        "etag": info.etag,
        "content": None,
        "status": "ok",
        "error": None,
    }
    limit = connector.max_file_bytes
    too_large = error_struct(
        "connector.file_too_large",
        f"{ref.path} is larger than max_file_bytes={limit}",
    )
    if info.size is not None and info.size > limit:
        row.update(status="error", error=too_large)
        return row
    try:
        with connector.open(ref) as stream:
            data = read_limited(stream, limit)
    except FmfError as exc:
        row.update(status="error", error=exc.to_struct())
        return row
    except OSError as exc:
        row.update(
            status="error",
            error=error_struct("connector.read_failed", f"{type(exc).__name__}: {exc}", True),
        )
        return row
    if data is None:  # the listing under-reported the size
        row.update(status="error", error=too_large)
        return row
    row["content"] = data
    row["size"] = len(data)
    return row


def _info_rows(infos: Iterable[ResourceInfo]) -> list[tuple[Any, ...]]:
    return [
        (
            i.ref.source,
            i.ref.uri,
            i.ref.path,
            i.ref.id,
            i.size,
            i.modified,
            i.etag,
        )
        for i in infos
    ]


def listing_dataframe(
    spark: SparkSession,
    infos: Iterable[ResourceInfo],
    num_partitions: int | None = None,
) -> DataFrame:
    """The listing (metadata only) as a DataFrame spread over ``num_partitions`` tasks.

    Files are sorted by size and dealt round-robin, so big files spread over the tasks.
    The rows are built on the driver and unpickled by the JVM: no Python worker runs
    for the listing itself (``createDataFrame`` of an RDD would map every row through
    one, a whole extra Python pass per task). Range partitioning on the slice number
    puts each slice in its own task (exact for listings under ~100 rows per task,
    where Spark samples every row; close to it above).
    """
    from pyspark.sql.types import IntegerType, StructField, StructType

    from fmf_spark.schemas import LISTING_SCHEMA
    from fmf_spark.spark import default_parallelism

    ordered = sorted(infos, key=lambda i: (-(i.size or 0), i.ref.path))
    parallelism = default_parallelism(spark)
    n = num_partitions or max(1, min(len(ordered), parallelism * 4))
    with_slice = StructType([*LISTING_SCHEMA.fields, StructField("_slice", IntegerType(), False)])
    rows = [(*row, k % n) for k, row in enumerate(_info_rows(ordered))]
    frame = spark.createDataFrame(rows, with_slice)
    if n > 1 and rows:
        frame = frame.repartitionByRange(n, "_slice")
    return frame.drop("_slice")


def info_from_record(rec: dict[str, Any]) -> ResourceInfo:
    """The :class:`ResourceInfo` of one listing row as ``mapInPandas`` hands it over."""
    import pandas as pd

    modified = rec["modified"]
    return ResourceInfo(
        ref=ResourceRef(rec["source"], rec["uri"], rec["path"], rec["id"] or ""),
        size=None if pd.isna(rec["size"]) else int(rec["size"]),
        modified=None if pd.isna(modified) else modified.to_pydatetime(),
        etag=rec["etag"],
    )


def files_dataframe(
    spark: SparkSession,
    connector: DataConnector,
    infos: Iterable[ResourceInfo],
    num_partitions: int | None = None,
) -> DataFrame:
    """The FILES_SCHEMA DataFrame of ``infos``, bytes read on the executors.

    The listing (metadata only) is distributed round-robin after sorting by size, so
    big files spread over the tasks (:func:`listing_dataframe`); each task opens its
    resources with its own copy of ``connector`` and hands Arrow batches of at most
    ~64 MB back to Spark.
    """
    from fmf_spark.schemas import FILES_SCHEMA

    listing = listing_dataframe(spark, infos, num_partitions)
    return listing.mapInPandas(_make_reader(connector), FILES_SCHEMA)


def prepare_on_executor(connector: DataConnector) -> None:
    """Run the connector's executor-side set-up (clients, secret registration), if any."""
    prepare = getattr(connector, "on_executor", None)
    if callable(prepare):
        prepare()


def _make_reader(
    connector: DataConnector,
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    def read_partition(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        prepare_on_executor(connector)
        out: list[dict[str, Any]] = []
        size = 0
        for batch in batches:
            for rec in batch.to_dict("records"):
                row = read_resource(connector, info_from_record(rec))
                out.append(row)
                size += len(row["content"] or b"")
                if size >= READ_BATCH_BYTES:
                    yield _files_frame(out)
                    out, size = [], 0
        if out:
            yield _files_frame(out)

    return read_partition


def _files_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    import pandas as pd

    from fmf_spark.schemas import FILES_SCHEMA

    frame = pd.DataFrame(rows, columns=FILES_SCHEMA.fieldNames())
    frame["size"] = frame["size"].astype("Int64")
    frame["modified"] = pd.to_datetime(frame["modified"], utc=True)
    return frame


def content_etag(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()
