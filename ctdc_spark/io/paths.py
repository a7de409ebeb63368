"""Path helpers shared by the driver-side file code."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse


def is_local_path(path: str) -> bool:
    """True when ``path`` is on the driver's filesystem (plain path or ``file:`` URI)."""
    scheme = urlparse(path).scheme
    return scheme in ("", "file") or (len(scheme) == 1 and path[1:3] in (":\\", ":/"))


def local_path(path: str) -> Path:
    """Strip a ``file:`` scheme."""
    return Path(urlparse(path).path) if path.startswith("file:") else Path(path)
