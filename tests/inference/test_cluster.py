"""The quota is shared across executor processes: ``local-cluster[2,1,1024]``.

The session fixture is ``local[2]``; a cluster needs its own SparkSession, so the job runs
in a subprocess (:mod:`tests.inference.cluster_job`) and reports the simulator's stats.
"""

from __future__ import annotations

import pytest

from tests.inference.conftest import run_job


@pytest.mark.cluster
@pytest.mark.slow
def test_two_executors_never_exceed_the_quota_together() -> None:
    rows = 40
    result = run_job("tests.inference.cluster_job", str(rows))
    stats = result["stats"]
    # both executor processes ran tasks
    tasks = result["tasks_by_executor"]
    assert len(tasks) == 2 and all(n > 0 for n in tasks.values()), tasks
    assert result["rows"] == rows and result["statuses"] == ["ok"]
    # 8 concurrent threads over two processes, 10 requests per 2 s window allowed:
    # one broker schedule keeps every window within quota, so no request is refused
    assert stats["rejected_429"] == 0
    assert stats["accepted"] == stats["requests"] == result["attempts"] == rows
    assert stats["max_requests_per_window"] <= 10
