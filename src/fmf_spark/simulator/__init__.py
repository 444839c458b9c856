"""A local OpenAI-, Azure OpenAI- and Bedrock-compatible endpoint with real quota rules.

Used by providers of ``type: simulator`` (the ``local`` profile: the composition root
starts one in-process, see :mod:`fmf_spark.cli.app`), the tests and the benchmarks;
``fmf simulator serve`` runs it on its own.

Example:
    >>> from fmf_spark.simulator import SimulatorServer, SimulatorSettings
    >>> with SimulatorServer(SimulatorSettings(requests_per_minute=60)) as sim:  # doctest: +SKIP
    ...     print(sim.url, sim.stats()["accepted"])
"""

from __future__ import annotations

from fmf_spark.simulator.server import SimulatorServer
from fmf_spark.simulator.settings import FaultRule, SimulatorSettings

__all__ = ["FaultRule", "SimulatorServer", "SimulatorSettings"]
