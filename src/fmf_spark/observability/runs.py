"""The run index and retention: list, show and prune the runs under an artefacts root.

A **run folder** is a folder directly under the root holding a ``run.yaml`` (written by
:class:`~fmf_spark.observability.run.RunContext` when the run starts, and again when it
ends). Nothing else under the root is ever touched: not the request cache ``_cache``,
not an export target such as ``exports/``, not a ``process-*`` folder without a
``run.yaml``. Roots: a local path, ``/Volumes/...`` or ``/dbfs/...`` (mounted, so local),
``dbfs:/`` (through ``/dbfs``) and ``s3://`` (boto3, with the usual AWS configuration;
``AWS_ENDPOINT_URL_S3`` points it elsewhere).

**Status.** ``succeeded`` and ``failed`` come from ``run.yaml``. A run whose ``run.yaml``
still says ``running`` is *in progress* while its ``heartbeat`` file (rewritten every
``artefacts.heartbeat_s``) is younger than ``artefacts.retention.stale_after_minutes``,
and *abandoned* after that (its driver died: a kill, a lost cluster).

**Retention** (``artefacts.retention``): a run is kept when any rule keeps it
(``keep_last``: the newest N by start; ``max_age_days``: started within N days;
``keep_failed``: failed and abandoned runs); with no rule set nothing is pruned. Never
pruned, whatever the rules:

- a run in progress;
- a run an export still needs: an export that started and recorded no result
  (``pending_exports`` in ``run.yaml``, written before the export begins and cleared
  when its result is recorded, by ``fmf run`` and ``fmf export``), or a streaming
  checkpoint under ``<run>/_checkpoints`` whose last batch has an offset but no commit
  (an export interrupted mid-batch; rerunning it needs the checkpoint and the run's
  ``outputs`` table it reads);
- a run folder that holds a configured exporter's target or checkpoint (a ``path``,
  S3 ``bucket/prefix`` or ``checkpoint`` inside it, ``${run_id}`` substituted).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import yaml

from fmf_spark.errors import FmfError
from fmf_spark.observability.logging import get_logger
from fmf_spark.observability.run import HEARTBEAT_FILE, RUN_FILE, STATUS_FAILED, STATUS_RUNNING
from fmf_spark.storage import join_uri, local_path

if TYPE_CHECKING:
    from fmf_spark.config.models import FmfConfig

log = get_logger(__name__)

STATUS_ABANDONED = "abandoned"
CHECKPOINTS_DIR = "_checkpoints"
_RUN_ID_TIME = re.compile(r"^(\d{8}T\d{6}Z)")


class RunStore(Protocol):
    """The few operations the index needs from an artefacts root."""

    root: str

    def folders(self) -> list[str]:
        """Names of the folders directly under the root."""
        ...

    def read(self, folder: str, name: str) -> str | None:
        """Text of ``<root>/<folder>/<name>``, ``None`` when it does not exist."""
        ...

    def files(self, folder: str, under: str) -> list[str]:
        """Paths (relative to ``<root>/<folder>/<under>``) of the files below it."""
        ...

    def delete(self, folder: str) -> int:
        """Remove ``<root>/<folder>`` and everything in it; the number of files removed."""
        ...


class LocalStore:
    """A root on a local or mounted filesystem (``/Volumes``, ``/dbfs``)."""

    def __init__(self, root: str, path: Path) -> None:
        self.root = root
        self.path = path

    def folders(self) -> list[str]:
        if not self.path.is_dir():
            return []
        return sorted(p.name for p in self.path.iterdir() if p.is_dir())

    def read(self, folder: str, name: str) -> str | None:
        file = self.path / folder / name
        return file.read_text(encoding="utf-8") if file.is_file() else None

    def files(self, folder: str, under: str) -> list[str]:
        base = self.path / folder / under
        if not base.is_dir():
            return []
        return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())

    def delete(self, folder: str) -> int:
        target = self.path / folder
        count = sum(1 for p in target.rglob("*") if p.is_file())
        shutil.rmtree(target)
        return count


class S3Store:
    """A root on S3 (``s3://bucket/prefix``)."""

    def __init__(self, root: str) -> None:
        from fmf_spark.clients.aws import aws_client

        self.root = root
        self.bucket, _, prefix = root.split("://", 1)[1].partition("/")
        self.prefix = prefix.strip("/")
        self.client = aws_client("s3")

    def _key(self, *parts: str) -> str:
        return "/".join(p.strip("/") for p in (self.prefix, *parts) if p.strip("/"))

    def _keys(self, prefix: str) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield str(item["Key"])

    def folders(self) -> list[str]:
        base = self._key() + "/" if self.prefix else ""
        paginator = self.client.get_paginator("list_objects_v2")
        names = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=base, Delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                names.append(str(common["Prefix"])[len(base) :].strip("/"))
        return sorted(names)

    def read(self, folder: str, name: str) -> str | None:
        from botocore.exceptions import ClientError

        from fmf_spark.clients.aws import MISSING_CODES

        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(folder, name))["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in MISSING_CODES:
                return None
            raise FmfError(f"cannot read {self.root}/{folder}/{name}: {exc}") from None
        return str(body.read().decode("utf-8"))

    def files(self, folder: str, under: str) -> list[str]:
        base = self._key(folder, under) + "/"
        return sorted(k[len(base) :] for k in self._keys(base))

    def delete(self, folder: str) -> int:
        keys = list(self._keys(self._key(folder) + "/"))
        for i in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            chunk = [{"Key": k} for k in keys[i : i + 1000]]
            answer = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": chunk})
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise FmfError(
                    f"could not delete {self.root}/{folder}: {first.get('Key')}: "
                    f"{first.get('Code')} {first.get('Message')}"
                )
        return len(keys)


def open_store(root: str) -> RunStore:
    """The store of an artefacts root (local, mounted, ``dbfs:/`` or ``s3://``)."""
    path = local_path(root)
    if path is not None:
        return LocalStore(root, path)
    if root.startswith(("s3://", "s3a://")):
        return S3Store(root)
    raise FmfError(
        f"cannot list runs under {root}: unsupported scheme",
        code="observability.runs",
        hint="artefacts.root must be a local path, /Volumes/..., dbfs:/ or s3://",
    )


@dataclass
class RunInfo:
    """One run folder, as the index sees it."""

    run_id: str
    run_dir: str
    record: dict[str, Any] = field(repr=False)
    status: str
    started_at: datetime | None
    heartbeat_at: datetime | None = None

    @property
    def chain(self) -> str:
        chain = self.record.get("chain") or {}
        return str(chain.get("name") or chain.get("path") or "")

    @property
    def metrics(self) -> dict[str, Any]:
        metrics = self.record.get("metrics")
        return metrics if isinstance(metrics, dict) else {}

    @property
    def duration_s(self) -> float | None:
        value = self.record.get("duration_s")
        return float(value) if isinstance(value, int | float) else None

    @property
    def tokens(self) -> int:
        m = self.metrics
        return int(m.get("prompt_tokens") or 0) + int(m.get("completion_tokens") or 0)

    @property
    def pending_exports(self) -> list[str]:
        return [str(s) for s in self.record.get("pending_exports") or []]

    def summary(self) -> dict[str, Any]:
        """The row of ``fmf runs list`` (plain values)."""
        m = self.metrics
        return {
            "run_id": self.run_id,
            "chain": self.chain,
            "status": self.status,
            "started_at": self.started_at.isoformat(timespec="seconds")
            if self.started_at
            else None,
            "duration_s": self.duration_s,
            "documents": m.get("documents"),
            "calls": m.get("calls"),
            "tokens": self.tokens,
            "cost_usd": m.get("cost_usd"),
        }


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        match = _RUN_ID_TIME.match(value)
        if not match:
            return None
        parsed = datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def load_run(
    store: RunStore, folder: str, *, now: datetime | None = None, stale_after_minutes: float = 30.0
) -> RunInfo | None:
    """The run in ``folder``, or ``None`` when it has no (readable) ``run.yaml``."""
    text = store.read(folder, RUN_FILE)
    if text is None:
        return None
    try:
        record = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        log.warning("%s/%s/%s is not valid YAML: %s", store.root, folder, RUN_FILE, exc)
        return None
    if not isinstance(record, dict):
        return None
    started = _parse_time(record.get("started_at")) or _parse_time(folder)
    status = str(record.get("status") or STATUS_RUNNING)
    heartbeat = None
    if status == STATUS_RUNNING:
        heartbeat = _parse_time(store.read(folder, HEARTBEAT_FILE)) or started
        now = now or datetime.now(timezone.utc)
        if heartbeat is None or now - heartbeat > timedelta(minutes=stale_after_minutes):
            status = STATUS_ABANDONED
    return RunInfo(
        run_id=folder,
        run_dir=join_uri(store.root, folder),
        record=record,
        status=status,
        started_at=started,
        heartbeat_at=heartbeat,
    )


def list_runs(
    root: str, *, now: datetime | None = None, stale_after_minutes: float = 30.0
) -> list[RunInfo]:
    """Every run under ``root``, newest first (folders starting with ``_`` are skipped)."""
    store = open_store(root)
    runs = []
    for folder in store.folders():
        if folder.startswith(("_", ".")):
            continue
        run = load_run(store, folder, now=now, stale_after_minutes=stale_after_minutes)
        if run is not None:
            runs.append(run)
    oldest = datetime.min.replace(tzinfo=timezone.utc)
    return sorted(runs, key=lambda r: (r.started_at or oldest, r.run_id), reverse=True)


def find_run(root: str, run_id: str, *, stale_after_minutes: float = 30.0) -> RunInfo:
    """The run ``run_id`` under ``root``; a clear error when there is none."""
    store = open_store(root)
    run = load_run(store, run_id, stale_after_minutes=stale_after_minutes)
    if run is None:
        raise FmfError(
            f"no run {run_id} under {root} (no {RUN_FILE})",
            code="observability.no_run",
            hint="`fmf runs list` shows the runs; --artefacts picks another root",
        )
    return run


def unfinished_checkpoints(store: RunStore, folder: str) -> list[str]:
    """Checkpoints under ``<run>/_checkpoints`` whose last batch has no commit."""
    offsets: dict[str, set[int]] = {}
    commits: dict[str, set[int]] = {}
    for path in store.files(folder, CHECKPOINTS_DIR):
        parts = path.split("/")
        if len(parts) < 2 or not parts[-1].isdigit():
            continue
        checkpoint, kind = "/".join(parts[:-2]), parts[-2]
        if kind == "offsets":
            offsets.setdefault(checkpoint, set()).add(int(parts[-1]))
        elif kind == "commits":
            commits.setdefault(checkpoint, set()).add(int(parts[-1]))
    return sorted(
        join_uri(CHECKPOINTS_DIR, name) if name else CHECKPOINTS_DIR
        for name, batches in offsets.items()
        if max(batches) > max(commits.get(name, {-1}))
    )


def export_targets(config: FmfConfig | None) -> list[str]:
    """Where the configured exporters write (paths, S3 prefixes, checkpoints)."""
    if config is None:
        return []
    targets = []
    for sink in config.exporters.values():
        for name in ("path", "checkpoint"):
            value = getattr(sink, name, None)
            if isinstance(value, str) and value:
                targets.append(value)
        bucket = getattr(sink, "bucket", None)
        if isinstance(bucket, str) and bucket:
            targets.append(f"s3://{bucket}/{getattr(sink, 'prefix', '') or ''}")
    return targets


def _normal(uri: str) -> str:
    path = local_path(uri)
    if path is not None:
        return str(path.expanduser().resolve(strict=False)).rstrip("/")
    return uri.replace("s3a://", "s3://").rstrip("/")


def _targets_inside(run: RunInfo, targets: Iterable[str]) -> list[str]:
    run_dir = _normal(run.run_dir)
    inside = []
    for target in targets:
        resolved = _normal(target.replace("${run_id}", run.run_id))
        if resolved == run_dir or resolved.startswith(run_dir + "/"):
            inside.append(target)
    return inside


@dataclass
class PruneDecision:
    """What prune does with one run, and why."""

    run: RunInfo
    delete: bool
    reason: str


def plan_prune(
    root: str,
    retention: Any,
    *,
    exporters: FmfConfig | None = None,
    now: datetime | None = None,
) -> list[PruneDecision]:
    """Decide, run by run (newest first), what ``artefacts.retention`` keeps.

    Args:
        root: the artefacts root.
        retention: ``artefacts.retention`` (a ``RetentionConfig``).
        exporters: the config whose exporters' targets must survive.
        now: the time to judge ages and heartbeats by (default: now).
    """
    now = now or datetime.now(timezone.utc)
    store = open_store(root)
    runs = list_runs(root, now=now, stale_after_minutes=retention.stale_after_minutes)
    targets = export_targets(exporters)
    rules = retention.keep_last is not None or retention.max_age_days is not None
    decisions = []
    for index, run in enumerate(runs):
        decisions.append(
            PruneDecision(run, *_decide(store, run, index, retention, rules, targets, now))
        )
    return decisions


def _decide(
    store: RunStore,
    run: RunInfo,
    index: int,
    retention: Any,
    rules: bool,
    targets: list[str],
    now: datetime,
) -> tuple[bool, str]:
    if run.status == STATUS_RUNNING:
        return False, "in progress (recent heartbeat)"
    if run.record.get("run_id") not in (None, run.run_id):
        return False, f"its run.yaml names another run ({run.record.get('run_id')})"
    if run.pending_exports:
        return False, f"export still needs it: {', '.join(run.pending_exports)} not finished"
    unfinished = unfinished_checkpoints(store, run.run_id)
    if unfinished:
        return False, f"export still needs it: checkpoint {', '.join(unfinished)} mid-batch"
    inside = _targets_inside(run, targets)
    if inside:
        return False, f"holds an export target: {', '.join(inside)}"
    if not rules:
        return False, "no retention rule set"
    if retention.keep_last is not None and index < retention.keep_last:
        return False, f"among the newest {retention.keep_last}"
    age = now - run.started_at if run.started_at else None
    young = age is not None and age < timedelta(days=retention.max_age_days or 0)
    if retention.max_age_days is not None and young:
        return False, f"younger than {retention.max_age_days:g} days"
    if retention.keep_failed and run.status in (STATUS_FAILED, STATUS_ABANDONED):
        return False, f"{run.status} runs are kept (keep_failed)"
    why = []
    if retention.keep_last is not None:
        why.append(f"not among the newest {retention.keep_last}")
    if retention.max_age_days is not None:
        why.append(f"older than {retention.max_age_days:g} days")
    return True, " and ".join(why)


@dataclass
class PruneResult:
    """What :func:`prune` did (or, in a dry run, would do)."""

    decisions: list[PruneDecision]
    dry_run: bool
    files_deleted: int = 0

    @property
    def deleted(self) -> list[RunInfo]:
        return [d.run for d in self.decisions if d.delete]


def prune(
    root: str,
    retention: Any,
    *,
    exporters: FmfConfig | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
) -> PruneResult:
    """Apply ``artefacts.retention`` to the runs under ``root`` (see the module docstring).

    Example:
        >>> result = prune(cfg.artefacts.root, cfg.artefacts.retention, exporters=cfg,
        ...                dry_run=True)  # doctest: +SKIP
        >>> [r.run_id for r in result.deleted]  # doctest: +SKIP
    """
    decisions = plan_prune(root, retention, exporters=exporters, now=now)
    result = PruneResult(decisions, dry_run)
    if dry_run:
        return result
    store = open_store(root)
    for decision in decisions:
        if not decision.delete:
            continue
        # a run that started again since the plan (same id, retried job) is left alone
        fresh = load_run(
            store, decision.run.run_id, stale_after_minutes=retention.stale_after_minutes
        )
        if fresh is None or fresh.status == STATUS_RUNNING:
            decision.delete, decision.reason = False, "changed while pruning"
            continue
        result.files_deleted += store.delete(decision.run.run_id)
        log.info("pruned run %s (%s)", decision.run.run_id, decision.reason)
    return result


def format_table(rows: Sequence[Mapping[str, Any]], columns: list[tuple[str, str]]) -> list[str]:
    """Aligned text table: ``columns`` are (key, header); numbers right-aligned."""
    cells = [[_cell(row.get(key)) for key, _ in columns] for row in rows]
    headers = [title for _, title in columns]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(headers)]
    numeric = [
        all(isinstance(row.get(key), int | float) or row.get(key) is None for row in rows)
        for key, _ in columns
    ]

    def line(values: list[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *[line(c) for c in cells]]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6f}" if value < 1 else f"{value:.1f}"
    return str(value)
