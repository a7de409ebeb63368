"""File outputs: atomic single files, streamed exports, and the atomically swapped release bundle.

Exports are written on the driver, so ``output.root`` must be a filesystem path the driver can
write (local disk, NFS, a FUSE mount such as ``/dbfs``); Delta tables under it are written by
executors through Spark as usual. Nothing is ever half-written: files go to a temporary name in
the same folder and are renamed into place, and the release bundle is built in a temporary folder
and swapped in whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

SHA256SUMS = "SHA256SUMS"
LATEST = "latest"
METADATA = "metadata.json"


@contextlib.contextmanager
def atomic_text_writer(path: Path, *, newline: str = "\n") -> Iterator[TextIO]:
    """Open ``path`` for writing so that readers see either the old file or the complete new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with tmp.open("w", encoding="utf-8", newline=newline) as handle:
            yield handle
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_lines(path: Path, lines: Iterable[str]) -> Path:
    """Atomically write ``lines`` (each without its newline) to ``path``."""
    with atomic_text_writer(path) as handle:
        for line in lines:
            handle.write(line)
            handle.write("\n")
    return path


def write_json(path: Path, data: Mapping[str, Any]) -> Path:
    """Atomically write pretty, key-sorted JSON (stable bytes for checksums)."""
    with atomic_text_writer(path) as handle:
        json.dump(data, handle, indent=2, sort_keys=True, ensure_ascii=False)
        handle.write("\n")
    return path


def update_metadata(staging_dir: Path, section: str, data: Mapping[str, Any] | None) -> Path:
    """Set (or, with ``data=None``, remove) one top-level section of the bundle's ``metadata.json``.

    Several stages contribute sections (evaluate writes ``guarantee`` and ``parameters``, publish
    writes ``release``), so each replaces only its section and keeps the others. The file is rewritten
    atomically; concurrent writers of one run are excluded by the run lock. A file left without
    sections is removed, so no empty metadata is ever published.

    Args:
        staging_dir: ``staging/<run_id>``.
        section: Top-level key, e.g. ``guarantee``.
        data: The section's content, or None to remove it.

    Returns:
        The path of ``metadata.json`` (which may no longer exist after a removal).
    """
    path = staging_dir / METADATA
    current = _load_metadata(path)
    if data is None:
        current.pop(section, None)
    else:
        current[section] = dict(data)
    if current:
        return write_json(path, current)
    path.unlink(missing_ok=True)
    return path


def _load_metadata(path: Path) -> dict[str, Any]:
    """The sections of ``metadata.json`` (none when it does not exist)."""
    metadata = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    if not isinstance(metadata, dict):
        raise ValueError(f"{METADATA}: must be an object (mapping)")
    return metadata


@dataclass(frozen=True)
class StagedMetadata:
    """What a later stage reads back from a run's ``metadata.json`` (see :func:`read_metadata`)."""

    #: The ``guarantee`` section (evaluate) says the synthetic data passed the verification.
    verified: bool
    #: ``release.date`` (publish): the date this run was first published with, or None.
    release_date: str | None


def read_metadata(staging_dir: Path) -> StagedMetadata:
    """The facts other stages wrote into ``staging_dir/metadata.json`` with :func:`update_metadata`.

    A missing file or section states nothing: not verified, no release date.

    Raises:
        ValueError: The file is not JSON, or a section is not an object or its date not a string.
    """
    metadata = _load_metadata(staging_dir / METADATA)

    def section(name: str) -> Mapping[str, Any]:
        content = metadata.get(name, {})
        if not isinstance(content, Mapping):
            raise ValueError(f"{METADATA}: {name}: must be an object (mapping)")
        return content

    date = section("release").get("date")
    if date is not None and not isinstance(date, str):
        raise ValueError(f"{METADATA}: release.date: must be a string (an ISO date)")
    # Only the flag itself counts: anything but true is not a passed verification.
    return StagedMetadata(verified=section("guarantee").get("verified") is True, release_date=date or None)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _bundle_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.name != SHA256SUMS and not p.name.startswith(".")
    )


def assemble_bundle(staging: Path, release_root: Path, run_id: str) -> Path:
    """Publish ``staging`` as ``release_root/<run_id>`` atomically, with a SHA256SUMS file.

    The staging folder is moved (one rename: staging and releases share the output root) into a
    temporary sibling folder, checksummed, then renamed into place; an existing bundle of the same
    run is moved aside first and deleted after the swap, so readers never see a partial bundle and
    no second copy of the public files stays in ``staging/``. If checksumming fails, the files go
    back to ``staging/`` so the run can be resumed.

    Returns:
        The bundle folder.
    """
    release_root.mkdir(parents=True, exist_ok=True)
    target = release_root / run_id
    tmp = release_root / f".{run_id}.{uuid.uuid4().hex}.tmp"
    os.replace(staging, tmp)
    try:
        (tmp / SHA256SUMS).unlink(missing_ok=True)
        files = _bundle_files(tmp)
        sums = [f"{sha256_file(p)}  {p.relative_to(tmp).as_posix()}" for p in files]
        write_lines(tmp / SHA256SUMS, sums)
    except BaseException:
        os.replace(tmp, staging)
        raise
    old = release_root / f".{run_id}.{uuid.uuid4().hex}.old"
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def switch_latest(release_root: Path, run_id: str) -> Path:
    """Point ``release_root/latest`` at ``run_id`` by atomically replacing a relative symlink."""
    link = release_root / LATEST
    tmp = release_root / f".{LATEST}.{uuid.uuid4().hex}.tmp"
    os.symlink(run_id, tmp)
    os.replace(tmp, link)
    return link


def verify_bundle(bundle: Path) -> list[str]:
    """Return the files whose checksum does not match SHA256SUMS (empty when intact)."""
    bad = []
    for line in (bundle / SHA256SUMS).read_text(encoding="utf-8").splitlines():
        digest, name = line.split("  ", 1)
        path = bundle / name
        if not path.is_file() or sha256_file(path) != digest:
            bad.append(name)
    return bad
