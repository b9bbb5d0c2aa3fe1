"""What every page of the Streamlit app shares: the kernel, folders, run bookkeeping.

Not a page itself (the app registers its pages explicitly with st.navigation).
The kernel is created once per process and configuration with st.cache_resource;
every rerun then reads `kernel.snapshot`, so a plugin edited on disk shows up on
the next rerun without a restart.
"""

from __future__ import annotations

import os
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from kernel import Kernel, KernelConfig
from kernel.runs import RunFolder, list_runs

#: set by `peftlab ui --no-entry-points`; tests use it too, to keep discovery quick
NO_ENTRY_POINTS_ENV = "PEFTLAB_NO_ENTRY_POINTS"
#: set by `peftlab ui --plugins-dir DIR` (os.pathsep-separated)
PLUGIN_DIRS_ENV = "PEFTLAB_UI_PLUGIN_DIRS"


@dataclass(frozen=True)
class AppSettings:
    """The parts of the environment that decide which kernel this process serves."""

    plugin_dirs: str
    plugin_path: str
    home: str
    runs_dir: str
    use_entry_points: bool

    @classmethod
    def from_env(cls) -> AppSettings:
        return cls(
            plugin_dirs=os.environ.get(PLUGIN_DIRS_ENV, ""),
            plugin_path=os.environ.get("PEFTLAB_PLUGIN_PATH", ""),
            home=os.environ.get("PEFTLAB_HOME", ""),
            runs_dir=os.environ.get("PEFTLAB_RUNS_DIR", ""),
            use_entry_points=os.environ.get(NO_ENTRY_POINTS_ENV, "") not in ("1", "true", "yes"),
        )


class KernelHolder:
    """A kernel plus whether a file watcher keeps its registry current."""

    def __init__(self, settings: AppSettings) -> None:
        config = KernelConfig(
            plugin_dirs=[Path(p) for p in settings.plugin_dirs.split(os.pathsep) if p],
            use_entry_points=settings.use_entry_points,
            runs_dir=Path(settings.runs_dir) if settings.runs_dir else None,
        )
        self.kernel = Kernel(config)
        self.kernel.discover()
        self.watch_problem: str | None = None
        try:
            self.kernel.start_watching()
            self.watching = True
        except Exception as exc:  # no watcher (e.g. inotify limits): rescan on every rerun
            self.watching = False
            self.watch_problem = f"{type(exc).__name__}: {exc}"
        self._lock = threading.Lock()

    def current(self) -> Kernel:
        """The kernel, rescanned first when no watcher keeps it up to date."""
        if not self.watching:
            with self._lock:
                self.kernel.discover()
        return self.kernel


@st.cache_resource(show_spinner=False)
def _holder(settings: AppSettings) -> KernelHolder:
    return KernelHolder(settings)


def kernel() -> Kernel:
    """The process-wide kernel for the current environment (PEFTLAB_* variables)."""
    return _holder(AppSettings.from_env()).current()


def plugin_counts(snapshot: Any) -> tuple[int, int]:
    """(working bundles, bundle folders with problems), counted as the Plugins page counts."""
    from kernel.registry import describe_status

    rows = describe_status(snapshot)
    ok = sum(1 for r in rows if r["status"] == "ok")
    return ok, sum(1 for r in rows if r["error"])


def sidebar_status() -> None:
    """Under the page list: plugins and how changes to them arrive, and the run queue."""
    holder = _holder(AppSettings.from_env())
    ok, broken = plugin_counts(holder.kernel.snapshot)
    if holder.watching:
        st.sidebar.caption(f"{ok} plugins · hot reload on")
    else:
        st.sidebar.caption(f"{ok} plugins · rescanned on every click ({holder.watch_problem})")
    if broken:
        st.sidebar.caption(f":red[{broken} plugin(s) with problems: see Plugins]")
    from engine import queue

    folder = runs_dir()
    start_queued()
    # Tick once a second only while runs train or wait: a ticking fragment sends the
    # page's widget values, and widgets still being drawn would send their minimums.
    if queue.active_runs(folder) or queue.queued(folder):
        with st.sidebar:
            _watch()


