"""The run queue: prepared runs wait in order and train one at a time.

A small machine trains one run at a time well and two badly, so every face
queues a run instead of starting it next to another: `enqueue` marks a
prepared run folder `queued` and appends it to queue.json in the runs folder;
`start_next` starts the first queued run when no run's process is alive. The
app calls `start_next` on every rerun; the HTTP service keeps a `Starter` thread
calling it, so a run queued by either starts and shows in both, and survives a
restart of either. A lock file keeps two processes from starting the same run.
"""

from __future__ import annotations

import fcntl
import json
import logging
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kernel.errors import PeftlabError, RunError
from kernel.procs import ProcessIdentity
from kernel.runs import RunFolder, atomic_write_json, list_runs

_log = logging.getLogger(__name__)

QUEUE_FILE = "queue.json"
LOCK_FILE = ".queue.lock"
QUEUED = "queued"
#: states whose process may be alive: "pending" covers a run started but not yet running
LIVE_STATES = ("pending", "running")
#: a run launched this recently counts as live until its process records itself
LAUNCH_GRACE_S = 120.0


@contextmanager
def _locked(runs_dir: Path) -> Iterator[None]:
    runs_dir.mkdir(parents=True, exist_ok=True)
    with open(runs_dir / LOCK_FILE, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read(runs_dir: Path) -> list[str]:
    try:
        data = json.loads((runs_dir / QUEUE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [str(i) for i in data.get("runs", [])] if isinstance(data, dict) else []


def _write(runs_dir: Path, ids: list[str]) -> None:
    atomic_write_json(runs_dir / QUEUE_FILE, {"runs": ids})


def queued(runs_dir: Path) -> list[RunFolder]:
    """The runs waiting, first to start first (folders gone since are left out)."""
    runs = [RunFolder(runs_dir / run_id) for run_id in _read(runs_dir)]
    return [run for run in runs if run.path.is_dir() and run.status().get("state") == QUEUED]


def position(runs_dir: Path, run_id: str) -> int | None:
    """The place of a waiting run in the queue (1 = next), or None when it is not waiting."""
    ids = [run.id for run in queued(runs_dir)]
    return ids.index(run_id) + 1 if run_id in ids else None


def enqueue(run: RunFolder) -> int:
    """Put a prepared run at the end of the queue; returns its place (1 = next)."""
    runs_dir = run.path.parent
    with _locked(runs_dir):
        ids = [i for i in _read(runs_dir) if i != run.id]
        ids.append(run.id)
        run.set_status(QUEUED)
        _write(runs_dir, ids)
    return len(ids)


def dequeue(run: RunFolder) -> bool:
    """Take a waiting run off the queue (it stays as a run folder in state `cancelled`)."""
    runs_dir = run.path.parent
    with _locked(runs_dir):
        ids = _read(runs_dir)
        if run.id not in ids:
            return False
        _write(runs_dir, [i for i in ids if i != run.id])
        if run.status().get("state") == QUEUED:
            run.set_status("cancelled")
    return True


def is_live(run: RunFolder) -> bool:
    """Whether the run's recorded process (pid and start time) is alive."""
    status = run.status()
    if status.get("state") not in LIVE_STATES:
        return False
    identity = ProcessIdentity.from_status(status)
    if identity is not None:
        return identity.alive()
    launched = status.get("launched")
    return isinstance(launched, int | float) and time.time() - launched < LAUNCH_GRACE_S


def active_runs(runs_dir: Path) -> list[RunFolder]:
    return [run for run in list_runs(runs_dir) if is_live(run)]


def start_next(
    runs_dir: Path, at_most: int = 1
) -> tuple[RunFolder, subprocess.Popen[bytes]] | None:
    """Start the first queued run when fewer than `at_most` runs train (one by default);
    None when nothing started."""
    from engine.process import start_run

    if not (runs_dir / QUEUE_FILE).is_file():
        return None  # nothing was ever queued here (and no runs folder is made to find that)
    with _locked(runs_dir):
        if len(active_runs(runs_dir)) >= at_most:
            return None
        ids = _read(runs_dir)
        waiting = [RunFolder(runs_dir / i) for i in ids]
        waiting = [r for r in waiting if r.path.is_dir() and r.status().get("state") == QUEUED]
        if not waiting:
            if ids:
                _write(runs_dir, [])
            return None
        run = waiting[0]
        _write(runs_dir, [r.id for r in waiting[1:]])
        # live from now on, before the process itself records "running" with its pid
        run.set_status("pending", launched=time.time())
        try:
            process = start_run(run)
        except (OSError, RunError) as exc:
            run.set_status("failed", error=f"cannot start the run: {exc}", launched=None)
            return None
    return run, process


class Starter:
    """A thread that starts queued runs as runs end, for a process with no reruns of its own
    (the HTTP service); it waits on the processes it started so none is left a zombie."""

    def __init__(self, runs_dir: Path, at_most: int = 1, interval_s: float = 1.0) -> None:
        self.runs_dir = runs_dir
        self.at_most = at_most
        self.interval_s = interval_s
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._started: list[subprocess.Popen[bytes]] = []
        self._thread = threading.Thread(target=self._loop, name="peftlab-queue", daemon=True)

    def start(self) -> Starter:
        self._thread.start()
        return self

    def poke(self) -> None:
        """Look at the queue now rather than at the next interval (a run was just queued)."""
        self._wake.set()

    def stop(self) -> None:
        """Stop starting runs; the runs training go on (each lives in its own process)."""
        self._stopped.set()
        self._wake.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stopped.is_set():
            self._started = [p for p in self._started if p.poll() is None]
            try:
                while (started := start_next(self.runs_dir, self.at_most)) is not None:
                    self._started.append(started[1])
            except (OSError, PeftlabError) as exc:  # e.g. a full disk: try at the next interval
                _log.warning("cannot start the next queued run in %s: %s", self.runs_dir, exc)
            self._wake.wait(self.interval_s)
            self._wake.clear()
