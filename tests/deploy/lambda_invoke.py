"""Invoke the Lambda handler twice in one process, as the Lambda runtime would.

Run inside the sandbox of tests/deploy/test_lambda.py: ``python lambda_invoke.py <event
1 JSON> <event 2 JSON>``. Prints one JSON line: the two results and the timings (module
import = the function's init; the first invocation starts Spark = the cold start; the
second reuses the session = a warm invocation).
"""

from __future__ import annotations

import json
import sys
import time

t0 = time.perf_counter()
from fmf_spark.jobs.lambda_handler import handler  # noqa: E402  (timed: the init phase)

t1 = time.perf_counter()
first = handler(json.loads(sys.argv[1]), None)
t2 = time.perf_counter()
second = handler(json.loads(sys.argv[2]), None)
t3 = time.perf_counter()
print(
    "INVOKED "
    + json.dumps(
        {
            "results": [first, second],
            "init_s": round(t1 - t0, 2),
            "first_s": round(t2 - t1, 2),
            "second_s": round(t3 - t2, 2),
        }
    ),
    flush=True,
)
