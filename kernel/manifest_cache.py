"""A disk cache of parsed plugin.yaml files, keyed by path, size and modification time.

Discovery parses every manifest of every plugin folder on each start; with the
cache a start parses only the manifests that changed (as napari's npe2 caches
manifests). Validation still runs on every read, so a cached entry can never
let an invalid manifest through. A file modified less than `SETTLE_SECONDS` ago
is not cached: timestamps are coarse (a few ms), and two same-size writes within
one tick would otherwise look unchanged (git treats "racily clean" files alike).
"""

from __future__ import annotations

import atexit
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

SETTLE_SECONDS = 2.0
_LOCK = threading.Lock()
_entries: dict[str, list[Any]] | None = None
_dirty = False


def cache_file() -> Path:
    home = os.environ.get("PEFTLAB_HOME") or Path.home() / ".peftlab"
    return Path(home) / "cache" / "manifests.json"


def _stamp(path: Path) -> tuple[str, list[int]] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return str(path.resolve()), [stat.st_size, stat.st_mtime_ns, stat.st_ino]


def _load() -> dict[str, list[Any]]:
    global _entries
    if _entries is None:
        try:
            _entries = json.loads(cache_file().read_text(encoding="utf-8"))
            if not isinstance(_entries, dict):
                _entries = {}
        except (OSError, ValueError):
            _entries = {}
    return _entries


def lookup(path: Path) -> tuple[bool, object]:
    """(True, parsed data) when the file is unchanged since it was cached, else (False, None)."""
    stamp = _stamp(path)
    if stamp is None:
        return False, None
    with _LOCK:
        entry = _load().get(stamp[0])
    if entry is not None and entry[0] == stamp[1]:
        return True, json.loads(entry[1])  # a fresh object: callers may change what they get
    return False, None


def store(path: Path, data: object) -> None:
    """Remember the parsed data of a settled file whose data survives a JSON round trip."""
    global _dirty
    stamp = _stamp(path)
    if stamp is None or time.time() - stamp[1][1] / 1e9 < SETTLE_SECONDS:
        return
    try:
        text = json.dumps(data)
        if json.loads(text) != data:  # e.g. integer keys would come back as text
            return
    except (TypeError, ValueError):  # dates, sets: not JSON
        return
    with _LOCK:
        _load()[stamp[0]] = [stamp[1], text]
        if not _dirty:
            atexit.register(save)
        _dirty = True


def save() -> None:
    """Write the cache (atomically; a failure only costs the next start its speed)."""
    global _dirty
    with _LOCK:
        if not _dirty or _entries is None:
            return
        target = cache_file()
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            handle, temp = tempfile.mkstemp(dir=target.parent, prefix=".manifests-")
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(_entries, out)
            os.replace(temp, target)
        except OSError:
            return
        _dirty = False
