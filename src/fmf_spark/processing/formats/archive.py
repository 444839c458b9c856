"""ZIP archives (stdlib ``zipfile``): the members become child documents.

The archive's own text is a table of its members (name, size). Members are handed out
one at a time (a generator), each read only when the parse stage takes it, so a large
archive is never held inflated. Refused before anything is inflated: a compression
ratio over ``max_compression_ratio`` (a zip bomb). Refused member by member, as error
rows: unsafe names (absolute paths, ``..``, drive letters: path traversal),
encrypted members, members that claim more bytes than ``max_file_bytes``. Directory
entries and macOS resource forks (``__MACOSX/``) are skipped.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator

from fmf_spark.config.processing import ProcessingConfig
from fmf_spark.processing import text as types
from fmf_spark.processing.base import Child, Loaded, LoaderSpec, register_loader
from fmf_spark.processing.loaders import check_zip, markdown_table, max_unzipped
from fmf_spark.processing.text import ParseFailure

_DRIVE = re.compile(r"^[A-Za-z]:")


def unsafe_name(name: str) -> str | None:
    """Why a member name is unsafe to use as a path, or None when it is safe."""
    if "\x00" in name:
        return "a NUL byte in the name"
    normal = name.replace("\\", "/")
    if normal.startswith("/") or _DRIVE.match(normal):
        return "an absolute path"
    if any(part == ".." for part in normal.split("/")):
        return "a '..' path component (path traversal)"
    return None


def _skipped(info: zipfile.ZipInfo) -> bool:
    name = info.filename
    return info.is_dir() or name.startswith("__MACOSX/") or name.rsplit("/", 1)[-1] == ".DS_Store"


def _members(data: bytes, infos: list[zipfile.ZipInfo], cfg: ProcessingConfig) -> Iterator[Child]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in infos:
            name = info.filename
            reason = unsafe_name(name)
            if reason is not None:
                yield Child(name, error=("processing.unsafe_path", f"member refused: {reason}"))
            elif info.flag_bits & 0x1:
                yield Child(
                    name, error=("processing.encrypted", "password-protected archive member")
                )
            elif info.file_size > cfg.max_file_bytes:
                yield Child(
                    name,
                    error=(
                        "processing.too_large",
                        f"{info.file_size} bytes is over processing.max_file_bytes="
                        f"{cfg.max_file_bytes}",
                    ),
                )
            else:
                try:
                    yield Child(name, zf.read(info))
                except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
                    yield Child(name, error=("processing.corrupt", f"member unreadable: {exc}"))
                except NotImplementedError as exc:  # an unsupported compression method
                    yield Child(name, error=("processing.unsupported_type", str(exc)))


def load_zip(data: bytes, cfg: ProcessingConfig) -> Loaded:
    """A zip archive: a table of its members as text, the members as children."""
    check_zip(data, cfg.max_compression_ratio, max_unzipped(cfg))
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = [i for i in zf.infolist() if not _skipped(i)]
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise ParseFailure(f"ZIP: {exc}", code="processing.corrupt") from None
    rows: list[list[object]] = [["member", "bytes"]]
    rows.extend([i.filename, i.file_size] for i in infos)
    text = "# Archive\n\n" + (markdown_table(rows) if infos else "(empty)")
    meta = {"members": str(len(infos))}
    return Loaded(text, metadata=meta, children=_members(data, infos, cfg))


register_loader(LoaderSpec(types.ZIP, load_zip, ("zip",)))
