"""The registry: kind and id -> Bundle, swapped atomically, last good version kept.

Readers take `registry.snapshot` (an immutable view) and never hold the lock.
Writers build a new snapshot under the lock (copy-on-write) and bump the
generation, so a run that holds a Bundle keeps the version it started with.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from kernel.discovery import BundleLocation
from kernel.errors import PeftlabError, PluginLoadError, UnknownPluginError
from kernel.loader import content_hash, import_entry, module_prefix, retire_modules
from kernel.manifest import MANIFEST_FILE, Manifest, load_manifest
from kernel.trialimport import imports_guarded, trial_import

Key = tuple[str, str]


class DuplicateBundleWarning(UserWarning):
    """Two bundles claim the same kind and id; the one with higher priority wins."""


@dataclass
class Bundle:
    """One version of a bundle: its manifest, where it lives, and its lazily imported entry."""

    manifest: Manifest
    location: BundleLocation
    content_hash: str
    _entry: object | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def key(self) -> Key:
        return self.manifest.key

    @property
    def path(self) -> Path:
        return self.location.path

    @property
    def origin(self) -> str:
        return self.location.origin

    @property
    def is_imported(self) -> bool:
        return self._entry is not None

    def load(self) -> object:
        """The entry attribute, imported on first use under this version's module name."""
        with self._lock:
            if self._entry is None:
                # The folder may have changed since it was read (a reload that failed keeps
                # this version registered); importing now would run other code under this
                # version's name and manifest.
                if content_hash(self.path) != self.content_hash:
                    raise PluginLoadError(
                        "the bundle folder changed since this version was read and it was "
                        "never imported; reload or rescan to use the current files",
                        path=self.path / MANIFEST_FILE,
                    )
                if self.origin != "builtin" and imports_guarded():
                    failure = trial_import(self.path)  # a crash or hang stays in the child
                    if failure is not None:
                        raise failure
                self._entry = import_entry(self.manifest, self.path, self.content_hash)
            return self._entry

    def instantiate(self) -> object:
        entry = self.load()
        return entry() if isinstance(entry, type) else entry


@dataclass(frozen=True)
class BundleProblem:
    """A bundle folder that could not be (re)loaded, and why."""

    location: BundleLocation
    error: PeftlabError
    key: Key | None = None  # known when the manifest parsed far enough


@dataclass(frozen=True)
class Snapshot:
    """An immutable view of the registry at one generation."""

    generation: int
    bundles: Mapping[Key, Bundle]
    problems: Mapping[Path, BundleProblem]
    shadowed: tuple[tuple[Bundle, Bundle], ...] = ()  # (loser, winner)

    def get(self, kind: str, bundle_id: str) -> Bundle:
        try:
            return self.bundles[(kind, bundle_id)]
        except KeyError:
            valid = ", ".join(self.ids(kind)) or "(none)"
            raise UnknownPluginError(
                f"no {kind} plugin '{bundle_id}'; available: {valid}", field=kind
            ) from None

    def ids(self, kind: str) -> list[str]:
        return sorted(i for k, i in self.bundles if k == kind)

    def of_kind(self, kind: str) -> list[Bundle]:
        return [self.bundles[(kind, i)] for i in self.ids(kind)]

    def by_path(self, path: Path) -> Bundle | None:
        for bundle in self.bundles.values():
            if bundle.path == path:
                return bundle
        return None


@dataclass(frozen=True)
class Change:
    """What one registry update did, for subscribers."""

    action: str  # added | reloaded | failed | removed | unchanged
    path: Path
    key: Key | None
    error: PeftlabError | None = None
    generation: int = 0
    kept_previous: bool = False  # a failed reload left an earlier version of this folder active

    def describe(self) -> str:
        name = f"{self.key[0]} '{self.key[1]}'" if self.key else str(self.path)
        if self.action == "failed":
            kept = " (last good version kept)" if self.kept_previous else ""
            return f"failed   {name}{kept}: {self.error}"
        return f"{self.action:<8} {name} ({self.path})"


def read_bundle(location: BundleLocation) -> Bundle:
    """Parse and validate a bundle folder without importing it."""
    # Hash first: an edit landing after the hash changes it, so the next reload sees it;
    # hashing after the parse could pair an old manifest with the new files' hash.
    version_hash = content_hash(location.path)
    manifest = load_manifest(location.path / MANIFEST_FILE)
    return Bundle(manifest, location, version_hash)


def check_entry_exists(bundle: Bundle) -> None:
    from kernel.loader import entry_file

    if entry_file(bundle.manifest, bundle.path) is None:
        raise PluginLoadError(
            f"entry module '{bundle.manifest.entry_module}' not found in the bundle folder",
            path=bundle.path / MANIFEST_FILE,
            field="entry",
        )


def _problem_key(location: BundleLocation) -> Key | None:
    """Best-effort kind and id of a broken bundle, so a failed reload maps to its last good one."""
    from kernel.yamlio import read_yaml

    try:
        data = read_yaml(location.path / MANIFEST_FILE)
    except Exception:
        return None
    if (
        isinstance(data, dict)
        and isinstance(data.get("kind"), str)
        and isinstance(data.get("id"), str)
    ):
        return (data["kind"], data["id"])
    return None


