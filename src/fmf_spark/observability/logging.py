"""Log formats (``human`` or ``json``) with secret redaction on every record.

``configure_logging()`` installs one handler on the ``fmf_spark`` logger. The format
comes from the argument, else ``FMF_LOG_FORMAT``, else ``human``. Redaction runs in
the formatter, after the message, its arguments and any traceback are rendered, so a
secret cannot slip through ``%s`` arguments or an exception's text.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime, timezone
from typing import IO, Any

from fmf_spark.observability.redaction import redact

LOGGER_NAME = "fmf_spark"
_HANDLER_MARK = "_fmf_handler"


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


def configure_logging(
    fmt: str | None = None, level: str | int = "INFO", stream: IO[str] | None = None
) -> logging.Logger:
    """Install (once) the fmf handler on the ``fmf_spark`` logger and return it."""
    fmt = (fmt or os.environ.get("FMF_LOG_FORMAT") or "human").lower()
    if fmt not in ("human", "json"):
        fmt = "human"
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
