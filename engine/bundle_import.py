"""Reading an uploaded bundle: a zip file or the files of a folder, spiff-arena's model folders too.

What is taken: ``*.bpmn`` and ``*.bpmn20.xml`` (diagrams), ``*.dmn``
(decision tables) and ``*.json`` (forms and Procflow's own JSON files, such as
``names.json``). Anything else is left out with a warning, and so are the
folder litter of other systems (``__MACOSX/``, ``.DS_Store``, hidden files).

spiff-arena keeps a process model as a folder with a ``process_model.json``
next to its files (``display_name``, ``description``, ``primary_file_name``,
``primary_process_id``, ...). That file is metadata, not a form: it is read
into :class:`ImportedBundle` (``display_name``, ``description``,
``process_id``) and not kept among the bundle's files, so it never shows up
as a form, and deploying the same model again from spiff-arena gives the same
bundle. ``process_group.json`` (a folder of models) is left out the same way.
When every file lies below one folder (a zipped model folder, a browser's
folder upload), that folder is taken off the names.

Uploads come from users, so each is bounded: at most :data:`MAX_FILES`
files, :data:`MAX_FILE_BYTES` per file and :data:`MAX_TOTAL_BYTES` in all,
counted while decompressing (never trusting the sizes a zip header claims);
names must be relative paths without ``..``, drive letters or backslashes;
symbolic links and encrypted entries are refused; text must be UTF-8.
Each refusal is a :class:`DeploymentError` naming the file.
"""

from __future__ import annotations

import io
import json
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from ._specs import MAX_FILE_BYTES, SPIFF_ARENA_METADATA, BundleFile, kind_of
from .errors import DeploymentError, Problem

MAX_FILES = 200
MAX_TOTAL_BYTES = 20 * 1024 * 1024
MAX_ZIP_ENTRIES = 1000
PROCESS_MODEL_FILE = "process_model.json"
_IGNORED_NAMES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})
_CHUNK = 64 * 1024


@dataclass
class ImportedBundle:
    """An uploaded bundle: its files and what spiff-arena's ``process_model.json`` says about it.

    ``process_id`` is the primary process (``primary_process_id``, else
    ``None``); ``warnings`` lists what was left out or could not be used.
    """

    files: list[BundleFile]
    process_id: str | None = None
    display_name: str | None = None
    description: str | None = None
    warnings: list[Problem] = field(default_factory=list)


