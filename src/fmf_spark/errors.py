"""The error family of fmf_spark.

One base, :class:`FmfError`, and one subclass per failure kind. Retryable inference
failures are their own classes so the retry policy can branch on type, not on strings.
Every error carries a stable ``code`` (the value written to ``error.code`` on a failed
row) and an optional ``hint`` that tells the user what to do next; the CLI prints
``code: message (hint)`` on one line.

Messages must never contain secret values: the CLI and the log handlers pass them
through :func:`fmf_spark.observability.redaction.redact` as a last line of defence, but
code raising these errors should not put secrets in them in the first place.

An error raised inside a Spark Python worker (a pandas UDF, ``mapInPandas``) reaches
the driver only as text: the worker's traceback inside a ``PythonException`` or a
``Py4JJavaError``. So every error carries a note (printed with its traceback) of one
line, ``fmf-error: {json}``, from which :func:`recover_error` rebuilds it on the driver;
the CLI then prints the same one line as for an error raised on the driver. Errors
also pickle with their code, hint and type.
"""

from __future__ import annotations

import importlib
import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fmf_spark.inference.base import Completion, RateLimitInfo

#: how the note of an error starts (see :meth:`FmfError.marker`)
MARKER = "fmf-error: "
_MARKER_LINE = re.compile(r"^\s*" + re.escape(MARKER) + r"(\{.*\})\s*$", re.MULTILINE)

#: longest error message kept on a row (the ``error.message`` of a failed row)
MAX_ERROR_CHARS = 2000


def error_struct(
    code: str, message: str, retryable: bool = False, *, max_chars: int = MAX_ERROR_CHARS
) -> dict[str, Any]:
    """The ``error`` struct of a failed row (:data:`fmf_spark.schemas.ERROR_STRUCT`).

    The one place an error becomes row data: messages longer than ``max_chars`` are cut
    (ending in ``...``) so one bad answer cannot bloat a table.

    Example:
        >>> error_struct("processing.empty", "the file is empty")
        {'code': 'processing.empty', 'message': 'the file is empty', 'retryable': False}
    """
    if len(message) > max_chars:
        message = message[:max_chars] + "..."
    return {"code": code, "message": message, "retryable": bool(retryable)}


class FmfError(Exception):
    """Base of every error fmf_spark raises on purpose.

    Args:
        message: what happened, in one sentence.
        code: stable machine-readable code (``config.invalid``, ``inference.rate_limited``...).
        hint: what the user can do about it.
        retryable: whether trying the same thing again may succeed.
    """

    code: str = "fmf.error"
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        hint: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.hint = hint
        if retryable is not None:
            self.retryable = retryable
        if hasattr(self, "add_note"):  # Python 3.11+; 3.10 falls back to the class name
            self.add_note(self.marker())

    def marker(self) -> str:
        """The note a traceback of this error carries: ``fmf-error: {json}``, one line."""
        cls = type(self)
        return MARKER + json.dumps(
            {
                "type": f"{cls.__module__}.{cls.__qualname__}",
                "code": self.code,
                "message": self.message,
                "hint": self.hint,
                "retryable": self.retryable,
            },
            sort_keys=True,
        )

    # Errors cross process boundaries (Spark's Python workers, the Py4J callback of
    # ``foreachBatch``): pickle by state, not by calling __init__ (subclasses take other
    # arguments); a subclass drops what must not travel in ``__getstate__``.
    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args, self.__getstate__()))

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def one_line(self) -> str:
        """The message as the CLI prints it: ``code: message (hint: ...)``."""
        text = f"{self.code}: {self.message}"
        if self.hint:
            text += f" (hint: {self.hint})"
        return " ".join(text.split("\n"))

    def to_struct(self, message: str | None = None) -> dict[str, Any]:
        """This error as the ``error`` struct of a failed row (see :func:`error_struct`).

        Args:
            message: the text to keep instead of :attr:`message` (a redacted copy).
        """
        return error_struct(self.code, self.message if message is None else message, self.retryable)


def _rebuild(cls: type[FmfError], args: tuple[Any, ...], state: dict[str, Any]) -> FmfError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


