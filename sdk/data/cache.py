"""Where loaded and tokenized data is kept on disk, and how much of it there is.

Everything lives under `<PEFTLAB_HOME>/data/cache` (or `PEFTLAB_CACHE_DIR`):
`datasets/` holds the Arrow files `datasets` writes while reading a file (keyed by
the file's path, size and modification time), `tokenized/` the tokenized splits.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

CACHE_PARTS = ("datasets", "tokenized")


def cache_root() -> Path:
    """The folder holding peftlab's data caches (created on first use)."""
    explicit = os.environ.get("PEFTLAB_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    home = os.environ.get("PEFTLAB_HOME") or Path.home() / ".peftlab"
    return Path(home).expanduser() / "data" / "cache"


def cache_dir(part: str) -> Path:
    """One part of the cache (`datasets` or `tokenized`), created if missing."""
    if part not in CACHE_PARTS:
        raise ValueError(f"unknown cache part '{part}'; use one of {', '.join(CACHE_PARTS)}")
    folder = cache_root() / part
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass(frozen=True)
class CacheUsage:
    """Size on disk of one cache part."""

    part: str
    path: Path
    files: int
    bytes: int


def cache_usage() -> list[CacheUsage]:
    """Files and bytes of every cache part (missing parts count as empty)."""
    usage = []
    for part in CACHE_PARTS:
        folder = cache_root() / part
        files = [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []
        usage.append(CacheUsage(part, folder, len(files), sum(p.stat().st_size for p in files)))
    return usage


def clear_cache(parts: tuple[str, ...] = CACHE_PARTS) -> int:
    """Delete the given cache parts; returns the bytes freed."""
    freed = 0
    for item in cache_usage():
        if item.part in parts and item.path.is_dir():
            freed += item.bytes
            shutil.rmtree(item.path)
    return freed