def read_zip(data: bytes) -> ImportedBundle:
    """Read a bundle from the bytes of a zip file.

    :raises DeploymentError: not a zip file, too many or too large files, an
        unsafe name, a symbolic link, an encrypted entry, text that is not
        UTF-8, or no BPMN file.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise DeploymentError(f"not a zip file ({exc})") from None
    with archive:
        entries = archive.infolist()
        if len(entries) > MAX_ZIP_ENTRIES:
            raise DeploymentError(f"the zip file has more than {MAX_ZIP_ENTRIES} entries")
        budget = _Budget()
        raw: list[tuple[str, bytes]] = []
        for entry in entries:
            name = _safe_name(entry.filename)
            if entry.is_dir():
                continue
            if stat.S_ISLNK(entry.external_attr >> 16):
                raise DeploymentError("symbolic links are not allowed", file=name)
            if entry.flag_bits & 0x1:
                raise DeploymentError("encrypted files are not allowed", file=name)
            if _left_out(name) or kind_of(name) is None:
                raw.append((name, b""))  # reported as left out below; never decompressed
                continue
            raw.append((name, _read_entry(archive, entry, name, budget)))
    return _bundle(raw)


def read_uploaded_files(files: list[tuple[str, bytes]]) -> ImportedBundle:
    """Read a bundle from uploaded files: (relative path, content) pairs, such as a folder upload.

    :raises DeploymentError: as :func:`read_zip`.
    """
    if len(files) > MAX_ZIP_ENTRIES:
        raise DeploymentError(f"more than {MAX_ZIP_ENTRIES} files were uploaded")
    budget = _Budget()
    raw: list[tuple[str, bytes]] = []
    for path, content in files:
        name = _safe_name(path)
        if _left_out(name) or kind_of(name) is None:
            raw.append((name, b""))
            continue
        budget.count(name)
        budget.take(name, len(content))
        raw.append((name, content))
    return _bundle(raw)


class _Budget:
    """How many files and bytes an upload may still use."""

    def __init__(self) -> None:
        self.files = 0
        self.total = 0

    def take(self, name: str, size: int) -> None:
        if size > MAX_FILE_BYTES:
            raise DeploymentError(f"file is larger than {MAX_FILE_BYTES} bytes", file=name)
        self.total += size
        if self.total > MAX_TOTAL_BYTES:
            raise DeploymentError(f"the files are larger than {MAX_TOTAL_BYTES} bytes in all", file=name)

    def count(self, name: str) -> None:
        self.files += 1
        if self.files > MAX_FILES:
            raise DeploymentError(f"more than {MAX_FILES} BPMN, DMN and JSON files", file=name)


def _read_entry(archive: zipfile.ZipFile, entry: zipfile.ZipInfo, name: str, budget: _Budget) -> bytes:
    # Decompress in chunks and count what comes out: a zip bomb's header may claim any size.
    budget.count(name)
    chunks: list[bytes] = []
    size = 0
    try:
        with archive.open(entry) as stream:
            while chunk := stream.read(_CHUNK):
                size += len(chunk)
                if size > MAX_FILE_BYTES:
                    raise DeploymentError(f"file is larger than {MAX_FILE_BYTES} bytes", file=name)
                chunks.append(chunk)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
        raise DeploymentError(f"cannot be read from the zip file ({exc})", file=name) from None
    budget.take(name, size)
    return b"".join(chunks)


def _safe_name(path: str) -> str:
    """Return *path* as a clean relative POSIX path, or refuse it."""
    if not path or "\0" in path:
        raise DeploymentError("a file has no name or a name with a NUL character")
    if "\\" in path:
        raise DeploymentError("file names may not contain backslashes", file=path)
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        raise DeploymentError("file names must be relative paths", file=path)
    parts = [part for part in PurePosixPath(path).parts if part not in ("", ".")]
    if any(part == ".." for part in parts):
        raise DeploymentError("file names may not contain '..'", file=path)
    if not parts:
        raise DeploymentError("a file has an empty name", file=path)
    name = "/".join(parts)
    return name + "/" if path.endswith("/") else name


def _left_out(name: str) -> bool:
    parts = name.rstrip("/").split("/")
    return parts[0] == "__MACOSX" or parts[-1] in _IGNORED_NAMES or any(p.startswith(".") for p in parts)


def _bundle(raw: list[tuple[str, bytes]]) -> ImportedBundle:
    names = _strip_common_folder([name for name, _ in raw])
    warnings: list[Problem] = []
    files: list[BundleFile] = []
    metadata: dict[str, Any] | None = None
    for (original, content), name in zip(raw, names, strict=True):
        kind = kind_of(name)
        if _left_out(original):
            continue
        if kind is None:
            warnings.append(_warning("left out: not a BPMN, DMN or JSON file", name))
            continue
        text = _text(content, name)
        base = name.rsplit("/", 1)[-1]
        if base in SPIFF_ARENA_METADATA:
            if base == PROCESS_MODEL_FILE and "/" not in name:
                metadata = _process_model(text, name, warnings)
            continue
        if any(f.name == name for f in files):
            raise DeploymentError("the upload holds two files of this name", file=name)
        files.append(BundleFile(name=name, kind=kind, content=text))
    if not any(f.kind == "bpmn" for f in files):
        raise DeploymentError("no .bpmn or .bpmn20.xml file found")
    imported = ImportedBundle(files=sorted(files, key=lambda f: f.name), warnings=warnings)
    if metadata is not None:
        _apply_process_model(imported, metadata)
    return imported


def _strip_common_folder(names: list[str]) -> list[str]:
    """Take off one folder that holds every file (a zipped model folder, a folder upload)."""
    kept = [n for n in names if not _left_out(n)]
    files = [n for n in kept if not n.endswith("/")]
    if not files:
        return names
    first = files[0].split("/", 1)[0]
    if all("/" in n and n.split("/", 1)[0] == first for n in files):
        return [n.split("/", 1)[1] if n.startswith(first + "/") else n for n in names]
    return names


def _text(content: bytes, name: str) -> str:
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DeploymentError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=name) from None
    return text.removeprefix("\ufeff")  # a byte order mark some editors write


def _process_model(text: str, name: str, warnings: list[Problem]) -> dict[str, Any] | None:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DeploymentError(f"invalid JSON: {exc.msg}", file=name, line=exc.lineno) from None
    if not isinstance(data, dict):
        raise DeploymentError("must be a JSON object (spiff-arena's process model metadata)", file=name)
    for key in ("display_name", "description", "primary_file_name", "primary_process_id"):
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            warnings.append(_warning(f"{key!r} is not text and is ignored", name, field=f"/{key}"))
            data[key] = None
    return data


def _apply_process_model(imported: ImportedBundle, metadata: dict[str, Any]) -> None:
    imported.display_name = metadata.get("display_name") or None
    imported.description = metadata.get("description") or None
    imported.process_id = metadata.get("primary_process_id") or None
    if imported.process_id and not any(
        f'id="{imported.process_id}"' in f.content for f in imported.files if f.kind == "bpmn"
    ):
        imported.warnings.append(
            _warning(
                f"primary_process_id names {imported.process_id!r}, which no BPMN file defines",
                PROCESS_MODEL_FILE,
                field="/primary_process_id",
            )
        )
    primary_file = metadata.get("primary_file_name")
    if primary_file and not any(f.name == primary_file for f in imported.files):
        imported.warnings.append(
            _warning(
                f"primary_file_name names {primary_file!r}, which is not in the upload",
                PROCESS_MODEL_FILE,
                field="/primary_file_name",
            )
        )


def _warning(message: str, name: str, *, field: str | None = None) -> Problem:
    return Problem(message, severity="warning", file=name, field=field)
