"""Import a bundle's entry under a module name unique to that bundle version.

Each version is imported as `peftlab_bundles.<kind>.<id>.v<hash8>` whose package
path is the bundle folder alone, so the entry (and any sibling module it imports
relatively) can only come from inside the bundle. A reload imports a new version
beside the old one and never calls importlib.reload.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from kernel.bundlefiles import check_entry
from kernel.discovery import is_ignored_name
from kernel.errors import MissingDependencyError, PluginLoadError
from kernel.manifest import Manifest

ROOT_PACKAGE = "peftlab_bundles"


class FreshSourceLoader(importlib.machinery.SourceFileLoader):
    """Compile bundle sources every time; never read or write .pyc files.

    A .pyc is trusted when the source's size and mtime (to the second) match,
    so an edit saved within a second that keeps the size would reload stale code.
    """

    def path_stats(self, path: str) -> dict[str, Any]:
        raise OSError("bundle sources are always compiled fresh")


class BundleFinder(importlib.abc.MetaPathFinder):
    """Finds modules of versioned bundle packages, only inside their own folder."""

    def find_spec(
        self, fullname: str, path: Any, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(ROOT_PACKAGE + ".") or not path:
            return None
        leaf = fullname.rsplit(".", 1)[1]
        root = _bundle_root(fullname)
        for folder in path:
            package_init = Path(folder) / leaf / "__init__.py"
            module_file = Path(folder) / f"{leaf}.py"
            for candidate in (package_init, module_file):
                _refuse_outside(candidate, root)
            if package_init.is_file():
                return importlib.util.spec_from_file_location(
                    fullname,
                    package_init,
                    loader=FreshSourceLoader(fullname, str(package_init)),
                    submodule_search_locations=[str(package_init.parent)],
                )
            if module_file.is_file():
                return importlib.util.spec_from_file_location(
                    fullname, module_file, loader=FreshSourceLoader(fullname, str(module_file))
                )
        return None


def _bundle_root(fullname: str) -> Path | None:
    """The folder of the bundle version a module name belongs to (peftlab_bundles.K.ID.vH)."""
    package = sys.modules.get(".".join(fullname.split(".")[:4]))
    search = getattr(package, "__path__", None)
    return Path(list(search)[0]).resolve() if search else None


def _refuse_outside(candidate: Path, root: Path | None) -> None:
    """A module file that is a link out of the bundle, or a special file, is never imported."""
    if root is None or not (candidate.exists() or candidate.is_symlink()):
        return
    kind, reason = check_entry(candidate, root)
    if kind == "refused":
        raise ImportError(f"{candidate.name}: {reason}; bundle code stays inside it")


def _install_finder() -> None:
    if not any(isinstance(f, BundleFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, BundleFinder())


#: files hashed by content: the manifest, code and small text; anything else is data or
#: weights, stamped by size and modification time so discovery never reads it
HASHED_SUFFIXES = frozenset(
    {".py", ".pyi", ".yaml", ".yml", ".json", ".toml", ".cfg", ".ini", ".txt", ".md"}
)
#: a file above this size is stamped even with a code suffix (a JSON data file, a tokenizer dump)
HASHED_MAX_BYTES = 1 << 20


def content_hash(folder: Path) -> str:
    """Hash of every file's relative path and contents (code) or size and mtime (data, weights).

    Ignores caches, dotfiles and temp files. Copies made with `shutil.copytree` keep
    modification times, so a run's snapshot of a bundle hashes like the bundle.
    """
    digest = hashlib.sha256()
    for path in sorted(_bundle_files(folder)):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(_file_digest(path))
    return digest.hexdigest()


def _file_digest(path: Path) -> bytes:
    try:
        stat = path.stat()
        if path.suffix.lower() in HASHED_SUFFIXES and stat.st_size <= HASHED_MAX_BYTES:
            return hashlib.sha256(path.read_bytes()).digest()
    except OSError:
        return b"<unreadable>"
    return f"<stamp {stat.st_size} {stat.st_mtime_ns}>".encode()


def _bundle_files(folder: Path) -> list[Path]:
    files = []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder).parts
        if any(is_ignored_name(part) for part in rel):
            continue
        if path.is_file():
            files.append(path)
    return files


def module_prefix(kind: str, bundle_id: str) -> str:
    safe_id = bundle_id.replace("-", "_")
    return f"{ROOT_PACKAGE}.{kind}.{safe_id}"


def _ensure_package(name: str, path: list[str]) -> ModuleType:
    module = sys.modules.get(name)
    if module is None:
        module = ModuleType(name)
        module.__path__ = path
        module.__package__ = name
        sys.modules[name] = module
    return module


def entry_file(manifest: Manifest, folder: Path) -> Path | None:
    """The file the entry module resolves to inside the bundle, or None."""
    relative = Path(*manifest.entry_module.split("."))
    for candidate in (folder / f"{relative}.py", folder / relative / "__init__.py"):
        if candidate.is_file() and candidate.resolve().is_relative_to(folder.resolve()):
            return candidate
    return None


def import_entry(manifest: Manifest, folder: Path, version_hash: str) -> object:
    """Import the bundle's entry attribute; errors become PluginLoadError with file and line."""
    folder = folder.resolve()
    manifest_path = folder / "plugin.yaml"
    if entry_file(manifest, folder) is None:
        raise PluginLoadError(
            f"entry module '{manifest.entry_module}' not found in the bundle folder",
            path=manifest_path,
            field="entry",
        )
    prefix = module_prefix(manifest.kind, manifest.id)
    package_name = f"{prefix}.v{version_hash[:8]}"
    _ensure_package(ROOT_PACKAGE, [])
    _ensure_package(f"{ROOT_PACKAGE}.{manifest.kind}", [])
    _ensure_package(prefix, [])
    _ensure_package(package_name, [str(folder)])
    module_name = f"{package_name}.{manifest.entry_module}"
    _install_finder()
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        retire_modules(package_name)
        if missing.startswith(ROOT_PACKAGE):
            raise PluginLoadError(
                f"module not found inside the bundle: {missing.removeprefix(package_name + '.')}",
                path=manifest_path,
                field="entry",
            ) from None
        raise MissingDependencyError(
            missing.split(".")[0], path=_failing_file(exc, folder) or manifest_path
        ) from None
    except SyntaxError as exc:
        retire_modules(package_name)
        raise PluginLoadError(
            f"syntax error: {exc.msg}", path=exc.filename or manifest_path, line=exc.lineno
        ) from None
    except (Exception, SystemExit) as exc:  # a bundle calling sys.exit() at import is broken too
        retire_modules(package_name)
        file, line = _failing_frame(exc, folder)
        raise PluginLoadError(
            f"import raised {type(exc).__name__}: {exc}",
            path=file or manifest_path,
            line=line,
        ) from exc
    try:
        return getattr(module, manifest.entry_attribute)
    except AttributeError:
        retire_modules(package_name)
        raise PluginLoadError(
            f"module '{manifest.entry_module}' has no attribute '{manifest.entry_attribute}'",
            path=manifest_path,
            field="entry",
        ) from None


def _failing_frame(exc: BaseException, folder: Path) -> tuple[str | None, int | None]:
    """The deepest traceback frame inside the bundle: the line the author must look at."""
    file, line = None, None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename and Path(frame.filename).resolve().is_relative_to(folder):
            file, line = frame.filename, frame.lineno
    return file, line


def _failing_file(exc: BaseException, folder: Path) -> str | None:
    return _failing_frame(exc, folder)[0]


def retire_modules(prefix: str) -> None:
    """Drop a bundle version's modules from sys.modules (objects already handed out live on)."""
    for name in [n for n in sys.modules if n == prefix or n.startswith(prefix + ".")]:
        del sys.modules[name]
