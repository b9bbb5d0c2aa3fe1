"""The Kernel: one object that owns configuration, registry, events and the graph."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from kernel.capabilities import CapabilityGraph
from kernel.config import PRIORITY_PACKAGE, KernelConfig
from kernel.discovery import BundleLocation, clear_entry_point_caches, scan_entry_points
from kernel.errors import PluginLoadError
from kernel.events import EventBus
from kernel.registry import Bundle, BundleProblem, Change, Registry, Snapshot

if TYPE_CHECKING:
    from kernel.hotreload import HotReloader


class Kernel:
    """Discovers bundles, holds the registry, and answers what fits with what."""

    def __init__(self, config: KernelConfig | None = None) -> None:
        self.config = config or KernelConfig()
        self.registry = Registry()
        self.events = EventBus()
        self._graph: CapabilityGraph | None = None
        self._graph_generation = -1
        self._graph_lock = threading.Lock()
        self._reloader: HotReloader | None = None

    @property
    def snapshot(self) -> Snapshot:
        return self.registry.snapshot

    def discover(self) -> Snapshot:
        """A full scan of every plugin folder and installed package."""
        locations: list[BundleLocation] = self.config.scan_folders()
        problems: list[BundleProblem] = []
        if self.config.use_entry_points:

            def failed(error: PluginLoadError) -> None:
                where = BundleLocation(_pseudo_path(error), "package", PRIORITY_PACKAGE)
                problems.append(BundleProblem(where, error))

            clear_entry_point_caches()
            locations += list(scan_entry_points(PRIORITY_PACKAGE, failed))
        return self.registry.replace_all(locations, problems)

    def get(self, kind: str, bundle_id: str) -> Bundle:
        return self.snapshot.get(kind, bundle_id)

    def graph(self) -> CapabilityGraph:
        """The capability graph of the current snapshot, rebuilt only when it changed."""
        snap = self.snapshot
        with self._graph_lock:
            if self._graph is None or self._graph_generation != snap.generation:
                self._graph = CapabilityGraph.build(snap)
                self._graph_generation = snap.generation
            return self._graph

    def apply_change(self, change: Change) -> None:
        if change.action != "unchanged":
            self.events.publish(change)

    def start_watching(self, debounce: float | None = None) -> HotReloader:
        """Hot reload: watch the plugin folders and apply every change (see kernel.hotreload)."""
        from kernel.hotreload import DEBOUNCE_SECONDS, HotReloader

        if self._reloader is None:
            self._reloader = HotReloader(self, DEBOUNCE_SECONDS if debounce is None else debounce)
            self._reloader.start()
        return self._reloader

    def stop_watching(self) -> None:
        reloader, self._reloader = self._reloader, None
        if reloader is not None:
            reloader.stop()


def _pseudo_path(error: PluginLoadError) -> Any:  # a Path key for a non-folder problem
    from pathlib import Path

    return Path(f"<{error.path}:{error.field}>")
