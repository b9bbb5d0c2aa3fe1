"""Which bundle folder a changed path belongs to: the path rules hot reload applies on
watchdog's observer thread (no state, no threads; the reloader in kernel.hotreload uses them)."""

from __future__ import annotations

from pathlib import Path

from kernel.discovery import MAX_DEPTH, is_ignored_name
from kernel.manifest import MANIFEST_FILE

# Beyond what discovery ignores: vim's write test file and its other swap names.
EDITOR_NOISE_NAMES = {"4913"}
EDITOR_NOISE_SUFFIXES = (".swo", ".swn", ".kate-swp")


def is_noise(name: str) -> bool:
    """A file or folder name whose changes never make a bundle change."""
    return (
        is_ignored_name(name) or name in EDITOR_NOISE_NAMES or name.endswith(EDITOR_NOISE_SUFFIXES)
    )


def owning_bundle(path: Path, root: Path, is_directory: bool, known: set[Path]) -> Path | None:
    """The bundle folder a changed path belongs to, or None.

    Like discovery, the bundle is the shallowest folder (at most MAX_DEPTH below
    the root) that holds a plugin.yaml; for a deletion the plugin.yaml may be
    gone, so a folder the registry already knows counts too.
    """
    parts = path.relative_to(root).parts
    if any(is_noise(part) for part in parts):
        return None
    folder_parts = len(parts) if is_directory else len(parts) - 1
    for depth in range(min(folder_parts, MAX_DEPTH) + 1):
        folder = root.joinpath(*parts[:depth])
        if folder in known or (folder / MANIFEST_FILE).is_file():
            return folder
    return None


def bundles_below(folder: Path, depth: int) -> list[Path]:
    """Bundle folders inside a folder that appeared at `depth` below its root (moved or copied in)."""
    if (folder / MANIFEST_FILE).is_file():
        return [folder]
    if depth >= MAX_DEPTH:
        return []
    try:
        children = sorted(p for p in folder.iterdir() if p.is_dir() and not is_noise(p.name))
    except OSError:
        return []
    return [found for child in children for found in bundles_below(child, depth + 1)]


def nearest_existing(folder: Path) -> Path | None:
    """The folder itself or its closest ancestor that exists as a folder."""
    for candidate in (folder, *folder.parents):
        try:
            if candidate.is_dir():
                return candidate
        except OSError:
            continue
    return None
