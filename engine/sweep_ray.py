"""Runs as Ray tasks: each asks Ray for its cores (and GPUs), trains in a fresh worker
process on whichever node has room, and is retried from its last checkpoint when its
worker dies. Run folders must live on storage every node sees. Ray is imported only here,
only when this backend is asked for (`pip install 'peftlab[ray]'`)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from kernel.config import PROJECT_ROOT
from kernel.errors import RunError
from kernel.runs import RunFolder

RAY_HINT = "the ray backend needs Ray: pip install 'peftlab[ray]'"
LOCAL_ADDRESSES = (None, "", "local")


def train_in_worker(run_dir: str) -> int:
    """The Ray task: train the run folder in this worker; a retried task resumes the run."""
    from engine.sweep_launch import run_in_this_process

    run = RunFolder(Path(run_dir))
    retried = run.status().get("state") != "pending"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    log = os.open(run.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)  # the worker runs this one task only (max_calls=1): its output is the run's
    os.dup2(log, 2)
    return run_in_this_process([run_dir, *(["--resume"] if retried else [])])


class RayLauncher:
    """Submits each run as a Ray task with its resource request; waits for its result."""

    def __init__(
        self,
        address: str | None = None,
        cpus_per_trial: float = 1.0,
        gpus_per_trial: float = 0.0,
        max_retries: int = 3,
    ) -> None:
        try:
            import ray
        except ImportError:
            raise RunError(RAY_HINT) from None
        self.ray = ray
        self._owns = False
        if not ray.is_initialized():
            local = address in LOCAL_ADDRESSES
            env = {"PYTHONPATH": str(PROJECT_ROOT), "TOKENIZERS_PARALLELISM": "false"}
            try:
                ray.init(
                    address=None if local else address,
                    runtime_env={"env_vars": env} if local else None,
                    include_dashboard=False,
                    log_to_driver=False,
                )
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise RunError(f"cannot reach the Ray cluster: {exc}", field="--address") from None
            self._owns = True
        self.cpus = cpus_per_trial
        self.task = ray.remote(
            num_cpus=cpus_per_trial, num_gpus=gpus_per_trial, max_retries=max_retries, max_calls=1
        )(train_in_worker)
        self._live: dict[str, Any] = {}
        self._lock = threading.Lock()

    def describe(self) -> str:
        cpus = self.ray.cluster_resources().get("CPU", 0)
        return f"on Ray ({cpus:g} CPUs in the cluster, {self.cpus:g} per trial)"

    def run(self, run: RunFolder) -> int:
        ref = self.task.remote(str(run.path.resolve()))
        with self._lock:
            self._live[run.id] = ref
        try:
            return int(self.ray.get(ref))
        except Exception as exc:  # the task failed for good (retries spent, cancelled)
            if run.status().get("state") != "completed":
                run.set_status("failed", error=f"ray: {type(exc).__name__}: {exc}".splitlines()[0])
            return 1
        finally:
            with self._lock:
                self._live.pop(run.id, None)

    def stop(self) -> None:
        with self._lock:
            refs = list(self._live.values())
        for ref in refs:
            self.ray.cancel(ref, force=True)

    def close(self) -> None:
        if self._owns:
            self.ray.shutdown()