def recover_error(exc: BaseException) -> FmfError | None:
    """The :class:`FmfError` behind ``exc``, when it is one or wraps one as text.

    Spark hands an error raised in a Python worker to the driver as a
    ``PythonException``/``Py4JJavaError`` (or a ``StreamingQueryException`` from a
    ``foreachBatch``) whose text holds the worker's traceback; the last
    ``fmf-error:`` note in it (the error the worker raised last) is rebuilt as an
    error of the same class, code, message and hint. Causes and contexts are searched
    too. ``None`` when there is no FmfError to find.

    Example:
        >>> try:
        ...     spark_job_that_raises_in_a_worker()  # doctest: +SKIP
        ... except Exception as exc:
        ...     print(recover_error(exc).one_line())  # doctest: +SKIP
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, FmfError):
            return current
        found = _from_text(str(current))
        if found is not None:
            return found
        current = current.__cause__ or current.__context__
    return None


def _from_text(text: str) -> FmfError | None:
    matches = _MARKER_LINE.findall(text)
    if not matches:
        return None
    try:
        data = json.loads(matches[-1])
        message = str(data["message"])
    except (ValueError, KeyError, TypeError):
        return None
    error = _rebuild(_error_class(str(data.get("type", ""))), (message,), {})
    error.message = message
    error.code = str(data.get("code") or error.code)
    error.hint = data.get("hint")
    error.retryable = bool(data.get("retryable", error.retryable))
    return error


def _error_class(path: str) -> type[FmfError]:
    """The class a marker names, if it is an FmfError of this package; else FmfError."""
    module, _, name = path.rpartition(".")
    if module.split(".")[0] != "fmf_spark":
        return FmfError
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return FmfError
    return cls if isinstance(cls, type) and issubclass(cls, FmfError) else FmfError


# --- configuration and secrets -------------------------------------------------------------


class ConfigError(FmfError):
    """The configuration file, a profile, an environment override or ``--set`` is wrong."""

    code = "config.invalid"


class MissingExtraError(FmfError):
    """An optional dependency is not installed; the message holds the pip command."""

    code = "config.missing_extra"


class SecretError(FmfError):
    """A logical secret name could not be resolved by its provider."""

    code = "secret.unresolved"


# --- connectors and processing ------------------------------------------------------------


class ConnectorError(FmfError):
    """Listing or reading a source failed (auth, not found, throttled...)."""

    code = "connector.error"


class ConnectorThrottled(ConnectorError):
    """The source asked us to slow down (HTTP 429/503); retryable."""

    code = "connector.throttled"
    retryable = True


class ProcessingError(FmfError):
    """A document could not be parsed or chunked; becomes an error row, not a crash."""

    code = "processing.error"


class ParseFailure(ProcessingError):
    """A document that cannot be turned into text; ``code`` says why."""


class ParseTimeout(ParseFailure):
    """Parsing one file took longer than ``processing.parse_timeout_s``."""

    code = "processing.timeout"


# --- inference --------------------------------------------------------------------------


class InferenceError(FmfError):
    """A model call failed.

    Args:
        message: what happened (``code``, ``hint``, ``retryable``: see :class:`FmfError`).
        attempts: calls made for the request before it failed (set by the retry policy).
        elapsed_ms: time spent on the request, retries and waits included.
        completion: the answer that failed validation (:class:`InvalidOutput`): its
            tokens were paid for.
        rate_limit: the provider's ``x-ratelimit-*`` headers on the failed answer; the
            limiter adapts to failed calls too.
    """

    code = "inference.error"

    def __init__(
        self,
        message: str,
        *,
        attempts: int = 0,
        elapsed_ms: int | None = None,
        completion: Completion | None = None,
        rate_limit: RateLimitInfo | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.attempts = attempts
        self.elapsed_ms = elapsed_ms
        self.completion = completion
        self.rate_limit = rate_limit


class RetryableInferenceError(InferenceError):
    """A model call failed in a way that may succeed when tried again.

    Args:
        retry_after: seconds the provider asked us to wait (``Retry-After`` /
            ``retry-after-ms``); other arguments as :class:`InferenceError`.
    """

    code = "inference.transient"
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class RateLimited(RetryableInferenceError):
    """HTTP 429 or ``ThrottlingException``: over the RPM/TPM quota for now."""

    code = "inference.rate_limited"


class Transient(RetryableInferenceError):
    """5xx, 408, timeouts, connection errors, ``ServiceUnavailableException``."""

    code = "inference.transient"


class QuotaExhausted(InferenceError):
    """A quota that will not clear soon (daily quota, ``CapacityLimitExceeded``).

    Not retryable: the job stops with this message rather than looping. When the batch
    runner raises it, :attr:`partial` holds the outputs DataFrame of the requests made
    so far (what was paid for), so the caller can save them; it stays on the driver and
    is left out when the error is pickled.
    """

    code = "inference.quota_exhausted"

    def __init__(self, message: str, *, partial: Any = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.partial = partial

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["partial"] = None  # a DataFrame belongs to its driver
        return state


class ContentFiltered(InferenceError):
    """The provider refused the prompt or filtered the completion."""

    code = "inference.content_filtered"


class ContextLengthExceeded(InferenceError):
    """The prompt does not fit the model's context window."""

    code = "inference.context_length"


class InvalidRequest(InferenceError):
    """HTTP 400 / ``ValidationException``: the request itself is wrong."""

    code = "inference.invalid_request"


class AuthError(InferenceError):
    """401/403 from the provider: bad key, expired token, missing role."""

    code = "inference.auth"


class InvalidOutput(InferenceError):
    """The model's answer is not valid JSON for the requested schema."""

    code = "inference.invalid_output"


class LimiterUnreachable(InferenceError):
    """The quota broker on the driver cannot be reached from this executor."""

    code = "inference.limiter_unreachable"
    retryable = True


# --- prompts and chains -----------------------------------------------------------------


class PromptError(FmfError):
    """A prompt file, reference or version is wrong."""

    code = "prompt.invalid"


class ChainError(FmfError):
    """A chain file is wrong, or a step failed beyond its allowed failure ratio."""

    code = "chain.invalid"


# --- exporters --------------------------------------------------------------------------


class ExportError(FmfError):
    """Writing to a sink failed."""

    code = "export.error"


class ExportAuthError(ExportError):
    code = "export.auth"


class ExportSchemaMismatch(ExportError):
    code = "export.schema_mismatch"


class ExportThrottled(ExportError):
    code = "export.throttled"
    retryable = True


class ExportConflict(ExportError):
    code = "export.conflict"
    retryable = True


class ItemTooLarge(ExportError):
    code = "export.item_too_large"
