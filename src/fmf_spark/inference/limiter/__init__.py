"""The job-wide rate limiter: one quota, shared by every task of a Spark job.

Modules: :mod:`.bucket` (the schedule, GCRA), :mod:`.local` (the :class:`Limiter`
protocol and the in-process limiters), :mod:`.broker` (the driver's HTTP server) and
:mod:`.remote` (the task side of the broker).

How the quota is shared across executors
-----------------------------------------
A provider's RPM/TPM quota belongs to the deployment, not to a Spark task, so the
limiter must see every request of the job. :class:`QuotaBroker` is a tiny HTTP server
on the **driver** (bound to ``spark.driver.host``, the address executors already use to
reach the driver), holding one :class:`QuotaBucket` per provider. Before each call a
task asks the broker for a slot (``/reserve``: one round trip, a few hundred bytes); the
broker answers with the delay after which the task may send. After the call the task
reports what really happened (``/report``): the tokens the provider counted, a 429 and
its ``Retry-After``, the ``x-ratelimit-remaining-*`` headers, or a quota that will not
clear. Requests from every task on every node therefore pass through one scheduler, so
on a multi-node cluster the sum of all tasks' rates is the configured rate, whatever
the number of executors, tasks or threads, and whatever order Spark runs tasks in.
Executors reach the driver over the cluster network exactly as Spark's own RPC does
(Databricks and EMR allow node-to-node traffic inside the cluster); a per-job random
token in the pickled closure keeps other processes from drawing on the budget. When
executors cannot reach the driver, ``inference.limiter: static`` gives each task
``quota / tasks`` instead (correct only while all tasks run at once; slower otherwise).
``auto`` (the default) is the broker on a classic session and the static split on
Spark Connect, where the process running ``fmf`` is a client, not the driver; each
task's bucket still backs off on 429s and learns from the rate-limit headers.

The schedule
------------
:class:`QuotaBucket` is a two-dimensional GCRA (virtual scheduling) with no burst:
each admission moves the theoretical arrival time of the request dimension by
``1 / rate`` and of the token dimension by ``tokens / rate``, and a request may start
when both have passed. Without burst, any window of ``W`` seconds admits at most
``rate * W + one request``, so choosing ``rate <= (quota_per_window - 1 request) / W``
(and likewise for tokens, with the largest request seen) keeps every fixed window of
the provider within quota, wherever the provider's window boundaries fall. Rates aim at
``quota * (1 - headroom)`` (2 % by default): close to the quota, not at 429s.

Tokens are estimated the way Azure OpenAI documents its charge: prompt tokens plus
``max_tokens`` at admission; the report corrects the estimate with the prompt tokens the
provider reported, and for Bedrock (which gives back unused ``max_tokens``) with the
completion tokens too. What the provider really charges, and which share of the quota
someone else on the same deployment uses, is learned from its answers by the bucket's
:class:`~fmf_spark.inference.calibration.Calibration` (the ``x-ratelimit-remaining-*``
headers, and 429s): the bucket charges ``calibration.charge(estimate)`` and paces at
``calibration.request_share()`` / ``token_share()`` of the configured quota.

A 429 blocks the whole bucket until its ``Retry-After`` has passed; a response whose
``x-ratelimit-remaining-*`` headers say the provider's window is spent (another consumer
shares the quota, say) blocks it until the reset the headers give. A task thread whose
slot, granted earlier, falls inside such a block books a new one instead of sending
into a refusal (the broker's answers tell every task about the block).
A non-retryable quota exhaustion stops the bucket: every later reservation fails fast
with :class:`~fmf_spark.errors.QuotaExhausted` instead of calling the provider.
"""

from __future__ import annotations

from fmf_spark.errors import LimiterUnreachable
from fmf_spark.inference.limiter.broker import QuotaBroker
from fmf_spark.inference.limiter.bucket import Lease, QuotaBucket, QuotaSpec
from fmf_spark.inference.limiter.local import (
    Limiter,
    LimiterSpec,
    LocalLimiter,
    UnlimitedLimiter,
    make_limiter,
)
from fmf_spark.inference.limiter.remote import BrokerLimiter, BrokerSpec

__all__ = [
    "BrokerLimiter",
    "BrokerSpec",
    "Lease",
    "Limiter",
    "LimiterSpec",
    "LimiterUnreachable",
    "LocalLimiter",
    "QuotaBroker",
    "QuotaBucket",
    "QuotaSpec",
    "UnlimitedLimiter",
    "make_limiter",
]
