"""The composition root: build, precheck and wire the plug-ins a command needs.

Every entry point goes through here: the ``fmf`` commands, the notebook
(``notebooks/run_chain.py``) and the job entry points (``jobs/``). For a chain run,
:func:`run_chain` starts the run's record, then :func:`prepare` builds every connector,
provider and sink the chain names and prechecks all of them, **before any Spark job and
before the first paid call** (a bad credential, an unreachable sink or a missing SDK
fails in seconds, with ``run.yaml`` saying why), then hands them to the chain runner.

It also starts the local simulator: a provider of ``type: simulator`` without
``base_url`` gets an in-process simulator on loopback (one per distinct settings, kept
for the life of the process); the library layers never start a server.

Example (a notebook)::

    from fmf_spark.chains import load_chain
    from fmf_spark.cli import app
    from fmf_spark.config import load_config

    result = app.run_chain(spark, load_chain("chains/sample.yaml"), load_config())
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fmf_spark.chains.dry_run import dry_run as plan_calls
from fmf_spark.chains.plan import ChainPlan, plan_chain
from fmf_spark.chains.prompt_tests import run_prompt_tests as run_tests
from fmf_spark.chains.runner import ChainResult, ChainRun, Emit, RunParts
from fmf_spark.config.secrets import SecretResolver
from fmf_spark.connectors import DataConnector, get_connector
from fmf_spark.exporters import ExportResult, Sink
from fmf_spark.inference.providers import ProviderRuntime, build_provider
from fmf_spark.inference.simulator import SimulatorProviderConfig, SimulatorServerConfig
from fmf_spark.observability.logging import get_logger
from fmf_spark.processing.pipeline import ProcessResult, process
from fmf_spark.simulator import SimulatorServer, SimulatorSettings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from fmf_spark.chains.model import Chain
    from fmf_spark.config.models import FmfConfig
    from fmf_spark.prompts.model import PromptVersion
    from fmf_spark.prompts.registry import PromptRegistry
    from fmf_spark.prompts.testing import PromptTestResult

log = get_logger(__name__)


# --- the local simulator ------------------------------------------------------------------

#: running simulators by their settings (as JSON)
_simulators: dict[str, SimulatorServer] = {}
_simulators_lock = threading.Lock()


def simulator_settings(server: SimulatorServerConfig) -> SimulatorSettings:
    """The simulator's settings from a ``type: simulator`` provider's ``server`` section."""
    return SimulatorSettings(
        host=server.host,
        port=server.port,
        requests_per_minute=server.requests_per_minute,
        tokens_per_minute=server.tokens_per_minute,
        latency_ms=server.latency_ms,
        window_s=server.window_s,
        token_accounting=server.token_accounting,
    )


def _simulator(server: SimulatorServerConfig) -> SimulatorServer:
    """The in-process simulator for these settings, started on first use."""
    key = server.model_dump_json()
    with _simulators_lock:
        running = _simulators.get(key)
        if running is None:
            running = SimulatorServer(simulator_settings(server))
            running.start()
            atexit.register(running.stop)
            _simulators[key] = running
            log.info("simulator started on %s", running.url)
        return running


def start_simulators(config: FmfConfig, providers: Iterable[str]) -> FmfConfig:
    """Start a simulator for each named ``type: simulator`` provider without ``base_url``.

    Returns:
        ``config`` with those providers' ``base_url`` set to their simulator (``config``
        itself when nothing was started).
    """
    updates: dict[str, SimulatorProviderConfig] = {}
    for name in providers:
        cfg = config.inference.providers.get(name)
        if isinstance(cfg, SimulatorProviderConfig) and cfg.base_url is None:
            url = _simulator(cfg.server).url
            updates[name] = cfg.model_copy(update={"base_url": url})
    if not updates:
        return config
    inference = config.inference.model_copy(
        update={"providers": {**config.inference.providers, **updates}}
    )
    return config.model_copy(update={"inference": inference})


# --- building and prechecking -------------------------------------------------------------


@dataclass(frozen=True)
class Wiring:
    """Plug-ins built and prechecked for one command.

    Attributes:
        config: the config they were built from (simulator addresses filled in).
        resolver: the secret resolver they used.
        connectors: by name.
        providers: by name.
        sinks: by name.
    """

    config: FmfConfig
    resolver: SecretResolver
    connectors: dict[str, DataConnector]
    providers: dict[str, ProviderRuntime]
    sinks: dict[str, Sink]

    def parts(self, chain: Chain) -> RunParts:
        """What a run of ``chain`` uses."""
        return RunParts(
            connector=self.connectors[chain.inputs.connector],
            providers=self.providers,
            sinks=self.sinks,
        )


def prepare(
    config: FmfConfig,
    *,
    connectors: Sequence[str] = (),
    providers: Sequence[str] = (),
    sinks: Sequence[str] = (),
    resolver: SecretResolver | None = None,
) -> Wiring:
    """Build the named plug-ins and precheck every one, before any Spark job.

    Providers first (a missing SDK or extra, a secret that does not resolve: nothing is
    sent), then connectors (reachability, permissions) and sinks (reachability,
    permissions, target schema where it can be checked without Spark).

    Args:
        config: the loaded config.
        connectors: keys of ``connectors``.
        providers: keys of ``inference.providers``; a ``type: simulator`` one without
            ``base_url`` gets an in-process simulator.
        sinks: keys of ``exporters``.
        resolver: resolves secrets (default: from ``config.secrets``).

    Raises:
        FmfError: the first plug-in that cannot be built or fails its precheck.
    """
    resolver = resolver or SecretResolver(config.secrets)
    config = start_simulators(config, providers)
    built_providers = {name: build_provider(name, config, resolver) for name in providers}
    for provider in built_providers.values():
        provider.precheck()
    built_connectors = {name: get_connector(name, config, resolver) for name in connectors}
    for connector in built_connectors.values():
        connector.precheck()
    built_sinks = {name: Sink.build(name, config, resolver) for name in sinks}
    for sink in built_sinks.values():
        sink.precheck()
    return Wiring(config, resolver, built_connectors, built_providers, built_sinks)


def prepare_chain(plan: ChainPlan, resolver: SecretResolver | None = None) -> Wiring:
    """Build and precheck everything a validated chain names."""
    chain = plan.chain
    return prepare(
        plan.effective_config,
        connectors=[chain.inputs.connector],
        providers=sorted({step.provider for step in plan.steps}),
        sinks=list(dict.fromkeys(output.export for output in chain.outputs)),
        resolver=resolver,
    )


def _spark(spark: SparkSession | None, config: FmfConfig) -> SparkSession:
    if spark is not None:
        return spark
    from fmf_spark.spark import get_spark

    return get_spark(config)


# --- what the commands and entry points run -----------------------------------------------


def run_chain(
    spark: SparkSession | None,
    chain: Chain,
    config: FmfConfig,
    *,
    registry: PromptRegistry | None = None,
    artefacts_root: str | None = None,
    resolver: SecretResolver | None = None,
    emit: Emit | None = None,
) -> ChainResult:
    """Run ``chain`` end to end: validate, record, build and precheck, process, steps, export.

    A failed precheck is a failed run: ``run.yaml`` and the MLflow run record it, no
    Spark job has run and no model was called.

    Args:
        spark: the session; ``None`` builds one (:func:`fmf_spark.spark.get_spark`) once
            the prechecks passed.
        chain: the loaded chain.
        config: the merged config.
        registry: the prompt registry; default ``PromptRegistry(config.prompts.dir)``.
        artefacts_root: overrides ``config.artefacts.root``.
        resolver: resolves the secrets of the connector, providers, sinks and the OTLP
            headers.
        emit: where the stage summary lines go (``None``: only the log).
    """
    from fmf_spark.prompts.registry import PromptRegistry

    registry = registry or PromptRegistry(config.prompts.dir)
    plan = plan_chain(chain, config, registry)
    resolver = resolver or SecretResolver(plan.effective_config.secrets)
    with ChainRun(
        plan,
        registry,
        artefacts_root,
        resolve_secret=lambda ref: resolver.resolve(ref).get_secret_value(),
    ) as run:
        wiring = prepare_chain(plan, resolver)
        run.execute(_spark(spark, wiring.config), wiring.parts(chain), emit)
    return run.result


def dry_run(
    spark: SparkSession | None,
    chain: Chain,
    config: FmfConfig,
    *,
    registry: PromptRegistry | None = None,
    artefacts_root: str | None = None,
    resolver: SecretResolver | None = None,
) -> ChainResult:
    """Plan ``chain`` without calling a model (see :func:`fmf_spark.chains.dry_run.dry_run`);
    only its connector is built and prechecked."""
    from fmf_spark.prompts.registry import PromptRegistry

    registry = registry or PromptRegistry(config.prompts.dir)
    plan = plan_chain(chain, config, registry)
    wiring = prepare(plan.effective_config, connectors=[chain.inputs.connector], resolver=resolver)
    return plan_calls(
        _spark(spark, wiring.config),
        chain,
        config,
        registry=registry,
        artefacts_root=artefacts_root,
        connector=wiring.connectors[chain.inputs.connector],
    )


def run_prompt_tests(
    spark: SparkSession | None,
    version: PromptVersion,
    config: FmfConfig,
    *,
    provider: str | None = None,
) -> list[PromptTestResult]:
    """Run a prompt version's tests against ``provider`` (default: the default provider)."""
    from fmf_spark.errors import ConfigError

    name = provider or config.inference.default_provider
    if name is None:
        raise ConfigError("no provider: pass --provider or set inference.default_provider")
    wiring = prepare(config, providers=[name])
    return run_tests(
        _spark(spark, wiring.config),
        version,
        wiring.config,
        provider=name,
        runtime=wiring.providers[name],
    )


def process_files(
    spark: SparkSession | None,
    config: FmfConfig,
    connector: str,
    selector: str | Sequence[str] | None,
    run_dir: str,
) -> ProcessResult:
    """Parse and chunk a connector's files into ``run_dir`` (``fmf process``)."""
    wiring = prepare(config, connectors=[connector])
    return process(
        _spark(spark, config),
        config,
        connector,
        selector,
        run_dir,
        connector=wiring.connectors[connector],
    )


def export(
    spark: SparkSession | None,
    config: FmfConfig,
    sink: str,
    input_path: str,
    *,
    run_id: str,
    checkpoint_root: str | None = None,
) -> ExportResult:
    """Export a run's outputs table to one sink (``fmf export``), prechecked first."""
    wiring = prepare(config, sinks=[sink])
    return wiring.sinks[sink].export(
        _spark(spark, config), input_path, run_id=run_id, checkpoint_root=checkpoint_root
    )
