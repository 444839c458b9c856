"""The error family of fmf_spark.

One base, :class:`FmfError`, and one subclass per failure kind. Retryable inference
failures are their own classes so the retry policy can branch on type, not on strings.
Every error carries a stable ``code`` (the value written to ``error.code`` on a failed
row) and an optional ``hint`` that tells the user what to do next; the CLI prints
``code: message (hint)`` on one line.

Messages must never contain secret values: the CLI and the log handlers pass them
through :func:`fmf_spark.observability.redaction.redact` as a last line of defence, but
code raising these errors should not put secrets in them in the first place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fmf_spark.inference.base import Completion, RateLimitInfo

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

    # Errors cross process boundaries (Spark's Python workers, the Py4J callback of
    # ``foreachBatch``): rebuild from the message, then restore every declared field.
    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message,), self.__getstate__())

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __setstate__(self, state: dict[str, Any] | None) -> None:
        self.__dict__.update(state or {})


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
