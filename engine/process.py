"""Start and stop training processes: one implementation for the CLI, the app and the API.

A run trains in its own process (its own session, so Ctrl-C in a terminal or a
closing app does not kill it by accident). Stopping sends SIGINT first (the
Trainer stops cleanly and keeps its checkpoints), then SIGTERM, then SIGKILL,
to the run's whole process group (torchrun and its workers too) — and only to
a process that is the one the run recorded: its pid and start time must both
match, so a stale status.json never makes peftlab signal someone else's process.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import psutil

from kernel.config import PROJECT_ROOT
from kernel.errors import RunError
from kernel.procs import ProcessIdentity
from kernel.runs import RunFolder, storage_error

#: how long each signal gets before the next, stronger one
STOP_SIGNALS = ((signal.SIGINT, 20.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0))


def runner_command(run: RunFolder, *, resume: bool = False, nproc: int = 1) -> list[str]:
    """The command line of the training process (torchrun for more than one process)."""
    tail = ["-m", "engine.runner", str(run.path)] + (["--resume"] if resume else [])
    if nproc > 1:
        torchrun = shutil.which("torchrun")
        launcher = [torchrun] if torchrun else [sys.executable, "-m", "torch.distributed.run"]
        return launcher + [f"--nproc_per_node={nproc}", "--standalone"] + tail
    return [sys.executable] + tail


def start_run(
    run: RunFolder, *, resume: bool = False, nproc: int = 1, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Launch the training process in the background; its output goes to log.txt.

    `env` is added to this process's environment (e.g. thread counts for parallel runs).
    """
    run = RunFolder(run.path.absolute())  # the process runs inside the folder
    if resume and run.status().get("state") == "running":
        raise RunError("this run is still running", path=run.path)
    if run_lock_held(run):
        raise RunError("another process is training this run", path=run.path)
    env = {**os.environ, **(env or {})}
    # The runner imports the engine and the SDK from this checkout even when started elsewhere.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        log = open(run.log_file, "ab")  # noqa: SIM115 - handed to the child process
    except OSError as exc:
        raise storage_error(exc, run.path, "write the run's log") from None
    try:
        return subprocess.Popen(
            runner_command(run, resume=resume, nproc=nproc),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=str(run.path),
            start_new_session=True,  # Ctrl-C in the caller's terminal does not kill the run
        )
    finally:
        log.close()


def run_lock_held(run: RunFolder) -> bool:
    """Whether a training process holds the run folder's lock (it takes it for its life)."""
    return run.lock_held()


@dataclass(frozen=True)
class StopOutcome:
    stopped: bool
    message: str


def run_process(
    run: RunFolder, child: subprocess.Popen[bytes] | None = None
) -> psutil.Process | None:
    """The live training process of a run: the child this process started, or the one
    status.json names when its pid and start time still match."""
    if child is not None:
        return psutil.Process(child.pid) if child.poll() is None else None
    identity = ProcessIdentity.from_status(run.status())
    return identity.process() if identity else None


def stop_run(
    run: RunFolder, child: subprocess.Popen[bytes] | None = None, *, grace_s: float | None = None
) -> StopOutcome:
    """Stop a run's training process group and mark the run interrupted (resumable)."""
    process = run_process(run, child)
    if process is None:
        if run.status().get("state") == "running":
            run.set_status("interrupted", finished=time.time(), stopped_by="user")
        return StopOutcome(False, "the run has no process to stop")
    try:
        _signal_group(process, child, grace_s)
    except PermissionError as exc:
        return StopOutcome(False, f"cannot stop process {process.pid}: {exc}")
    run.set_status("interrupted", finished=time.time(), stopped_by="user")
    return StopOutcome(True, "stopped; resume continues from the last checkpoint")


def _signal_group(
    process: psutil.Process, child: subprocess.Popen[bytes] | None, grace_s: float | None
) -> None:
    group = os.getpgid(process.pid)
    own_group = os.getpgid(0)
    for index, (sig, wait_s) in enumerate(STOP_SIGNALS):
        if not _running(process, child):
            return
        try:
            if group == own_group:  # never signal the caller's own group
                process.send_signal(sig)
            else:
                os.killpg(group, sig)
        except (ProcessLookupError, psutil.NoSuchProcess):
            return
        _wait(process, child, grace_s if index == 0 and grace_s is not None else wait_s)


def _running(process: psutil.Process, child: subprocess.Popen[bytes] | None) -> bool:
    if child is not None:
        return child.poll() is None
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait(process: psutil.Process, child: subprocess.Popen[bytes] | None, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while _running(process, child) and time.monotonic() < deadline:
        if child is not None:
            try:
                child.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                pass
        else:
            time.sleep(0.1)
