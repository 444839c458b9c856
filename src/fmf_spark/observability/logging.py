"""Log formats (``human`` or ``json``) with secret redaction on every record.

``configure_logging()`` installs one handler on the ``fmf_spark`` logger. Format and
level, first found wins: the argument (the CLI's ``--debug``), the environment
(``FMF_LOG_FORMAT``, ``FMF_LOG_LEVEL``), the config (``observability.log_format``,
``observability.log_level``), then ``human``/``INFO``. Redaction runs in the formatter,
after the message, its arguments and any traceback are rendered, so a secret cannot
slip through ``%s`` arguments or an exception's text.

JSON lines carry the context a job's logs are joined on: ``run_id`` and ``step`` (see
:func:`log_fields`) and, in a Spark task, ``partition`` (``TaskContext``, which works on
classic and Connect clusters alike).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import IO, Any, Protocol

from fmf_spark.observability.redaction import redact

LOGGER_NAME = "fmf_spark"
_HANDLER_MARK = "_fmf_handler"
FORMATS = ("human", "json")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

#: fields of the code running in this context (a run, a stage) on the driver
_CONTEXT_FIELDS: ContextVar[Mapping[str, Any]] = ContextVar("fmf_log_fields", default={})  # noqa: B039 - never mutated
#: fields of the whole process: a Spark task's worker runs its calls on a thread pool,
#: whose threads do not inherit context variables
_PROCESS_FIELDS: dict[str, Any] = {}
#: what this process was configured with: (format, level), or None
_configured: tuple[str, str] | None = None


class LogSettings(Protocol):
    """What :func:`configure_logging` reads of ``observability`` in the config."""

    @property
    def log_format(self) -> str: ...

    @property
    def log_level(self) -> str: ...


@contextmanager
def log_fields(**fields: Any) -> Iterator[None]:
    """Add ``fields`` to every JSON log line written inside the block (this context)."""
    token = _CONTEXT_FIELDS.set({**_CONTEXT_FIELDS.get(), **fields})
    try:
        yield
    finally:
        _CONTEXT_FIELDS.reset(token)


def set_process_fields(**fields: Any) -> None:
    """Set fields of every JSON log line of this process (``None`` removes one)."""
    for key, value in fields.items():
        if value is None:
            _PROCESS_FIELDS.pop(key, None)
        else:
            _PROCESS_FIELDS[key] = value


def current_fields() -> dict[str, Any]:
    """The context fields a log line written here gets (process, context, partition)."""
    fields = {**_PROCESS_FIELDS, **_CONTEXT_FIELDS.get()}
    partition = spark_partition()
    if partition is not None:
        fields["partition"] = partition
    return fields


def spark_partition() -> int | None:
    """The partition of the Spark task running this code; ``None`` outside a task."""
    if "pyspark" not in sys.modules:  # not a Spark process: do not import it for a log line
        return None
    try:
        from pyspark import TaskContext

        ctx = TaskContext.get()
    except Exception:  # a Connect client without the classic modules, say
        return None
    return int(ctx.partitionId()) if ctx is not None else None


class RedactingFormatter(logging.Formatter):
    """Human format: ``time level logger: message``, secrets masked."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line, secrets masked in every string field."""

    _STD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        payload.update(current_fields())
        for key, value in vars(record).items():
            if key not in self._STD and not key.startswith("_"):
                payload[key] = value
        return redact(json.dumps(payload, default=str))


class RedactingFilter(logging.Filter):
    """Masks secrets in records of loggers we do not own (boto3, azure, openai...)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at emit time.

    Notebooks, pytest's capture and job runners swap ``sys.stderr``; a handler that kept
    the stream it was created with would write into a closed or stale one.
    """

    @property  # type: ignore[override]
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, value: IO[str]) -> None:
        pass


def resolve_settings(
    fmt: str | None = None, level: str | int | None = None, config: LogSettings | None = None
) -> tuple[str, str]:
    """(format, level) by precedence: argument, environment, config, default.

    An unknown value at one level is skipped, not an error: logging must come up.
    """
    fmt_choices = [fmt, os.environ.get("FMF_LOG_FORMAT"), getattr(config, "log_format", None)]
    chosen_fmt = next((f.lower() for f in fmt_choices if f and f.lower() in FORMATS), "human")
    if isinstance(level, int):
        level = logging.getLevelName(level)
    level_choices = [level, os.environ.get("FMF_LOG_LEVEL"), getattr(config, "log_level", None)]
    chosen_level = next((v.upper() for v in level_choices if v and v.upper() in LEVELS), "INFO")
    return chosen_fmt, chosen_level


def configured() -> tuple[str, str] | None:
    """(format, level) this process's fmf logging was configured with, if it was."""
    return _configured


def configure_logging(
    fmt: str | None = None,
    level: str | int | None = None,
    stream: IO[str] | None = None,
    *,
    config: LogSettings | None = None,
) -> logging.Logger:
    """Install (once) the fmf handler on the ``fmf_spark`` logger and return it.

    Args:
        fmt: ``human`` or ``json``; wins over the environment and the config.
        level: a level name; wins over the environment and the config.
        stream: where lines go (default: ``sys.stderr`` at the time of each line).
        config: ``config.observability`` (its ``log_format`` and ``log_level``).

    Example:
        >>> configure_logging(config=cfg.observability)  # doctest: +SKIP
    """
    global _configured
    fmt, level = resolve_settings(fmt, level, config)
    _configured = (fmt, level)
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    setattr(handler, _HANDLER_MARK, True)
    handler.setFormatter(JsonFormatter() if fmt == "json" else RedactingFormatter())
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = True
    _install_record_factory()
    return logger


def _install_record_factory() -> None:
    """Redact every record at creation, whoever logs it and whichever handler takes it.

    Filters on the root logger do not see records propagated from child loggers
    (botocore, azure, openai...), and handlers added later (a notebook's, pytest's) have
    none of ours; the record factory is the one place every record passes through.
    """
    current = logging.getLogRecordFactory()
    if getattr(current, _HANDLER_MARK, False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed %-format: leave it for logging to report
            return record
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return record

    setattr(factory, _HANDLER_MARK, True)
    logging.setLogRecordFactory(factory)


def get_logger(name: str) -> logging.Logger:
    """A child of the ``fmf_spark`` logger."""
    return logging.getLogger(name if name.startswith(LOGGER_NAME) else f"{LOGGER_NAME}.{name}")
