"""A bundle's files as they may be used: regular files inside the bundle, nothing else.

A bundle is someone else's folder. A link in it may point at /dev/zero (copying it
fills the disk), at a secret outside the bundle (copying it leaks the secret into a
shared run folder), or a named pipe may sit in it (reading one blocks for ever).
Walking a bundle never follows a link out of it and never opens a special file;
each such entry is reported instead, so `plugins validate` can name it.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from kernel.discovery import is_ignored_name


@dataclass(frozen=True)
class BundleFile:
    """A regular file of the bundle (`source` is where its bytes are: a link's target)."""

    relative: Path
    source: Path
    size: int


@dataclass(frozen=True)
class RefusedEntry:
    relative: Path
    reason: str


SPECIAL_KINDS = (
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def special_kind(mode: int) -> str | None:
    """'a named pipe', 'a socket', ... for a special file's mode; None for files and folders."""
    return next((name for test, name in SPECIAL_KINDS if test(mode)), None)


def inside(path: Path, root: Path) -> bool:
    """Whether `path`, every link followed, lies within `root` (itself resolved)."""
    try:
        return path.resolve(strict=True).is_relative_to(root)
    except (OSError, RuntimeError):  # a dangling link or a loop
        return False


def check_entry(path: Path, root: Path) -> tuple[str, str | None]:
    """('file' | 'dir' | 'refused', reason) for one entry of the bundle rooted at `root`."""
    try:
        mode = path.lstat().st_mode
    except OSError as exc:
        return "refused", f"cannot be read ({exc.strerror})"
    if stat.S_ISLNK(mode):
        if not inside(path, root):
            return "refused", "a link to outside the bundle (or to nothing)"
        target_mode = path.stat().st_mode
        if stat.S_ISDIR(target_mode):
            return "refused", "a link to a folder (copy the folder instead)"
        mode = target_mode
    kind = special_kind(mode)
    if kind is not None:
        return "refused", f"{kind}, not a file"
    return ("dir", None) if stat.S_ISDIR(mode) else ("file", None)


def walk_bundle(folder: Path) -> tuple[list[BundleFile], list[RefusedEntry]]:
    """The bundle's usable files and its refused entries (caches and dotfiles are skipped)."""
    root = Path(folder).resolve()
    files: list[BundleFile] = []
    refused: list[RefusedEntry] = []
    for current, dirs, names in os.walk(root, followlinks=False):
        here = Path(current)
        for name in sorted(dirs + names):
            if is_ignored_name(name):
                continue
            path = here / name
            kind, reason = check_entry(path, root)
            relative = path.relative_to(root)
            if kind == "refused":
                refused.append(RefusedEntry(relative, reason or "refused"))
            elif kind == "file":
                files.append(BundleFile(relative, path.resolve(), path.stat().st_size))
        dirs[:] = [d for d in dirs if not is_ignored_name(d) and not (here / d).is_symlink()]
    return files, refused
