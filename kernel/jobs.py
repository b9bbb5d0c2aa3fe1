"""Prepare run folders: create one, snapshot its bundles, write its resolved recipe.

Starting the training process is the engine's job (engine/process.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

from kernel.bundlefiles import walk_bundle
from kernel.loader import content_hash
from kernel.recipe import RECIPE_KINDS, ResolvedRecipe
from kernel.runs import RunFolder, storage_error

# Bundles up to this size are copied into the run folder, so the run trains with the
# version it was started with even if the bundle is edited (or hot-reloaded) meanwhile.
SNAPSHOT_LIMIT_BYTES = 64 * 1024 * 1024


def prepare_run(resolved: ResolvedRecipe, runs_dir: Path) -> RunFolder:
    """Create the run folder, snapshot its bundles and write the resolved recipe. A folder
    that could not be completed (a full or read-only disk) is removed, not left half-made."""
    run = RunFolder.create(runs_dir, resolved.recipe.name)
    try:
        _fill_run(run, resolved)
    except OSError as exc:
        shutil.rmtree(run.path, ignore_errors=True)
        raise storage_error(exc, run.path, "write the run folder") from None
    except BaseException:
        shutil.rmtree(run.path, ignore_errors=True)
        raise
    return run


def _fill_run(run: RunFolder, resolved: ResolvedRecipe) -> None:
    record = resolved.as_record()
    for kind in RECIPE_KINDS:
        snapshot = snapshot_bundle(Path(record[kind]["path"]), run.path / "bundles" / kind)
        if snapshot is not None and content_hash(snapshot) == record[kind]["content_hash"]:
            record[kind]["snapshot"] = str(snapshot.relative_to(run.path))
        elif snapshot is not None:  # edited between resolving and copying: use the live folder
            shutil.rmtree(snapshot, ignore_errors=True)
    run.write_recipe(record)
    run.set_status("pending")


def snapshot_bundle(source: Path, target: Path) -> Path | None:
    """Copy a bundle folder's regular files (without caches and editor files, never through a
    link out of the bundle nor from a special file); None when it is too large."""
    files, _refused = walk_bundle(source)  # refused entries are `plugins validate`'s to report
    if sum(f.size for f in files) > SNAPSHOT_LIMIT_BYTES:
        return None
    target.mkdir(parents=True)
    for item in files:
        destination = target / item.relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        # copy2 keeps the modification time: a data file's hash stamp is size + mtime
        shutil.copy2(item.source, destination, follow_symlinks=False)
    return target
