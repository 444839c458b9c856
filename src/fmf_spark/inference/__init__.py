"""The inference layer: provider clients, the shared rate limiter, the batch runner.

- :func:`infer` / :class:`InferenceStep`: call a model once per row of a DataFrame
  (``mapInPandas``), with a job-wide quota, retries, a ``request_id`` cache, costs;
  :func:`infer_step` (a :class:`StepResult`) for a caller that acts between the calls
  and the result.
- :class:`RetryingClient` over the provider adapters (:mod:`.azure_openai` for Azure
  OpenAI and OpenAI-compatible endpoints, :mod:`.bedrock` for Bedrock Converse,
  :mod:`.simulator` for the local simulator); a provider type is one module: its config
  model, its client factory and one :func:`register_provider` call.
- :func:`estimate_prompt_tokens` (the chain dry-run's token estimate) and
  :func:`cost_usd` (the price table).

Importing this package does not import pyspark or any provider SDK.
"""

from __future__ import annotations

from fmf_spark.errors import QuotaExhausted
from fmf_spark.inference.base import (
    Completion,
    CompletionParams,
    LLMClient,
    Message,
    RateLimitInfo,
    parse_messages,
)
from fmf_spark.inference.client import RetryingClient, RetryPolicy
from fmf_spark.inference.cost import compute_cost, cost_usd
from fmf_spark.inference.limiter import QuotaBroker, QuotaBucket, QuotaSpec
from fmf_spark.inference.metrics import OutputMetrics, output_metrics
from fmf_spark.inference.providers import (
    ProviderRuntime,
    build_provider,
    register_provider,
    registered_providers,
)
from fmf_spark.inference.runner import (
    InferenceStep,
    StepResult,
    infer,
    infer_step,
    inference_metrics,
    request_id,
)
from fmf_spark.inference.tokens import (
    count_tokens,
    estimate_prompt_tokens,
    estimate_request_tokens,
)

__all__ = [
    "Completion",
    "CompletionParams",
    "InferenceStep",
    "LLMClient",
    "Message",
    "OutputMetrics",
    "ProviderRuntime",
    "QuotaBroker",
    "QuotaBucket",
    "QuotaExhausted",
    "QuotaSpec",
    "RateLimitInfo",
    "RetryPolicy",
    "RetryingClient",
    "StepResult",
    "build_provider",
    "compute_cost",
    "cost_usd",
    "count_tokens",
    "estimate_prompt_tokens",
    "estimate_request_tokens",
    "infer",
    "infer_step",
    "inference_metrics",
    "output_metrics",
    "parse_messages",
    "register_provider",
    "registered_providers",
    "request_id",
]
