"""``python -m fmf_spark.cli``: the ``fmf`` command."""

from __future__ import annotations

import sys

from fmf_spark.cli import main

sys.exit(main())
