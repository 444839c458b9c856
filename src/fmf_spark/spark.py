"""The Spark session factory.

:func:`get_spark` returns the active session when there is one (Databricks, Fabric,
notebooks). When Spark was launched by the platform but no session exists yet
(``spark-submit`` on EMR or anywhere: the driver runs inside a JVM spark-submit started,
with the master and jars the platform chose), it takes
``SparkSession.builder.getOrCreate()`` as it is: no master, no Delta packages, no conf
of ours. Only a plain ``python``/``fmf`` process builds a local session, with Delta
(the Delta jars resolved from Maven Central on first use, see below) unless the config's ``spark.conf`` names
its own jars (``spark.jars``: jars baked into a container image, no Maven at run time),
``PYSPARK_PYTHON`` set to the running interpreter so the Python workers see the same
packages, Arrow on and a small number of shuffle partitions.

A session we build starts quietly unless asked to be verbose (``fmf --verbose`` or
``--debug``, or ``FMF_VERBOSE=1``):

- the Delta jars are resolved once, by Ivy in a child process whose output is kept
  (:func:`delta_jars`), and passed as ``spark.jars``, instead of
  ``spark.jars.packages``, which makes Spark print its whole Ivy resolution log on every
  start (and a ``Host ... not found`` line per repository it cannot reach);
- Spark's own log goes to a file (``log4j2-quiet.properties``, shipped in this package),
  not to the console, so no ``WARN`` line and no task stack trace mixes with the run's
  output; a failure still reaches the user as the exception the CLI prints.

Verbose, Spark logs to the console as it does by default, and Ivy's output is shown
when it runs. Secrets never go into Spark conf: ``spark.sparkContext.getConf().getAll()``
is shown in the Spark UI and in event logs.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from contextvars import copy_context
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmf_spark import class_archive
from fmf_spark._deps import require
from fmf_spark.errors import ConfigError
from fmf_spark.observability.logging import get_logger

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pyspark.sql import DataFrame, SparkSession

    from fmf_spark.config.models import FmfConfig

log = get_logger(__name__)

#: conf keys that bring their own jars: a locally built session then adds no Delta package
JAR_KEYS = ("spark.jars", "spark.jars.packages")

LOCAL_DEFAULTS: dict[str, str] = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.driver.memory": "2g",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
}

#: Spark's log4j2 configuration for a quiet session: everything to a file, nothing to the console
QUIET_LOG4J = Path(__file__).with_name("log4j2-quiet.properties")

#: Spark's dependency resolution leaves these out of ``spark.jars.packages`` (Spark has them)
_PROVIDED = re.compile(r"^(org\.scala-lang/scala-library|org\.apache\.spark/spark-[^/]*)$")


def verbose_from_env(environ: Mapping[str, str] | None = None) -> bool:
    """``FMF_VERBOSE`` set to anything but ``""``, ``0`` or ``false`` (the CLI sets it)."""
    value = (os.environ if environ is None else environ).get("FMF_VERBOSE", "")
    return value.strip().lower() not in ("", "0", "false", "no")


def get_spark(
    config: FmfConfig | None = None,
    *,
    extra_conf: dict[str, str] | None = None,
    verbose: bool | None = None,
) -> SparkSession:
    """Return the active or platform-launched Spark session, or build a local one with Delta.

    Args:
        config: the fmf config; its ``spark`` section sets master, app name, shuffle
            partitions and extra conf for a locally built session. A session the
            platform launched (see :func:`platform_launch`) ignores it.
        extra_conf: more conf for a locally built session (tests, benchmarks).
        verbose: Spark's console log and Ivy's output for a session built here;
            default: :func:`verbose_from_env`.

    Example:
        >>> spark = get_spark()  # doctest: +SKIP
        >>> spark.range(3).write.format("delta").save("/tmp/t")  # doctest: +SKIP
    """
    require("pyspark")
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    launched = platform_launch()
    if launched is not None:
        # the platform chose master, jars (EMR's own Delta) and conf: take them as they are
        platform: SparkSession = SparkSession.builder.getOrCreate()
        log.info(
            "using the Spark session of the platform (%s), master %s",
            launched,
            platform.conf.get("spark.master", "unknown"),
        )
        return platform

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    remote = config.spark.remote if config is not None else None
    if verbose is None:
        verbose = verbose_from_env()
    if remote:
        return connect_session(remote, config, extra_conf=extra_conf, verbose=verbose)

    master, app_name, partitions, user_conf = "local[*]", "fmf_spark", 8, {}
    if config is not None:
        master = config.spark.master
        app_name = config.spark.app_name
        partitions = config.spark.shuffle_partitions
        user_conf = dict(config.spark.conf)
    if master.startswith("local-cluster"):
        # executors of local-cluster are launched through SPARK_HOME's scripts
        import pyspark

        os.environ.setdefault("SPARK_HOME", os.path.dirname(pyspark.__file__))

    conf = local_conf(partitions, {**user_conf, **(extra_conf or {})}, verbose=verbose)
    archive = class_archive.plan(config.spark.class_archive if config is not None else "auto")
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in with_java_options(conf, archive).items():
        builder = builder.config(key, value)
    session: SparkSession = builder.getOrCreate()
    class_archive.started(archive)
    return session


def with_java_options(conf: dict[str, str], archive: class_archive.Plan | None) -> dict[str, str]:
    """``conf`` with the class archive's options added to the driver's Java options."""
    return conf if archive is None else _add_java_options(conf, archive.java_options)


def _add_java_options(conf: dict[str, str], options: str) -> dict[str, str]:
    """``conf`` with ``options`` appended to ``spark.driver.extraJavaOptions``."""
    own = conf.get("spark.driver.extraJavaOptions", "")
    return {**conf, "spark.driver.extraJavaOptions": f"{own} {options}".strip()}


def local_conf(partitions: int, user_conf: Mapping[str, str], *, verbose: bool) -> dict[str, str]:
    """The conf of a session we start ourselves: our defaults, the user's conf, Delta's jars.

    ``spark.sql.warehouse.dir`` goes to a folder under the temp dir, never the current
    directory: resolving ``delta.`path``` in SQL creates the session catalog's default
    database there (a stray ``spark-warehouse/`` where the user ran ``fmf``).
    ``spark.local.dir`` (shuffle files, the parse's disk-persisted rows, the executors'
    copies of ``spark.jars``) goes to a folder of this process beside it, so what a
    killed run leaves there can be told apart and is removed (:func:`sweep_scratch`).
    """
    scratch = scratch_dir()
    sweep_scratch(scratch)
    conf = {
        **LOCAL_DEFAULTS,
        "spark.sql.shuffle.partitions": str(partitions),
        "spark.sql.warehouse.dir": hold(scratch / f"warehouse-{os.getpid()}").as_uri(),
    }
    if "spark.local.dir" not in user_conf and not os.environ.get("SPARK_LOCAL_DIRS"):
        conf["spark.local.dir"] = str(hold(scratch / f"local-{os.getpid()}"))
    conf.update(user_conf)
    if conf.get("spark.jars"):
        conf["spark.jars"] = expand_jars(conf["spark.jars"])
    # jars named by the config (an image's baked jars) must hold Delta: add none of ours
    jars = [] if brings_own_jars(conf) else delta_jars(conf, verbose=verbose)
    return session_conf(conf, jars, verbose=verbose)


#: Spark's own log of a process that ended is kept this long (the CLI names the file)
LOG_KEEP_S = 7 * 86400.0
_SCRATCH = re.compile(r"^(warehouse|local)-(\d+)$|^spark-(\d+)\.log$")
#: the scratch folders of this process, each held by an exclusive lock while it lives
_held: dict[Path, int] = {}


def scratch_dir() -> Path:
    """``<temp dir>/fmf_spark``: the warehouse, local dir and log of each session we build."""
    return Path(tempfile.gettempdir()) / "fmf_spark"


def hold(folder: Path) -> Path:
    """Make ``folder`` and hold an exclusive ``flock`` on it for the life of this process:
    :func:`sweep_scratch` never removes a folder whose lock is held, even when its PID
    looks gone (another PID namespace sharing the temp dir)."""
    folder.mkdir(parents=True, exist_ok=True)
    if folder not in _held:
        fd = _try_lock(folder)
        if fd is not None:
            _held[folder] = fd
    return folder


def _try_lock(folder: Path) -> int | None:
    """An open descriptor of ``folder`` with its exclusive lock taken, or ``None`` when
    another process holds it, the folder cannot be opened, or there is no ``flock``
    (Windows: nothing is held, and :func:`sweep_scratch` removes nothing)."""
    if os.name != "posix":
        return None
    import fcntl

    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def sweep_scratch(folder: Path, now: float | None = None) -> list[Path]:
    """Remove what sessions of ended processes left in ``folder``: their warehouse and
    local dir (Spark deletes its temp files at a clean exit only: a killed run leaves its
    shuffle files and a copy of the jars, 86 MB with Delta and S3A, which fills a small
    ``/tmp`` such as Lambda's after a few), and their Spark log once it is a week old.
    A folder goes when its process has ended and nobody holds its lock (:func:`hold`).
    Returns the removed paths."""
    now = time.time() if now is None else now
    removed: list[Path] = []
    if os.name != "posix":
        return removed
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _SCRATCH.match(entry.name)
        if match is None:
            continue
        if class_archive.alive(int(match.group(2) or match.group(3))):
            continue  # this process too
        try:
            if match.group(1):
                fd = _try_lock(entry)
                if fd is None:
                    continue
                os.close(fd)
                shutil.rmtree(entry)
            elif now - entry.stat().st_mtime > LOG_KEEP_S:
                entry.unlink()
            else:
                continue
            removed.append(entry)
        except OSError:
            pass
    return removed


def connect_session(
    remote: str,
    config: FmfConfig | None,
    *,
    extra_conf: Mapping[str, str] | None = None,
    verbose: bool = False,
) -> SparkSession:
    """A Spark Connect session to ``remote`` (``spark.remote`` in the config).

    ``remote`` is a ``sc://host:port`` URL, or ``local[N]``: pyspark then starts its own
    local Connect server in this process, with the same conf as a local classic session
    (Delta, quiet log, warehouse under the temp dir). A remote server keeps its own conf.
    The Connect client's modules come from the ``connect`` extra; a missing one fails here,
    before any Spark job, with the pip command that adds it.
    """
    require("grpc")
    require("grpc_status")
    require("google.rpc")
    require("zstandard")
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.remote(remote)
    if remote.startswith("local"):
        partitions = config.spark.shuffle_partitions if config is not None else 8
        user_conf = dict(config.spark.conf) if config is not None else {}
        conf = local_conf(partitions, {**user_conf, **(extra_conf or {})}, verbose=verbose)
        archive = class_archive.plan(config.spark.class_archive if config is not None else "auto")
        for key, value in with_java_options(conf, archive).items():
            builder = builder.config(key, value)
    if config is not None:
        builder = builder.appName(config.spark.app_name)
    log.info("using a Spark Connect session (%s)", remote.split(";")[0])
    with warnings.catch_warnings():
        # the local server starts with all of the conf; the client then sets it again on
        # the session, and warns for every key that is not a runtime SQL conf
        warnings.filterwarnings(
            "ignore", message=r"(Failed to set|The SQL config)", category=UserWarning
        )
        session: SparkSession = builder.getOrCreate()
    if remote.startswith("local"):
        class_archive.started(archive)
    return session


def is_connect(spark: object) -> bool:
    """Whether ``spark`` (a session) is a Spark Connect session.

    Under Connect the client is not the driver: no ``sparkContext``, RDD or JVM, and a
    ``foreachBatch`` callback runs in a server-side Python process.
    """
    cls = type(spark)
    return cls.__module__.startswith("pyspark.sql.connect")


def default_parallelism(spark: SparkSession) -> int:
    """The cluster's default parallelism, on classic and Spark Connect sessions alike.

    Connect has no ``sparkContext``: ``spark.range`` without a partition count is split
    into ``defaultParallelism`` partitions, so the highest partition id of a small range
    tells it (one tiny job).
    """
    if not is_connect(spark):
        return int(spark.sparkContext.defaultParallelism)
    from pyspark.sql import functions as F

    ids = spark.range(0, 1 << 16).select(F.spark_partition_id().alias("p"))
    row = ids.agg(F.max("p")).first()
    return int(row[0]) + 1 if row is not None and row[0] is not None else 1


def session_conf(conf: dict[str, str], jars: list[str] | None, *, verbose: bool) -> dict[str, str]:
    """``conf`` plus the Delta jars and, unless ``verbose``, the quiet log settings.

    ``jars`` is what :func:`delta_jars` found; ``None`` leaves the Delta package to
    Spark's own resolution (``spark.jars.packages``).
    """
    conf = dict(conf)
    if jars is None:
        packages = [p for p in conf.get("spark.jars.packages", "").split(",") if p]
        conf["spark.jars.packages"] = ",".join([*delta_packages(), *packages])
    elif jars:
        conf["spark.jars"] = ",".join([*filter(None, [conf.get("spark.jars")]), *jars])
    if not verbose and "log4j2.configurationFile" not in conf.get(
        "spark.driver.extraJavaOptions", ""
    ):
        log_file = scratch_dir() / f"spark-{os.getpid()}.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        log.debug("Spark's own log: %s", log_file)
        quiet = f"-Dlog4j2.configurationFile={_quote(QUIET_LOG4J.as_uri())} -Dfmf.spark.log={_quote(str(log_file))}"
        conf = _add_java_options(conf, quiet)
    return conf


def _quote(value: str) -> str:
    # the launcher splits extraJavaOptions on spaces and honours double quotes
    return f'"{value}"' if " " in value else value


def delta_packages() -> list[str]:
    """The Maven coordinates delta-spark asks for, exactly as its pip helper computes them."""
    delta = require("delta")
    from pyspark.sql import SparkSession

    # configure_spark_with_delta_pip() only sets spark.jars.packages on the builder
    # it gets; a fresh Builder keeps the shared SparkSession.builder untouched
    builder = delta.configure_spark_with_delta_pip(SparkSession.Builder())
    return [p for p in str(builder._options.get("spark.jars.packages", "")).split(",") if p]


def delta_jars(conf: Mapping[str, str], *, verbose: bool = False) -> list[str] | None:
    """The local jar files of the Delta package and its dependencies, resolved once.

    The list is kept in ``<ivy home>/fmf_spark/`` next to Ivy's cache, which Spark
    shares; later sessions read it and start without resolving anything. Returns
    ``None`` (Spark then resolves the package itself, with its log) when the conf
    points Spark at other repositories or Ivy settings, or when Ivy cannot run.
    """
    if conf.get("spark.jars.repositories") or conf.get("spark.jars.ivySettings"):
        return None
    ivy_home = _ivy_home(conf)
    jars: list[str] = []
    for coordinate in delta_packages():
        manifest = ivy_home / "fmf_spark" / f"{coordinate.replace(':', '_')}.txt"
        found = _read_manifest(manifest)
        if found is None:
            try:
                found = _resolve(coordinate, ivy_home, verbose=verbose)
            except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
                log.warning(
                    "could not resolve %s quietly (%s); Spark resolves it itself", coordinate, exc
                )
                return None
            _write_manifest(manifest, found)
        jars += found
    return jars


def _ivy_home(conf: Mapping[str, str]) -> Path:
    """Where Spark keeps Ivy's cache: ``spark.jars.ivy``, else its default for this Spark."""
    if conf.get("spark.jars.ivy"):
        return Path(conf["spark.jars.ivy"]).expanduser()
    import pyspark

    # Spark 4 moved its default from ~/.ivy2 when it took up Ivy 2.5.2 (a new cache layout)
    major = int(pyspark.__version__.split(".")[0])
    return Path.home() / (".ivy2.5.2" if major >= 4 else ".ivy2")


def _read_manifest(path: Path) -> list[str] | None:
    try:
        jars = [line for line in path.read_text(encoding="utf-8").splitlines() if line]
    except OSError:
        return None
    # a cache cleaned since: resolve again
    return jars if jars and all(os.path.isfile(j) for j in jars) else None


def _write_manifest(path: Path, jars: list[str]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text("".join(f"{j}\n" for j in jars), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:  # a read-only home: resolve again next time
        log.debug("cannot keep the jar list in %s: %s", path, exc)


def _resolve(coordinate: str, ivy_home: Path, *, verbose: bool) -> list[str]:
    """Run the Ivy that ships with pyspark on one ``group:artifact:version``."""
    import pyspark

    group, artifact, version = coordinate.split(":")
    ivy_jars = sorted((Path(pyspark.__file__).parent / "jars").glob("ivy-*.jar"))
    java_home = os.environ.get("JAVA_HOME")
    java = os.path.join(java_home, "bin", "java") if java_home else shutil.which("java")
    if not ivy_jars or not java:
        raise RuntimeError("no java or no Ivy jar in pyspark")
    with tempfile.TemporaryDirectory() as tmp:
        classpath = Path(tmp) / "classpath.txt"
        command = [
            java,
            "-jar",
            str(ivy_jars[-1]),
            "-dependency",
            group,
            artifact,
            version,
            "-confs",
            "default",
            "-cache",
            str(ivy_home / "cache"),
            "-cachepath",
            str(classpath),
        ]
        log.info("resolving %s (once: the jar list is kept for later runs)", coordinate)
        done = subprocess.run(
            command,
            stdout=None if verbose else subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=1800,
        )
        if done.returncode != 0 or not classpath.exists():
            tail = (done.stdout or "").strip().splitlines()[-3:]
            raise RuntimeError(f"Ivy exited with {done.returncode}: {' / '.join(tail)}")
        paths = [p for p in classpath.read_text(encoding="utf-8").strip().split(os.pathsep) if p]
    return [p for p in paths if not _PROVIDED.match(_group_and_module(p))]


def _group_and_module(jar: str) -> str:
    # Ivy's cache layout: <cache>/<group>/<module>/<type>s/<module>-<version>.jar
    parts = Path(jar).parts
    return f"{parts[-4]}/{parts[-3]}" if len(parts) >= 4 else ""


def expand_jars(value: str) -> str:
    """``spark.jars`` with its globs expanded (``/opt/fmf/jars/*.jar`` -> the jars there).

    spark-submit expands globs for the driver's class path but the SparkContext would
    try to add the pattern itself as a jar; a pattern that matches nothing is an error
    here, not a ClassNotFoundException at the first Delta write.

    Raises:
        ConfigError: a pattern matches no file.
    """
    out: list[str] = []
    for item in (part.strip() for part in value.split(",")):
        if not any(c in item for c in "*?["):
            out += [item] if item else []
            continue
        matches = sorted(glob.glob(item))
        if not matches:
            raise ConfigError(
                f"spark.conf.spark.jars: no file matches {item}",
                hint="fetch the jars with scripts/fetch_jars.py <folder> (the images do)",
            )
        out += matches
    return ",".join(out)


def brings_own_jars(conf: Mapping[str, str]) -> bool:
    """Whether ``conf`` names its own jars (then Delta must be among them)."""
    return any(conf.get(key) for key in JAR_KEYS)


def platform_launch(environ: Mapping[str, str] | None = None) -> str | None:
    """Why Spark counts as launched by the platform, or ``None`` for a plain process.

    Launched means: a SparkContext already runs in this process (a notebook, a job
    that made one), or ``spark-submit`` started this driver (it hands the Python
    process its running JVM through ``PYSPARK_GATEWAY_PORT``), or the launch
    configuration names a master: ``PYSPARK_SUBMIT_ARGS``, or the ``spark-defaults.conf``
    of ``SPARK_CONF_DIR`` (default ``$SPARK_HOME/conf``), as on a cluster's own nodes.
    """
    env = os.environ if environ is None else environ
    try:
        from pyspark import SparkContext

        # a class attribute read, not a use of the context: nothing runs on the JVM
        if SparkContext._active_spark_context is not None:
            return "a SparkContext is running"
    except ImportError:  # a Spark Connect-only client has no classic SparkContext
        pass
    if env.get("PYSPARK_GATEWAY_PORT"):
        return "started by spark-submit"
    args = env.get("PYSPARK_SUBMIT_ARGS", "").split()
    if any(arg == "--master" or arg.startswith("--master=") for arg in args):
        return "PYSPARK_SUBMIT_ARGS names a master"
    conf_dir = env.get("SPARK_CONF_DIR") or os.path.join(env.get("SPARK_HOME", ""), "conf")
    defaults = os.path.join(conf_dir, "spark-defaults.conf")
    if env.get("SPARK_CONF_DIR", env.get("SPARK_HOME")) and _names_master(defaults):
        return f"{defaults} sets spark.master"
    return None


def _names_master(defaults: str) -> bool:
    """Whether a ``spark-defaults.conf`` has a ``spark.master`` line."""
    try:
        with open(defaults, encoding="utf-8") as handle:
            return any(line.split(None, 1)[:1] == ["spark.master"] for line in handle)
    except OSError:
        return False


def materialise(df: DataFrame, scratch: str) -> DataFrame:
    """``df`` computed once, now: later actions on the result never recompute it.

    ``localCheckpoint(eager=True)`` where the session has it (classic Spark, Spark
    Connect 4.x); otherwise (Spark Connect 3.5) the rows are written once as Parquet to a
    fresh folder under ``scratch`` (a path the cluster can write, e.g. the run's
    artefacts) and read back from there, so a later action reads files and never runs
    ``df``'s plan (and its model calls) again.

    Example:
        >>> answers = materialise(calls_df, "artefacts/r1/_scratch")  # doctest: +SKIP
    """
    # looked up on the class: a Connect DataFrame resolves unknown attributes as columns
    if getattr(type(df), "localCheckpoint", None) is None:
        return materialise_as_files(df, scratch)
    try:
        return df.localCheckpoint(eager=True)
    except NotImplementedError:  # PySparkNotImplementedError subclasses it (Connect 3.5)
        return materialise_as_files(df, scratch)


def materialise_as_files(df: DataFrame, scratch: str) -> DataFrame:
    """:func:`materialise` without ``localCheckpoint``: ``df`` written once as Parquet to
    a new folder under ``scratch``, and read back from there."""
    import uuid

    from fmf_spark.storage import join_uri

    path = join_uri(scratch, f"materialised-{uuid.uuid4().hex}")
    # "error", not "errorifexists": the Spark Connect 3.5 client knows only the short name
    df.write.mode("error").parquet(path)
    log.debug("materialised through %s (no localCheckpoint in this session)", path)
    return df.sparkSession.read.schema(df.schema).parquet(path)


def side_by_side(*actions: Callable[[], Any]) -> list[Any]:
    """Run independent Spark actions (writes to different tables, say) at the same time
    from driver threads; once all have ended, return their results in argument order.

    Each small Delta write or count spends most of its time on the driver (planning, the
    transaction log, the commit) while the executors idle; Spark schedules the jobs of
    several driver threads together, so two such actions take about as long as the
    longer one instead of their sum. Only for actions that do not depend on each other:
    nothing orders them. Each runs in a copy of the caller's context (log fields, the
    trace's current span); the first runs in the calling thread. When one fails, the
    first failure in argument order is raised once all have ended; an interrupt (Ctrl-C
    in the calling thread) is raised at once.

    Example:
        >>> side_by_side(lambda: docs.write.save(a), lambda: chunks.write.save(b))  # doctest: +SKIP
    """
    results: list[Any] = [None] * len(actions)
    errors: list[BaseException | None] = [None] * len(actions)

    def run(index: int, action: Callable[[], Any]) -> None:
        try:
            results[index] = action()
        except BaseException as exc:  # handed to the calling thread
            errors[index] = exc

    threads = []
    for index, action in enumerate(actions[1:], start=1):
        context = copy_context()
        thread = threading.Thread(
            target=context.run, args=(run, index, action), name=f"fmf-side-{index}", daemon=True
        )
        thread.start()
        threads.append(thread)
    if actions:
        try:
            results[0] = actions[0]()
        except Exception as exc:
            errors[0] = exc
    for thread in threads:
        thread.join()
    for error in errors:
        if error is not None:
            raise error
    return results
