"""``python -m fmf_spark``: the ``fmf`` command, for when the script is not on PATH."""

from __future__ import annotations

import sys

from fmf_spark.cli import main

if __name__ == "__main__":
    sys.exit(main())