@st.fragment(run_every=1.0)
def _watch() -> None:
    """Once a second while runs train or wait: start the next queued run when none trains,
    show the queue, and rerun the page when the plugins changed."""
    from engine import queue

    folder = runs_dir()
    start_queued()
    reap_processes()
    active = [r.id for r in queue.active_runs(folder)]
    waiting = [r.id for r in queue.queued(folder)]
    if active or waiting:
        st.caption(
            f"training: {', '.join(active) or 'nothing'} · {len(waiting)} queued"
            + (f" (next: {waiting[0]})" if waiting else "")
        )
    holder = _holder(AppSettings.from_env())
    if not holder.watching:  # every rerun rescans anyway
        return
    generation = holder.kernel.snapshot.generation
    seen = st.session_state.setdefault("peftlab.generation", generation)
    if generation != seen:
        st.session_state["peftlab.generation"] = generation
        st.rerun(scope="app")


def runs_dir() -> Path:
    return kernel().config.resolved_runs_dir()


def data_dir() -> Path:
    return kernel().config.data_dir()


def recipes_dir() -> Path:
    return data_dir() / "recipes"


def datasets_dir() -> Path:
    return data_dir() / "datasets"


# runs --------------------------------------------------------------------------------------


@st.cache_resource(show_spinner=False)
def _processes() -> dict[str, subprocess.Popen]:
    """Training processes this app started, by run folder; polled so they are reaped."""
    return {}


def remember_process(run: RunFolder, process: subprocess.Popen) -> None:
    _processes()[str(run.path)] = process


def start_queued() -> str | None:
    """Start the next queued run when none trains; the id of the run started, if any."""
    from engine import queue

    started = queue.start_next(runs_dir())
    if started is None:
        return None
    remember_process(*started)
    return started[0].id


def reap_processes() -> None:
    for key, process in list(_processes().items()):
        if process.poll() is not None:
            _processes().pop(key, None)


def cancel_run(run: RunFolder) -> str:
    """Stop a run's process group the way `peftlab train` does on Ctrl-C (SIGINT, then
    SIGTERM, then SIGKILL), only if it is the process the run recorded; checkpoints stay."""
    from engine.process import stop_run

    return stop_run(run, _processes().get(str(run.path))).message


def run_rows(folder: Path) -> list[dict[str, Any]]:
    """One summary row per run folder, newest first; a damaged folder is a row with state
    'damaged' and its reason in 'problem', never a failed page."""
    rows = []
    for run in reversed(list_runs(folder)):
        problem = run.damage()
        status = run.status()
        try:
            recipe = run.recipe()
        except Exception:  # a half-written folder: list it, do not fail the page
            recipe = {}
        results = run.results() or {}
        rows.append(
            {
                "run": run.id,
                "state": "damaged" if problem else status.get("state", "?"),
                "dataset": _plugin_id(recipe, "dataset"),
                "model": _plugin_id(recipe, "model"),
                "technique": _plugin_id(recipe, "technique"),
                "accuracy": results.get("accuracy"),
                "f1_macro": results.get("f1_macro"),
                "trainable_percent": results.get("trainable_percent"),
                "train_runtime_s": results.get("train_runtime_s"),
                "peak_memory_mb": results.get("peak_memory_mb"),
                "problem": problem or "",
                "path": str(run.path),
            }
        )
    return rows


def _plugin_id(recipe: dict[str, Any], kind: str) -> str:
    entry = recipe.get(kind)
    return str(entry.get("id", "")) if isinstance(entry, dict) else ""


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


CHOICES_KEY = "peftlab.chosen_ids"


def chosen_ids() -> dict[str, str]:
    """The plugin chosen per kind on the Train page; kept across page switches."""
    return st.session_state.setdefault(CHOICES_KEY, {})


def choose(kind: str, bundle_id: str) -> None:
    """Preset the Train page's choice of one kind (call before its widgets are drawn)."""
    chosen_ids()[kind] = bundle_id
    st.session_state.pop(f"choice:{kind}", None)
