"""Fail when the line coverage of a critical package falls under its floor.

Reads the JSON report of pytest-cov (``--cov=fmf_spark --cov-report=json:coverage.json``)
and sums statements per package. Coverage is what the driver process runs: code that
only runs in Spark's Python workers (inside pandas UDFs, ``mapInPandas``) is executed in
other processes and is not counted, so a floor is set a little under what the suite
measures, not at 100 %.

Usage: python scripts/coverage_floors.py [coverage.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

#: package (path under src/fmf_spark/) -> the lowest line coverage, in percent, CI accepts;
#: about 3 points under what the suite measured for 0.1.0 (in brackets), so a test that
#: takes another retry path on a busy machine does not fail the build, but a new module
#: without tests does
FLOORS: dict[str, float] = {
    "config": 88.0,  # with the secret providers, config/secrets.py (91.6)
    "inference": 82.0,  # (85.6)
    "exporters": 73.0,  # (76.7)
    "chains": 92.0,  # (95.3)
}


def package_of(path: str) -> str | None:
    parts = Path(path).parts
    if "fmf_spark" not in parts:
        return None
    rest = parts[parts.index("fmf_spark") + 1 :]
    return rest[0] if len(rest) > 1 else None


def main(argv: list[str]) -> int:
    report = json.loads(Path(argv[0] if argv else "coverage.json").read_text())
    covered: dict[str, int] = {}
    statements: dict[str, int] = {}
    for path, data in report["files"].items():
        package = package_of(path)
        if package is None:
            continue
        summary = data["summary"]
        covered[package] = covered.get(package, 0) + summary["covered_lines"]
        statements[package] = statements.get(package, 0) + summary["num_statements"]

    failed = []
    print(f"{'package':<14} {'lines':>6} {'cover':>7} {'floor':>7}")
    for package in sorted(statements):
        percent = 100.0 * covered[package] / max(statements[package], 1)
        floor = FLOORS.get(package)
        mark = ""
        if floor is not None and percent < floor:
            failed.append(package)
            mark = "  < floor"
        floor_text = f"{floor:6.1f}%" if floor is not None else "      -"
        print(f"{package:<14} {statements[package]:>6} {percent:6.1f}% {floor_text}{mark}")
    missing = sorted(set(FLOORS) - set(statements))
    for package in missing:
        print(f"coverage: no measured file in package '{package}', which has a floor")
    if failed or missing:
        print(f"coverage: under the floor: {', '.join(failed + missing)}")
        return 1
    print("coverage: every critical package is at or above its floor")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
