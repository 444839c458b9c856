"""The YAML prompt registry: load, validate, resolve references, register versions.

Prompts live in one folder (``prompts.dir``, default ``prompts/``), one file per prompt
id. ``registry.lock`` in the same folder records every *registered* version with its
content hash; a registered version is immutable: registering it again with different
content is refused, and a file edited after registration fails to load that version,
so a run can never use content other than what its hash says.

References: ``id#version`` pins a version, ``id@latest`` takes the highest version label
(natural order: ``2`` < ``10``, ``1.2`` < ``1.10``).

Example:
    >>> registry = PromptRegistry("prompts")  # doctest: +SKIP
    >>> registry.get("summarize_chunk#1").content_hash  # doctest: +SKIP
    '3f1c...'
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from fmf_spark.errors import FmfError, PromptError
from fmf_spark.observability.logging import get_logger
from fmf_spark.prompts.model import (
    ID_PATTERN,
    VERSION_PATTERN,
    PromptFile,
    PromptVersion,
)
from fmf_spark.prompts.template import parse_template
from fmf_spark.storage import join_uri, local_folder, local_path

LOCK_FILE = "registry.lock"
#: what a prompt folder holds: one YAML file per prompt, and the lock
PROMPT_FILES = ("*.yaml", "*.yml", LOCK_FILE)
LATEST = "latest"
_REF = re.compile(r"^(?P<id>[^#@\s]+)(?:#(?P<version>[^#@\s]+)|@(?P<alias>[^#@\s]+))$")

log = get_logger(__name__)


@dataclass(frozen=True)
class PromptRef:
    """A parsed reference: ``id#version`` or ``id@latest``."""

    id: str
    version: str | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, text: str) -> PromptRef:
        """Parse ``id#version`` or ``id@latest``.

        Raises:
            PromptError: anything else (a bare id is refused: say which version you mean).
        """
        match = _REF.match(text.strip())
        if match is None:
            raise PromptError(
                f"bad prompt reference '{text}'",
                hint="write <id>#<version> (e.g. summarize_chunk#1) or <id>@latest",
            )
        alias = match.group("alias")
        if alias is not None and alias != LATEST:
            raise PromptError(
                f"unknown prompt alias '@{alias}' in '{text}'", hint="the only alias is @latest"
            )
        if not re.match(ID_PATTERN, match.group("id")):
            raise PromptError(f"bad prompt id in '{text}': must match {ID_PATTERN}")
        version = match.group("version")
        if version is not None and not re.match(VERSION_PATTERN, version):
            raise PromptError(f"bad version label in '{text}': must match {VERSION_PATTERN}")
        return cls(match.group("id"), version, alias)

    def __str__(self) -> str:
        return f"{self.id}#{self.version}" if self.version else f"{self.id}@{self.alias}"


@dataclass(frozen=True)
class LockEntry:
    hash: str
    registered_at: str
    file: str


@dataclass(frozen=True)
class RegisterResult:
    """What ``register`` did for one version: ``registered`` or ``unchanged``."""

    version: PromptVersion
    action: str


def version_sort_key(label: str) -> tuple[tuple[int, int | str], ...]:
    """Natural order of version labels: numbers compare as numbers."""
    return tuple(
        (0, int(piece)) if piece.isdigit() else (1, piece)
        for piece in re.findall(r"\d+|[^\d]+", label)
    )


def validate_version(version: PromptVersion) -> None:
    """Check one version: placeholders well formed, variables declared and used, schema valid.

    Raises:
        PromptError: the first problem, naming the prompt, version and variable.
    """
    for message in version.spec.messages:
        parse_template(message.content)  # raises on a malformed placeholder
    declared = version.spec.variables
    used = version.used_variables()
    dupes = sorted({v for v in declared if declared.count(v) > 1})
    if dupes:
        raise PromptError(f"prompt {version.ref} declares {', '.join(dupes)} more than once")
    undefined = [v for v in used if v not in declared]
    if undefined:
        raise PromptError(
            f"prompt {version.ref} uses undeclared variable(s) {', '.join(undefined)}",
            hint=f"add them to versions.{version.version}.variables in {version.source}",
        )
    unused = [v for v in declared if v not in used]
    if unused:
        raise PromptError(
            f"prompt {version.ref} declares variable(s) {', '.join(unused)} that no message uses",
            hint="remove them from `variables` or use them as {{ name }} in a message",
        )
    if version.response_schema is not None:
        check_json_schema(version.response_schema, where=version.ref)


