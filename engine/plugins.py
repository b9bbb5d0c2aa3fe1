"""Load the exact bundle version a run recorded and wrap it for the SDK.

Every process that needs a run's plugins (the training process, inference, export,
evaluation) loads them here, from the run folder's snapshot when it has one.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from kernel.discovery import BundleLocation
from kernel.errors import PeftlabError, PluginLoadError
from kernel.manifest import MANIFEST_FILE, Manifest, load_manifest
from kernel.recipe import RECIPE_KINDS
from kernel.registry import read_bundle
from kernel.runs import RunFolder
from sdk.base import BASE_CLASSES
from sdk.context import PluginHandle


def load_plugin(kind: str, record: dict[str, Any], run_dir: Path | None = None) -> Any:
    """Load the exact bundle version a recipe names and wrap it in a PluginHandle.

    The run folder's snapshot of the bundle is preferred: it is the version the run
    was started with, whatever happened to the plugin folder since.
    """
    original, folder = Path(record["path"]), recorded_folder(record, run_dir)
    try:
        return _load_handle(kind, record, folder)
    except PeftlabError as exc:
        # errors name the plugin folder a person edits, not the run's copy of it
        if exc.path and folder != original and exc.path.startswith(str(folder)):
            exc.path = str(original) + exc.path[len(str(folder)) :]
            exc.args = (exc.render(),)
        raise


def recorded_folder(record: dict[str, Any], run_dir: Path | None = None) -> Path:
    """The folder a recipe's bundle is read from: the run's snapshot of it, else the original."""
    if run_dir is not None and record.get("snapshot") and (run_dir / record["snapshot"]).is_dir():
        return run_dir / record["snapshot"]
    return Path(record["path"])


def recorded_manifest(record: dict[str, Any], run_dir: Path | None = None) -> Manifest:
    """The manifest of a recipe's bundle, read without importing the bundle's code."""
    return load_manifest(recorded_folder(record, run_dir) / MANIFEST_FILE)


def _load_handle(kind: str, record: dict[str, Any], folder: Path) -> Any:
    bundle = read_bundle(BundleLocation(folder, record.get("origin", "path"), 0))
    if bundle.manifest.kind != kind:
        raise PluginLoadError(f"expected a {kind} bundle", path=folder, field="kind")
    if record.get("content_hash") and record["content_hash"] != bundle.content_hash:
        print(
            f"note: {kind} '{bundle.manifest.id}' changed since the run was created; "
            "using the version on disk now",
            file=sys.stderr,
        )
    instance = bundle.instantiate()
    base = BASE_CLASSES[kind]
    if not isinstance(instance, base):
        raise PluginLoadError(
            f"entry '{bundle.manifest.entry}' is {type(instance).__name__}, "
            f"not a subclass of sdk.{base.__name__}",
            path=folder / "plugin.yaml",
            field="entry",
        )
    manifest = bundle.manifest.model_dump(mode="json")
    return PluginHandle(bundle.manifest.id, instance, record.get("params", {}), folder, manifest)


def load_run_plugins(run: RunFolder, kinds: tuple[str, ...] = RECIPE_KINDS) -> dict[str, Any]:
    """The run's recorded bundles of `kinds`, loaded (kind -> PluginHandle)."""
    record = run.recipe()
    return {kind: load_plugin(kind, record[kind], run.path) for kind in kinds}
