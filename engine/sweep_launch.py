"""Where sweeps and comparisons start runs on this machine: at most N at once, each pinned
to its share of the cores (and of the GPUs), every one an ordinary run folder."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Every run a sweep or a comparison starts goes through this import; they prepare their
# run folders with engine.prepare (checked as `peftlab train` checks them).
from engine.process import start_run
from engine.runner import main as run_in_this_process
from kernel.runs import RunFolder

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass(frozen=True)
class Slot:
    """The cores (and GPU) one run at a time may use."""

    cores: tuple[int, ...]
    gpu: str | None = None

    def env(self) -> dict[str, str]:
        # torch sizes its intra-op pool from OMP_NUM_THREADS when it starts
        env = {name: str(len(self.cores)) for name in THREAD_VARIABLES}
        if self.gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = self.gpu
        return env


def visible_gpus() -> list[str]:
    """GPU ids this process may use, from CUDA_VISIBLE_DEVICES or nvidia-smi (no torch import)."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [g.strip() for g in listed.split(",") if g.strip() and g.strip() != "-1"]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [str(i) for i, line in enumerate(out.stdout.splitlines()) if line.startswith("GPU ")]


def slots(parallel: int) -> list[Slot]:
    """`parallel` slots sharing this process's cores evenly (and its GPUs round-robin)."""
    cores = sorted(os.sched_getaffinity(0))
    share = max(1, len(cores) // parallel)
    gpus = visible_gpus()
    result = []
    for i in range(parallel):
        start = (i * share) % len(cores)
        mine = tuple(cores[start : start + share]) or (cores[i % len(cores)],)
        result.append(Slot(mine, gpus[i % len(gpus)] if gpus else None))
    return result


class LocalLauncher:
    """Runs prepared run folders as training processes, at most `parallel` at once."""

    def __init__(self, parallel: int = 1) -> None:
        self.parallel = parallel
        self._free: queue.Queue[Slot] = queue.Queue()
        for slot in slots(parallel):
            self._free.put(slot)
        self._live: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()

    def describe(self) -> str:
        cores = len(os.sched_getaffinity(0))
        return f"{self.parallel} at a time on this machine ({cores} cores)"

    def run(self, run: RunFolder) -> int:
        """Train one run to its end in a free slot; the training process's exit code."""
        slot = self._free.get()
        try:
            process = start_run(run, env=slot.env() if self.parallel > 1 else None)
            if self.parallel > 1:
                os.sched_setaffinity(process.pid, slot.cores)  # threads started later inherit it
            with self._lock:
                self._live.add(process)
            try:
                return process.wait()
            finally:
                with self._lock:
                    self._live.discard(process)
        finally:
            self._free.put(slot)

    def stop(self) -> None:
        """Interrupt every running training process (each records itself as failed)."""
        with self._lock:
            live = list(self._live)
        for process in live:
            try:
                os.killpg(process.pid, signal.SIGINT)  # its own session: the group is its pid
            except ProcessLookupError:
                pass

    def close(self) -> None:
        """Nothing to release for local processes."""


def run_many(
    runs: list[RunFolder],
    launcher: Any,
    parallel: int,
    on_done: Callable[[RunFolder, int], None] | None = None,
) -> list[int]:
    """Train every prepared run through `launcher`, `parallel` at a time; exit codes in order."""
    from concurrent.futures import ThreadPoolExecutor

    def one(run: RunFolder) -> int:
        code = launcher.run(run)
        if on_done is not None:
            on_done(run, code)
        return code

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        return list(pool.map(one, runs))


__all__ = [
    "LocalLauncher",
    "Slot",
    "run_in_this_process",
    "run_many",
    "slots",
    "start_run",
    "visible_gpus",
]