def check_json_schema(schema: dict[str, Any], *, where: str) -> None:
    """A response schema must be a valid JSON schema describing an object.

    Raises:
        PromptError: invalid schema, or a top-level type other than ``object`` (a chain
            reads fields of the answer, so the answer must be an object).
    """
    if schema.get("type") != "object":
        raise PromptError(
            f"response_schema of {where} must have type: object (got {schema.get('type')!r})"
        )
    try:
        import jsonschema
    except ImportError:  # jsonschema comes with mlflow and openai; without it, a basic check
        props = schema.get("properties", {})
        if not isinstance(props, dict):
            raise PromptError(f"response_schema of {where}: properties must be a mapping") from None
        return
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        path = "/".join(str(p) for p in exc.path) or "(root)"
        raise PromptError(
            f"response_schema of {where} is not a valid JSON schema at {path}: {exc.message}"
        ) from None


class PromptRegistry:
    """The prompts of one folder, loaded and validated eagerly.

    Args:
        root: the folder (``prompts.dir``): a local (or mounted: ``/Volumes``,
            ``/Workspace``, ``/dbfs``) path, ``dbfs:/``, or a remote folder (``s3://``,
            ``abfss://``) read through a local copy: read-only here (register versions
            in a local folder, then upload it with its ``registry.lock``).

    Raises:
        PromptError: on load, an unreadable or invalid file, a duplicated id, or a
            registered version whose content changed.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        #: where the prompts come from, as given (the URI of a remote folder)
        self.location = os.fspath(root)
        self.read_only = local_path(self.location) is None
        try:
            self.root = local_folder(self.location, PROMPT_FILES)
        except FmfError as exc:
            raise PromptError(exc.message, hint=exc.hint) from None
        self._files: dict[str, PromptFile] = {}
        self._sources: dict[str, Path] = {}
        self._lock: dict[str, dict[str, LockEntry]] = {}
        self.reload()

    # --- loading -----------------------------------------------------------------------

    def reload(self) -> None:
        self._files.clear()
        self._sources.clear()
        if self.root.is_dir():
            for path in sorted(self.root.glob("*.y*ml")):
                prompt = load_prompt_file(path)
                if prompt.id in self._files:
                    raise PromptError(
                        f"prompt id '{prompt.id}' is defined in both "
                        f"{self._shown(self._sources[prompt.id])} and {self._shown(path)}"
                    )
                self._files[prompt.id] = prompt
                self._sources[prompt.id] = path
        self._lock = _read_lock(self.root / LOCK_FILE)

    def _shown(self, path: Path) -> str:
        """A prompt file as the user knows it: in the remote folder, not our local copy."""
        return join_uri(self.location, path.name) if self.read_only else str(path)

    # --- queries -----------------------------------------------------------------------

    def ids(self) -> list[str]:
        return sorted(self._files)

    def versions(self, prompt_id: str) -> list[str]:
        """Version labels of a prompt, oldest first."""
        prompt = self._file(prompt_id)
        return sorted(prompt.versions, key=version_sort_key)

    def get(self, ref: str | PromptRef) -> PromptVersion:
        """Resolve and validate a reference.

        Raises:
            PromptError: unknown id or version, invalid version, or content changed
                after registration.
        """
        parsed = PromptRef.parse(ref) if isinstance(ref, str) else ref
        prompt = self._file(parsed.id)
        label = parsed.version or self.versions(parsed.id)[-1]
        spec = prompt.versions.get(label)
        if spec is None:
            known = ", ".join(self.versions(parsed.id))
            raise PromptError(
                f"prompt '{parsed.id}' has no version '{label}' (versions: {known})",
                hint=f"add versions.{label} to {self._shown(self._sources[parsed.id])}",
            )
        version = PromptVersion(parsed.id, label, spec, self._shown(self._sources[parsed.id]))
        validate_version(version)
        entry = self._lock.get(parsed.id, {}).get(label)
        if entry is not None and entry.hash != version.content_hash:
            raise PromptError(
                f"prompt {version.ref} was registered with hash {entry.hash[:12]} but its "
                f"content in {version.source} now hashes to {version.content_hash[:12]}",
                code="prompt.immutable",
                hint=_new_version_hint(parsed.id, self.versions(parsed.id)),
            )
        return version

    def is_registered(self, version: PromptVersion) -> bool:
        entry = self._lock.get(version.id, {}).get(version.version)
        return entry is not None and entry.hash == version.content_hash

    def registered(self) -> dict[str, dict[str, LockEntry]]:
        """``{id: {version: LockEntry}}`` of the lock file."""
        return {k: dict(v) for k, v in self._lock.items()}

    def all_versions(self) -> Iterable[tuple[str, str]]:
        for prompt_id in self.ids():
            for label in self.versions(prompt_id):
                yield prompt_id, label

    def _file(self, prompt_id: str) -> PromptFile:
        prompt = self._files.get(prompt_id)
        if prompt is None:
            known = ", ".join(self.ids()) or "none"
            raise PromptError(
                f"no prompt '{prompt_id}' in {self.location} (prompts: {known})",
                hint=f"create {join_uri(self.location, prompt_id + '.yaml')}",
            )
        return prompt

    # --- registration ------------------------------------------------------------------

    def register(self, target: str) -> list[RegisterResult]:
        """Register ``<file>#<version>``, ``<id>#<version>``, or every version of ``<file>``.

        Registering records the content hash in ``registry.lock``. Registering an already
        registered version with the same content is a no-op (``unchanged``).

        Raises:
            PromptError: ``prompt.immutable`` when the content of a registered version
                changed; the hint says which new version label to use.
        """
        if self.read_only:
            raise PromptError(
                f"cannot register in {self.location}: a remote prompt folder is read-only here",
                hint="register in a local copy of the folder, then upload it with registry.lock",
            )
        path_text, _, label = target.partition("#")
        prompt_id = self._id_for(path_text)
        labels = [label] if label else self.versions(prompt_id)
        results: list[RegisterResult] = []
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        for one in labels:
            version = self.get(PromptRef(prompt_id, one))  # validates; refuses changed content
            entry = self._lock.get(prompt_id, {}).get(one)
            if entry is not None:
                results.append(RegisterResult(version, "unchanged"))
                continue
            self._lock.setdefault(prompt_id, {})[one] = LockEntry(
                hash=version.content_hash,
                registered_at=now,
                file=self._sources[prompt_id].name,
            )
            results.append(RegisterResult(version, "registered"))
        if any(r.action == "registered" for r in results):
            _write_lock(self.root / LOCK_FILE, self._lock)
        return results

    def _id_for(self, path_or_id: str) -> str:
        path = Path(path_or_id)
        if path.suffix in (".yaml", ".yml"):
            if not path.exists():
                raise PromptError(f"prompt file {path} does not exist")
            prompt = load_prompt_file(path)
            source = self._sources.get(prompt.id)
            if source is None or source.resolve() != path.resolve():
                raise PromptError(
                    f"{path} is not in the prompt registry folder {self.root}",
                    hint=f"move it to {self.root}/ (or set prompts.dir)",
                )
            return prompt.id
        self._file(path_or_id)
        return path_or_id


def _new_version_hint(prompt_id: str, labels: list[str]) -> str:
    last = labels[-1] if labels else "0"
    suggestion = str(int(last) + 1) if last.isdigit() else f"{last}.1"
    return (
        f"registered versions are immutable: restore the registered content, or copy it to a "
        f'new version (e.g. versions."{suggestion}") and register {prompt_id}#{suggestion}'
    )


def load_prompt_file(path: Path) -> PromptFile:
    """Read and validate one prompt file.

    Raises:
        PromptError: unreadable YAML or a field that does not match the format.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PromptError(f"cannot read prompt file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise PromptError(f"prompt file {path} must be a mapping with id and versions")
    try:
        return PromptFile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise PromptError(f"invalid prompt file {path}: {problems}") from None


def _read_lock(path: Path) -> dict[str, dict[str, LockEntry]]:
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return {
            str(pid): {str(v): LockEntry(**entry) for v, entry in versions.items()}
            for pid, versions in data.items()
        }
    except (OSError, yaml.YAMLError, TypeError, AttributeError) as exc:
        raise PromptError(f"cannot read the prompt registry lock {path}: {exc}") from None


def _write_lock(path: Path, lock: dict[str, dict[str, LockEntry]]) -> None:
    data = {
        pid: {
            v: {"hash": e.hash, "registered_at": e.registered_at, "file": e.file}
            for v, e in sorted(versions.items(), key=lambda kv: version_sort_key(kv[0]))
        }
        for pid, versions in sorted(lock.items())
    }
    header = (
        "# fmf prompt registry: the content hash of every registered version.\n"
        "# Registered versions are immutable; written by `fmf prompt register`.\n"
    )
    # write then rename, so an interrupted register never leaves a torn lock file
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".registry.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(header + yaml.safe_dump(data, sort_keys=False))
    os.replace(tmp, path)
