"""A local OpenAI-, Azure OpenAI- and Bedrock-compatible endpoint with real quota rules.

Used by the ``local`` profile (``inference.simulator.autostart``), the tests and the
benchmarks; ``fmf simulator serve`` runs it on its own.

Example:
    >>> from fmf_spark.simulator import SimulatorServer, SimulatorSettings
    >>> with SimulatorServer(SimulatorSettings(requests_per_minute=60)) as sim:  # doctest: +SKIP
    ...     print(sim.url, sim.stats()["accepted"])
"""

from __future__ import annotations

import atexit
import threading
from typing import TYPE_CHECKING

from fmf_spark.simulator.server import SimulatorServer
from fmf_spark.simulator.settings import FaultRule, SimulatorSettings

if TYPE_CHECKING:
    from fmf_spark.config.models import FmfConfig

#: the provider key the ``local`` profile points at the in-process simulator
SIMULATOR_PROVIDER = "simulator"

_lock = threading.Lock()
_autostarted: SimulatorServer | None = None


def settings_from_config(config: FmfConfig) -> SimulatorSettings:
    """Simulator settings from ``inference.simulator``."""
    sim = config.inference.simulator
    return SimulatorSettings(
        host=sim.host,
        port=sim.port,
        requests_per_minute=sim.requests_per_minute,
        tokens_per_minute=sim.tokens_per_minute,
        latency_ms=sim.latency_ms,
        window_s=sim.window_s,
    )


def ensure_simulator(config: FmfConfig) -> FmfConfig:
    """Start the in-process simulator when the config asks for it; return the config to use.

    When ``inference.simulator.autostart`` is true and provider ``simulator`` is an
    ``openai`` provider without ``base_url``, starts one simulator for the process (it
    keeps running until the process exits) and returns a copy of the config whose
    ``simulator`` provider points at it. Otherwise returns ``config`` unchanged.

    The simulator listens on ``inference.simulator.host`` (loopback by default), so it
    serves executors on the same machine only (``local[*]``, ``local-cluster``).

    Example:
        >>> cfg = ensure_simulator(load_config(profile="local"))  # doctest: +SKIP
        >>> cfg.inference.providers["simulator"].base_url  # doctest: +SKIP
        'http://127.0.0.1:50123/v1'
    """
    global _autostarted
    from fmf_spark.config.inference import OpenAIProviderConfig

    provider = config.inference.providers.get(SIMULATOR_PROVIDER)
    if (
        not config.inference.simulator.autostart
        or not isinstance(provider, OpenAIProviderConfig)
        or provider.base_url is not None
    ):
        return config
    with _lock:
        if _autostarted is None:
            server = SimulatorServer(settings_from_config(config))
            server.start()
            atexit.register(server.stop)
            _autostarted = server
        url = _autostarted.openai_base_url
    providers = dict(config.inference.providers)
    providers[SIMULATOR_PROVIDER] = provider.model_copy(update={"base_url": url})
    inference = config.inference.model_copy(update={"providers": providers})
    return config.model_copy(update={"inference": inference})


__all__ = [
    "SIMULATOR_PROVIDER",
    "FaultRule",
    "SimulatorServer",
    "SimulatorSettings",
    "ensure_simulator",
    "settings_from_config",
]