class Registry:
    """Holds the current snapshot; every write makes a new one."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._snapshot = Snapshot(0, MappingProxyType({}), MappingProxyType({}))
        self._all: dict[Path, Bundle] = {}  # every valid bundle folder, winners and shadowed

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    def replace_all(
        self, locations: Iterable[BundleLocation], extra_problems: Iterable[BundleProblem] = ()
    ) -> Snapshot:
        """A full scan: read every location, resolve duplicates, publish one snapshot."""
        bundles: dict[Path, Bundle] = {}
        problems: dict[Path, BundleProblem] = {}
        for location in locations:
            if location.path in bundles or location.path in problems:
                continue  # same folder reached twice (e.g. a plugin dir listed twice)
            try:
                bundle = read_bundle(location)
                check_entry_exists(bundle)
                bundles[location.path] = bundle
            except PeftlabError as exc:
                problems[location.path] = BundleProblem(location, exc, _problem_key(location))
        for problem in extra_problems:
            problems[problem.location.path] = problem
        with self._lock:
            self._all = bundles
            return self._publish(problems)

    def update_folder(self, location: BundleLocation) -> Change:
        """Re-read one folder (added or changed); swap in only if it is valid and imports."""
        with self._lock:
            path = location.path
            old = self._all.get(path)
            if not (path / MANIFEST_FILE).exists() and not path.exists():
                return self.remove_folder(path)
            try:
                bundle = read_bundle(location)
                if old is not None and old.content_hash == bundle.content_hash:
                    if path not in self._snapshot.problems:
                        return Change(
                            "unchanged", path, old.key, generation=self._snapshot.generation
                        )
                    # Reverted to the active version after a failed edit: clear the failure.
                    problems = {p: v for p, v in self._snapshot.problems.items() if p != path}
                    snap = self._publish(problems)
                    return Change("reloaded", path, old.key, generation=snap.generation)
                check_entry_exists(bundle)
                bundle.load()  # import the new code before it replaces working code
                if content_hash(path) != bundle.content_hash:
                    # An edit landed while it was read and imported: its parts may come from
                    # two saves. That edit's own event reloads the folder again.
                    retire_modules(f"{module_prefix(*bundle.key)}.v{bundle.content_hash[:8]}")
                    raise PluginLoadError(
                        "the bundle's files changed while it was loading; "
                        "the finished edit is reloaded next",
                        path=path / MANIFEST_FILE,
                    )
            except PeftlabError as exc:
                key = old.key if old is not None else _problem_key(location)
                problems = dict(self._snapshot.problems)
                problems[path] = BundleProblem(location, exc, key)
                snap = self._publish(problems)
                return Change("failed", path, key, exc, snap.generation, old is not None)
            self._all[path] = bundle
            problems = {p: v for p, v in self._snapshot.problems.items() if p != path}
            snap = self._publish(problems)
            if old is not None:
                self._retire(old)
            return Change(
                "reloaded" if old else "added", path, bundle.key, generation=snap.generation
            )

    def remove_folder(self, path: Path) -> Change:
        with self._lock:
            old = self._all.pop(path, None)
            problem = self._snapshot.problems.get(path)
            problems = {p: v for p, v in self._snapshot.problems.items() if p != path}
            if old is None and problem is None:
                return Change("unchanged", path, None, generation=self._snapshot.generation)
            snap = self._publish(problems)
            if old is not None:
                self._retire(old)
            key = old.key if old else problem.key if problem else None
            return Change("removed", path, key, generation=snap.generation)

    def _retire(self, old: Bundle) -> None:
        # Objects already handed out (to a run) keep working: they hold their module.
        retire_modules(f"{module_prefix(*old.key)}.v{old.content_hash[:8]}")

    def _publish(self, problems: dict[Path, BundleProblem]) -> Snapshot:
        winners: dict[Key, Bundle] = {}
        shadowed: list[tuple[Bundle, Bundle]] = []
        ordered = sorted(self._all.values(), key=lambda b: (-b.location.priority, str(b.path)))
        for bundle in ordered:
            current = winners.get(bundle.key)
            if current is None:
                winners[bundle.key] = bundle
                continue
            shadowed.append((bundle, current))
            warnings.warn(
                f"{bundle.key[0]} '{bundle.key[1]}' is defined twice: {current.path} "
                f"({current.origin}) wins over {bundle.path} ({bundle.origin})",
                DuplicateBundleWarning,
                stacklevel=3,
            )
        self._snapshot = Snapshot(
            self._snapshot.generation + 1,
            MappingProxyType(winners),
            MappingProxyType(problems),
            tuple(shadowed),
        )
        return self._snapshot


def describe_status(snapshot: Snapshot) -> list[dict[str, object]]:
    """One row per bundle folder (ok, shadowed, broken) for listings."""
    rows: list[dict[str, object]] = []
    for bundle in snapshot.bundles.values():
        problem = snapshot.problems.get(bundle.path)
        rows.append(_row(bundle, "ok" if problem is None else "reload failed", problem))
    for loser, winner in snapshot.shadowed:
        rows.append(_row(loser, f"shadowed by {winner.path}", None))
    active_paths = {b.path for b in snapshot.bundles.values()}
    for path, problem in snapshot.problems.items():
        if path in active_paths:
            continue
        kind, bundle_id = problem.key or ("?", path.name)
        rows.append(
            {
                "kind": kind,
                "id": bundle_id,
                "version": "",
                "origin": problem.location.origin,
                "path": str(path),
                "status": "broken",
                "error": str(problem.error),
            }
        )
    rows.sort(key=lambda r: (str(r["kind"]), str(r["id"]), str(r["status"])))
    return rows


def _row(bundle: Bundle, status: str, problem: BundleProblem | None) -> dict[str, object]:
    return {
        "kind": bundle.manifest.kind,
        "id": bundle.manifest.id,
        "version": bundle.manifest.version,
        "origin": bundle.origin,
        "path": str(bundle.path),
        "status": status,
        "error": str(problem.error) if problem else "",
    }
