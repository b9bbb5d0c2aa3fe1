"""Hot reload: watch the plugin folders and swap changed bundles into the registry.

Two threads share the work. watchdog's observer thread only looks at paths: it
drops noise (caches, dotfiles, editor temp files), maps each path to the bundle
folder it belongs to and (re)arms that folder's trailing timer, so a save that
writes several files, or an editor's write-then-rename, becomes one change. One
worker thread takes folders whose timer ran out and calls the registry
(`update_folder` or `remove_folder`), then `Kernel.apply_change`, which tells
the subscribers. The registry validates and imports the new version before it
swaps it in; a failed reload keeps the last good version and records the error.

A plugin folder that does not exist yet (a new user's `$PEFTLAB_HOME/plugins`)
is watched through its nearest existing parent: when a folder appears or goes
there, the worker re-checks the plugin folders (`refresh`), so a folder created
while the app runs is watched from then on and its bundles are added.

Which bundle a changed path belongs to is kernel.bundle_paths' job.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from watchdog.events import (
    EVENT_TYPE_DELETED,
    EVENT_TYPE_MOVED,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch

from kernel.bundle_paths import bundles_below, is_noise, nearest_existing, owning_bundle
from kernel.manifest import MANIFEST_FILE
from kernel.trialimport import guard_imports

if TYPE_CHECKING:
    from kernel.core import Kernel

log = logging.getLogger(__name__)

DEBOUNCE_SECONDS = 0.3
# What can change a bundle's files. Directory "modified" and attribute events
# only echo the file events below, and opening a file changes nothing.
WATCHED_EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileClosedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
]


class _Handler(FileSystemEventHandler):
    """Runs on the observer thread: turns events into folders to reload, nothing more."""

    def __init__(self, reloader: HotReloader) -> None:
        self.reloader = reloader

    def on_any_event(self, event: FileSystemEvent) -> None:
        try:
            gone = event.event_type in (EVENT_TYPE_DELETED, EVENT_TYPE_MOVED)
            self.reloader.notice(Path(_text(event.src_path)), event.is_directory, gone=gone)
            if event.event_type == EVENT_TYPE_MOVED:
                self.reloader.notice(Path(_text(event.dest_path)), event.is_directory)
        except Exception:  # an exception here would stop the observer thread for good
            log.exception("hot reload could not handle %r", event)


class _ParentHandler(FileSystemEventHandler):
    """Watches the nearest existing parent of a missing plugin folder for folders coming
    and going; any such change asks the worker to re-check the plugin folders."""

    def __init__(self, reloader: HotReloader) -> None:
        self.reloader = reloader

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            self.reloader.request_refresh()


def _text(path: bytes | str) -> str:
    return path.decode() if isinstance(path, bytes) else path


class HotReloader:
    """Watches every existing plugin folder of a kernel and keeps its registry current."""

    def __init__(self, kernel: Kernel, debounce: float = DEBOUNCE_SECONDS) -> None:
        self.kernel = kernel
        self.debounce = debounce
        self._cond = threading.Condition()
        self._due: dict[Path, float] = {}  # bundle folder -> when its trailing timer runs out
        self._busy = False
        self._stopping = False
        self._roots: frozenset[Path] = frozenset()  # every existing plugin folder
        self._watches: dict[Path, ObservedWatch] = {}  # the outermost ones, watched recursively
        self._parents: dict[Path, ObservedWatch] = {}  # parents of missing plugin folders
        self._refresh_wanted = False
        self._refresh_lock = threading.Lock()
        self._parent_handler = _ParentHandler(self)
        self._observer: BaseObserver | None = None
        self._worker: threading.Thread | None = None
        self._handler = _Handler(self)

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> HotReloader:
        if self._observer is not None:
            return self
        self._stopping = False
        guard_imports(True)  # a watching process lives long: bundle code is tried in a child first
        self._observer = Observer()
        self._observer.daemon = True
        self._worker = threading.Thread(target=self._run, name="peftlab-hot-reload", daemon=True)
        self._worker.start()
        self.refresh(initial=True)
        self._observer.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop watching; changes still waiting for their timer are dropped."""
        observer, self._observer = self._observer, None
        if observer is not None:
            guard_imports(False)
            observer.stop()
            observer.join(timeout)
        with self._cond:
            self._stopping = True
            self._due.clear()
            self._cond.notify_all()
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(timeout)
        self._worker = None
        self._watches.clear()
        self._parents.clear()
        self._roots = frozenset()

    def __enter__(self) -> HotReloader:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._observer is not None

    @property
    def roots(self) -> list[Path]:
        """The plugin folders being watched now."""
        return sorted(self._roots)

    def refresh(self, initial: bool = False) -> list[Path]:
        """Re-check which plugin folders exist: watch new ones, drop vanished ones.

        Bundles in a folder that starts being watched are queued (added); bundles
        of a folder that vanished are queued too (removed). At start, the kernel's
        own discovery has already read what is there.
        """
        with self._refresh_lock:  # the worker and a caller's loop may both refresh
            observer = self._observer
            if observer is None:
                return []
            self._refresh_roots(observer, initial)
            self._watch_parents(observer)
            return self.roots

    def _refresh_roots(self, observer: BaseObserver, initial: bool) -> None:
        wanted = self._existing_roots()
        vanished = [r for r in self._roots if r not in wanted]
        self._roots = frozenset(wanted)
        for root in vanished:
            watch = self._watches.pop(root, None)
            if watch is not None:
                try:
                    observer.unschedule(watch)
                except (KeyError, OSError):  # its emitter stopped when the folder went
                    pass
            self.queue(*self._known_below(root))
        for root in sorted(wanted, key=lambda r: len(r.parts)):
            if root in self._watches or any(root.is_relative_to(w) for w in self._watches):
                continue
            try:
                self._watches[root] = observer.schedule(
                    self._handler, str(root), recursive=True, event_filter=WATCHED_EVENTS
                )
            except OSError as exc:
                log.warning("cannot watch %s: %s", root, exc)
                continue
            if not initial:
                self.queue(*bundles_below(root, 0))

    def _watch_parents(self, observer: BaseObserver) -> None:
        """Watch the nearest existing parent of every plugin folder that does not exist."""
        needed: set[Path] = set()
        for folder, _origin, _priority in self.kernel.config.folder_sources():
            folder = Path(folder).expanduser().absolute()
            if folder.resolve() in self._roots:
                continue
            parent = nearest_existing(folder)
            if parent is not None:
                needed.add(parent.resolve())
        for parent in [p for p in self._parents if p not in needed]:
            try:
                observer.unschedule(self._parents.pop(parent))
            except (KeyError, OSError):  # gone with its folder
                pass
        for parent in sorted(needed - set(self._parents)):
            try:
                self._parents[parent] = observer.schedule(
                    self._parent_handler, str(parent), recursive=False
                )
            except OSError as exc:
                log.warning("cannot watch %s for new plugin folders: %s", parent, exc)
        # A folder may have appeared between the existence checks and the new watches.
        if any(r not in self._roots for r in self._existing_roots()):
            self.request_refresh()

    def request_refresh(self) -> None:
        """Ask the worker thread to re-check the plugin folders (from any thread)."""
        with self._cond:
            self._refresh_wanted = True
            self._cond.notify_all()

    @property
    def parent_watches(self) -> list[Path]:
        """Folders watched because a plugin folder below them does not exist yet."""
        return sorted(self._parents)

    def _existing_roots(self) -> set[Path]:
        roots: set[Path] = set()
        for folder, _origin, _priority in self.kernel.config.folder_sources():
            try:
                if folder.is_dir():
                    roots.add(folder.resolve())
            except OSError:
                continue
        return roots

    # -- observer thread -----------------------------------------------------------

    def notice(self, path: Path, is_directory: bool, gone: bool = False) -> None:
        """Map a changed path to the bundle folder(s) it touches and (re)arm their timers."""
        root = self._root_of(path)
        if root is None:
            return
        if path == root:
            if gone:  # the plugin folder itself went away: watch its parent from now on
                self.queue(*self._known_below(root))
                self.request_refresh()
            return
        known = self._known_folders()
        folders = []
        owner = owning_bundle(path, root, is_directory, known)
        if owner is not None:
            folders.append(owner)
        if is_directory and not any(is_noise(p) for p in path.relative_to(root).parts):
            # A whole folder came or went (rm -r, mv in or out): every bundle in it changes.
            folders += [k for k in known if k.is_relative_to(path)]
            if not gone:
                folders += bundles_below(path, len(path.relative_to(root).parts))
        self.queue(*folders)

    def queue(self, *folders: Path) -> None:
        """Reload these bundle folders once no event touched them for `debounce` seconds."""
        if not folders:
            return
        deadline = time.monotonic() + self.debounce
        with self._cond:
            if self._stopping:
                return
            for folder in folders:
                self._due[folder] = deadline
            self._cond.notify_all()

    def _root_of(self, path: Path) -> Path | None:
        # The innermost plugin folder wins: bundle depth is counted from it.
        candidates = [r for r in self._roots if path.is_relative_to(r)]
        return max(candidates, key=lambda r: len(r.parts), default=None)

    def _known_folders(self) -> set[Path]:
        snap = self.kernel.registry.snapshot
        known = {b.path for b in snap.bundles.values()}
        known.update(loser.path for loser, _winner in snap.shadowed)
        known.update(snap.problems)
        with self._cond:
            known.update(self._due)
        return known

    def _known_below(self, folder: Path) -> list[Path]:
        return [k for k in self._known_folders() if k.is_relative_to(folder)]

    # -- worker thread -------------------------------------------------------------

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until no folder waits for its timer and no reload is running."""
        with self._cond:
            return self._cond.wait_for(
                lambda: not self._due and not self._busy and not self._refresh_wanted, timeout
            )

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stopping:
                        return
                    refresh, self._refresh_wanted = self._refresh_wanted, False
                    if refresh:
                        self._busy = True
                        break
                    now = time.monotonic()
                    ready = [f for f, due in self._due.items() if due <= now]
                    if ready:
                        for folder in ready:
                            del self._due[folder]
                        self._busy = True
                        break
                    self._cond.wait(min(self._due.values()) - now if self._due else None)
            if refresh:  # outside the lock: refresh queues the bundles it finds
                self._safe_refresh()
            else:
                self._reload_all(ready)
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def _reload_all(self, ready: list[Path]) -> None:
        # Removals first, so a bundle moved to a new folder is never registered twice.
        ready.sort(key=lambda f: ((f / MANIFEST_FILE).is_file(), str(f)))
        for folder in ready:
            self._reload(folder)

    def _safe_refresh(self) -> None:
        try:
            self.refresh()
        except Exception:  # the worker must keep running
            log.exception("hot reload could not re-check the plugin folders")

    def _reload(self, folder: Path) -> None:
        registry = self.kernel.registry
        try:
            location = self.kernel.config.location_for(folder)
            if location is None:
                return
            if (location.path / MANIFEST_FILE).is_file():
                change = registry.update_folder(location)
            else:  # the folder, or its plugin.yaml, is gone
                change = registry.remove_folder(location.path)
            self.kernel.apply_change(change)
        except BaseException:  # even a bundle calling sys.exit() must not end the watching
            log.exception("hot reload of %s failed unexpectedly", folder)
