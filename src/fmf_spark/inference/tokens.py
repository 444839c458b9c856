"""Token counts the way the providers charge them for rate limiting.

Azure OpenAI and OpenAI count a chat request's prompt as the tokens of every message
plus a small per-message framing overhead (3 tokens per message, 3 to prime the
reply); the TPM limiter charges ``prompt + max_tokens`` at admission. We use the
``o200k_base`` encoding (GPT-4o family) through ``bpe-openai`` when it is installed and
fall back to a conservative 1 token per 3 characters otherwise, so an estimate is never
far below what the provider charges. Bedrock counts with the model's own tokenizer,
which we cannot reproduce exactly; the estimate is corrected by the reported usage.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from typing import Any

#: framing tokens the OpenAI chat format adds per message and to prime the answer
TOKENS_PER_MESSAGE = 3
TOKENS_REPLY_PRIMING = 3


@functools.lru_cache(maxsize=1)
def _encoder() -> Any:
    try:
        import bpe_openai
    except ImportError:
        return None
    return bpe_openai.get_encoding("o200k_base")


def count_tokens(text: str) -> int:
    """Tokens of ``text`` in ``o200k_base`` (or ceil(len/3) without the tokenizer)."""
    if not text:
        return 0
    encoder = _encoder()
    if encoder is None:
        return -(-len(text) // 3)
    return len(encoder.encode(text, disallowed_special=()))


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
        total += count_tokens(message_text(message.get("content")))
    return total


def estimate_request_tokens(
    messages: str | Iterable[Mapping[str, Any]], max_tokens: int, model: str = ""
) -> int:
    """What the TPM limiter charges at admission: prompt tokens + ``max_tokens``."""
    return estimate_prompt_tokens(messages, model) + max(0, int(max_tokens))
