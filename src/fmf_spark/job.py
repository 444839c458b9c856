"""The ``fmf-job`` entry point: the ``fmf`` command for job runners that ignore return values.

A Databricks ``python_wheel_task`` loads the wheel's entry point and calls it
(``entry_point.load()()``); the value it returns is dropped, so ``fmf``'s exit code 2 on
a failed run would still mark the task green. This entry point runs the same command
and raises :class:`SystemExit` with the code when it is not 0, which fails the task
(and ends a console script with that code). Success returns ``None``: a job runner
that reports ``SystemExit(0)`` as an error never sees one.

Example (``resources/fmf_job.yml``)::

    python_wheel_task:
      package_name: fmf_spark
      entry_point: fmf-job
      parameters: [--profile, databricks, run, --chain, /Workspace/.../chains/sample.yaml]
"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> None:
    """Run ``fmf`` with ``argv`` (default: ``sys.argv[1:]``); raise ``SystemExit`` on failure.

    Args:
        argv: the ``fmf`` arguments; ``None`` reads them from ``sys.argv`` as a job
            runner sets them.

    Raises:
        SystemExit: with ``fmf``'s exit code, when that code is not 0.
    """
    from fmf_spark.cli import main as fmf_main

    code = fmf_main(argv)
    if code:
        raise SystemExit(code)
