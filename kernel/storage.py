"""Writing files that a crash cannot leave half-written, and the one-line errors a failed
write (a full or read-only disk) becomes."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from kernel.errors import RunError

#: exit codes from this base up carry the errno of a storage failure the training process
#: could not write down (a full disk): 100 + errno, so the reason survives in the exit code
STORAGE_EXIT_BASE = 100


def storage_reason(exc: OSError) -> str:
    """'no space left on device', 'read-only file system', ... for a failed write."""
    return (exc.strerror or str(exc)).lower()


def storage_error(exc: OSError, path: Path, doing: str) -> RunError:
    """A one-line RunError for a storage failure (a full or read-only runs folder)."""
    return RunError(
        f"cannot {doing}: {storage_reason(exc)}", path=getattr(exc, "filename", None) or path
    )


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temp file in the same folder, fsync, then rename over the target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")
