"""Find bundle folders: plugin directories and installed packages (stevedore).

Both adapters yield BundleLocations; neither reads a manifest or imports a
bundle. Entry-point targets are tiny (an attribute naming the bundle folder),
so loading them through stevedore costs nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from kernel.errors import PluginLoadError
from kernel.manifest import MANIFEST_FILE

ENTRY_POINT_NAMESPACES = {
    "technique": "peftlab.techniques",
    "model": "peftlab.models",
    "dataset": "peftlab.datasets",
    "trainer": "peftlab.trainers",
}
IGNORED_DIR_NAMES = {"__pycache__", "node_modules"}
MAX_DEPTH = 3  # plugins/<kind>/<bundle>/plugin.yaml


@dataclass(frozen=True)
class BundleLocation:
    """A folder that holds (or should hold) a plugin.yaml, and where it was found."""

    path: Path
    origin: str  # "builtin", "user", "path", or "package:<distribution>"
    priority: int  # higher wins when two bundles claim the same kind and id


def is_ignored_name(name: str) -> bool:
    """Dotfiles, caches and editor leftovers never make or change a bundle."""
    return (
        name.startswith(".")
        or name in IGNORED_DIR_NAMES
        or name.endswith((".pyc", ".pyo", ".pyd", "~", ".swp", ".swx", ".tmp"))
        or name.startswith("#")
    )


def scan_folder(root: Path, origin: str, priority: int) -> list[BundleLocation]:
    """Every folder under root (up to MAX_DEPTH) that contains a plugin.yaml."""
    found: list[BundleLocation] = []
    if not root.is_dir():
        return found

    def walk(folder: Path, depth: int) -> None:
        if (folder / MANIFEST_FILE).is_file():
            found.append(BundleLocation(folder.resolve(), origin, priority))
            return  # a bundle's sub-folders are its own business
        if depth >= MAX_DEPTH:
            return
        try:
            children = sorted(p for p in folder.iterdir() if p.is_dir())
        except OSError:
            return
        for child in children:
            if not is_ignored_name(child.name):
                walk(child, depth + 1)

    walk(root, 0)
    return found


def _bundle_folder_of(target: object) -> Path:
    """An entry point may name a folder (str / Path) or a module whose folder is the bundle."""
    if isinstance(target, str | os.PathLike):
        return Path(target)
    if isinstance(target, ModuleType):
        module_path = getattr(target, "__path__", None)
        if module_path:
            return Path(list(module_path)[0])
        if target.__file__:
            return Path(target.__file__).parent
    raise TypeError(
        f"entry point must name a bundle folder (str or Path) or a module, got {type(target)!r}"
    )


def clear_entry_point_caches() -> None:
    """stevedore caches entry points in memory (and on disk, keyed by sys.path mtimes)."""
    from stevedore import _cache
    from stevedore.extension import ExtensionManager

    ExtensionManager.ENTRY_POINT_CACHE.clear()
    _cache._c._internal.clear()


def scan_entry_points(
    priority: int, on_error: Callable[[PluginLoadError], None]
) -> Iterator[BundleLocation]:
    """Bundle folders registered by installed packages under the peftlab.* namespaces."""
    from stevedore.extension import ExtensionManager

    for namespace in ENTRY_POINT_NAMESPACES.values():

        def failed(
            _manager: Any, entry_point: Any, err: BaseException, namespace: str = namespace
        ) -> None:
            name = getattr(entry_point, "name", "?")
            value = getattr(entry_point, "value", "?")
            on_error(
                PluginLoadError(
                    f"entry point '{name} = {value}' failed to load: {type(err).__name__}: {err}",
                    path=f"package entry point {namespace}",
                    field=name,
                )
            )

        manager: ExtensionManager[Any] = ExtensionManager(
            namespace, on_load_failure_callback=failed
        )
        for ext in manager:
            dist = getattr(ext.entry_point, "dist", None)
            dist_name = getattr(dist, "name", None) or ext.entry_point.value.split(":")[0]
            try:
                folder = _bundle_folder_of(ext.plugin)
            except TypeError as exc:
                on_error(PluginLoadError(str(exc), path=f"package {dist_name}", field=ext.name))
                continue
            if not (folder / MANIFEST_FILE).is_file():
                on_error(
                    PluginLoadError(
                        f"entry point '{ext.name}' names {folder}, which has no {MANIFEST_FILE}",
                        path=f"package {dist_name}",
                        field=ext.name,
                    )
                )
                continue
            yield BundleLocation(folder.resolve(), f"package:{dist_name}", priority)
