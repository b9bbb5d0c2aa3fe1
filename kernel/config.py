"""Where peftlab looks for plugins and keeps its data, from arguments and environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from kernel.discovery import BundleLocation, scan_folder

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUILTIN_PLUGINS = PROJECT_ROOT / "plugins"
RECIPES_DIR = PROJECT_ROOT / "manifests" / "recipes"
SCHEMA_FILE = PROJECT_ROOT / "manifests" / "plugin.schema.json"

# Higher priority wins when two bundles claim the same kind and id:
# what the user points at explicitly beats what is installed, which beats built-ins.
PRIORITY_EXPLICIT = 3000
PRIORITY_ENV = 2000
PRIORITY_USER = 20
PRIORITY_PACKAGE = 10
PRIORITY_BUILTIN = 0


def peftlab_home() -> Path:
    return Path(os.environ.get("PEFTLAB_HOME") or Path.home() / ".peftlab")


def env_plugin_paths() -> list[Path]:
    raw = os.environ.get("PEFTLAB_PLUGIN_PATH", "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]


@dataclass
class KernelConfig:
    """Plugin sources in priority order; every field has a sensible default."""

    plugin_dirs: list[Path] = field(default_factory=list)  # --plugins-dir
    builtin_dir: Path | None = BUILTIN_PLUGINS
    user_dir: Path | None = None  # None = <PEFTLAB_HOME>/plugins
    use_env_path: bool = True
    use_entry_points: bool = True
    runs_dir: Path | None = None  # None = PEFTLAB_RUNS_DIR or ./runs

    def resolved_user_dir(self) -> Path:
        return self.user_dir if self.user_dir is not None else peftlab_home() / "plugins"

    def resolved_runs_dir(self) -> Path:
        if self.runs_dir is not None:
            return self.runs_dir
        return Path(os.environ.get("PEFTLAB_RUNS_DIR") or Path.cwd() / "runs")

    def data_dir(self) -> Path:
        """Where uploads and saved recipes go."""
        return peftlab_home() / "data"

    def folder_sources(self) -> list[tuple[Path, str, int]]:
        """(folder, origin, priority) for every plugin folder, highest priority first."""
        # Within one level the folder given first wins (priority falls by list position).
        explicit = [Path(p).expanduser() for p in self.plugin_dirs]
        sources = [
            (p, "path", PRIORITY_EXPLICIT + len(explicit) - i) for i, p in enumerate(explicit)
        ]
        if self.use_env_path:
            env = env_plugin_paths()
            sources += [(p, "env", PRIORITY_ENV + len(env) - i) for i, p in enumerate(env)]
        sources.append((self.resolved_user_dir(), "user", PRIORITY_USER))
        if self.builtin_dir is not None:
            sources.append((self.builtin_dir, "builtin", PRIORITY_BUILTIN))
        return sources

    def scan_folders(self) -> list[BundleLocation]:
        locations: list[BundleLocation] = []
        for folder, origin, priority in self.folder_sources():
            locations += scan_folder(folder, origin, priority)
        return locations

    def location_for(self, bundle_dir: Path) -> BundleLocation | None:
        """Which configured folder a bundle folder belongs to (for hot reload)."""
        bundle_dir = bundle_dir.resolve()
        for folder, origin, priority in self.folder_sources():
            try:
                if bundle_dir.is_relative_to(folder.resolve()):
                    return BundleLocation(bundle_dir, origin, priority)
            except OSError:
                continue
        return None
