"""Fixtures of the chain tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fmf_spark.simulator import SimulatorServer, SimulatorSettings


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    """A simulator without quotas or latency, for the tests of one module (each resets
    its counters and faults as it needs)."""
    server = SimulatorServer(
        SimulatorSettings(latency_ms=0, requests_per_minute=None, tokens_per_minute=None)
    )
    server.start()
    yield server
    server.stop()
