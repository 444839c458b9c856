"""The price table: USD per model, from ``inference.prices`` in the config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fmf_spark.config.inference import ModelPrice
    from fmf_spark.config.models import FmfConfig


def price_for(model: str, prices: Mapping[str, ModelPrice]) -> ModelPrice | None:
    """The price of ``model``; a Bedrock regional prefix (``us.``, ``eu.``...) is ignored."""
    if model in prices:
        return prices[model]
    head, _, rest = model.partition(".")
    if rest and len(head) == 2 and rest in prices:
        return prices[rest]
    return None


def compute_cost(
    model: str, prompt_tokens: int, completion_tokens: int, prices: Mapping[str, ModelPrice]
) -> float | None:
    """USD for one call, or ``None`` when the model is not in the price table."""
    price = price_for(model, prices)
    if price is None:
        return None
    return round(
        prompt_tokens / 1000.0 * price.input_per_1k
        + completion_tokens / 1000.0 * price.output_per_1k,
        10,
    )


def cost_usd(
    model: str, prompt_tokens: int, completion_tokens: int, config: FmfConfig
) -> float | None:
    """USD for one call at the prices of ``config.inference.prices``.

    Example:
        >>> cost_usd("gpt-4o-mini", 1000, 500, cfg)  # doctest: +SKIP
        0.00045
    """
    return compute_cost(model, prompt_tokens, completion_tokens, config.inference.prices)
