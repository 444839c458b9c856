"""Token counts the way the providers charge them for rate limiting.

Azure OpenAI and OpenAI count a chat request's prompt as the tokens of every message
plus a small per-message framing overhead (3 tokens per message, 3 to prime the
reply); the TPM limiter charges ``prompt + max_tokens`` at admission. Text is counted
in the ``o200k_base`` encoding (GPT-4o family) by the one token counter of the package,
:func:`fmf_spark.processing.tokens.count_tokens` (``bpe-openai``, offline). Bedrock
counts with the model's own tokenizer, which we cannot reproduce exactly; the estimate
is corrected by the reported usage.

Without ``bpe-openai`` counting fails with the pip command that installs it, on
purpose: a guess (characters / 3) would under-charge text that tokenizes densely (CJK,
code) and send the job into 429s, and would make dry-run costs wrong. The provider
extras carry ``bpe-openai``, and a provider's precheck counts once on the driver, so a
missing tokenizer stops the run before any Spark job.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from fmf_spark.processing.tokens import count_tokens

#: framing tokens the OpenAI chat format adds per message and to prime the answer
TOKENS_PER_MESSAGE = 3
TOKENS_REPLY_PRIMING = 3
#: the encoding of every supported model's estimate
ENCODING = "o200k_base"


def message_text(content: Any) -> str:
    """The text of a message's content (a string, or a list of text parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, Mapping):
                parts.append(str(part.get("text", "")))
            else:
                parts.append(str(part))
        return "".join(parts)
    return "" if content is None else str(content)


def estimate_prompt_tokens(messages: str | Iterable[Mapping[str, Any]], model: str = "") -> int:
    """Estimate the prompt tokens a provider charges for a chat request.

    Args:
        messages: the chat messages, as a list of ``{"role", "content"}`` mappings or
            its JSON string (the ``messages`` column of the runner's input).
        model: the model name (reserved: every supported model is counted with
            ``o200k_base`` today).

    Returns:
        The estimated prompt tokens, framing included.

    Example:
        >>> estimate_prompt_tokens([{"role": "user", "content": "Hello"}]) >= 1
        True
    """
    items: Iterable[Any] = json.loads(messages) if isinstance(messages, str) else messages
    total = TOKENS_REPLY_PRIMING
    for message in items:
        total += TOKENS_PER_MESSAGE
        total += count_tokens(message_text(message.get("content")), ENCODING)
    return total


def estimate_request_tokens(
    messages: str | Iterable[Mapping[str, Any]], max_tokens: int, model: str = ""
) -> int:
    """What the TPM limiter charges at admission: prompt tokens + ``max_tokens``."""
    return estimate_prompt_tokens(messages, model) + max(0, int(max_tokens))


__all__ = [
    "ENCODING",
    "TOKENS_PER_MESSAGE",
    "TOKENS_REPLY_PRIMING",
    "count_tokens",
    "estimate_prompt_tokens",
    "estimate_request_tokens",
    "message_text",
]
