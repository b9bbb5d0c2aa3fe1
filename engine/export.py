"""Exports a face can offer as a download: a folder (a run's adapter, a merged model,
a combined adapter) packed as one zip archive.

Merging and combining themselves are engine.adapters (`export_merged`,
`combine_adapters`); this module only packs their output folders.
"""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

from kernel.errors import RunError
from kernel.runs import RunFolder


def folder_archive(folder: Path, root_name: str | None = None) -> bytes:
    """A zip of a folder's files, each under `root_name/` (the folder's name by default)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RunError("nothing to export: the folder does not exist", path=folder)
    root = root_name or folder.name
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, f"{root}/{path.relative_to(folder).as_posix()}")
    return buffer.getvalue()


def adapter_archive(run: RunFolder) -> tuple[str, bytes]:
    """(file name, zip bytes) of a finished run's adapter folder, as `peftlab export` copies it."""
    if not run.adapter_dir.is_dir():
        raise RunError("the run has no trained adapter (has it finished?)", path=run.path)
    name = f"{run.id}-adapter"
    return f"{name}.zip", folder_archive(run.adapter_dir, name)


def copy_adapter(run: RunFolder, out_dir: Path) -> Path:
    """Copy a run's adapter folder to `out_dir` (which must be empty or absent)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise RunError("output folder is not empty", path=out_dir)
    if not run.adapter_dir.is_dir():
        raise RunError("the run has no trained adapter (has it finished?)", path=run.path)
    shutil.copytree(run.adapter_dir, out_dir, dirs_exist_ok=True)
    return out_dir
