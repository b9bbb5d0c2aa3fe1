"""Entry point of a training process: `python -m engine.runner RUN_DIR [--resume]`.

It receives data, not objects: the run's recipe.yaml names each bundle's folder
and content hash. The process loads those bundles itself, builds the SDK
contexts, hands them to the trainer plugin and records the outcome. Under
torchrun every rank runs this; only rank 0 writes the run's files.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from engine.effective import record_for_run
from engine.imports import explain_held_back, hold_back_quantizer
from engine.plugins import load_run_plugins
from engine.resume import prepare_resume, whole_run_results
from kernel.errors import PeftlabError
from kernel.procs import ProcessIdentity
from kernel.runs import LOCKED_EXIT_CODE, STORAGE_EXIT_BASE, RunFolder, storage_reason
from sdk.context import RunContext

#: (logger, message start) of warnings that say nothing about a run; they opened every log
KNOWN_NOISE = (
    # bitsandbytes on an AVX512-BF16 CPU without the optional `kernels` package: it falls
    # back to its own 4-bit kernel, which works; logged on import, whatever the technique
    ("bitsandbytes.backends.cpu.ops", "Failed to load CPU gemm_4bit_forward"),
)


class _DropStart(logging.Filter):
    def __init__(self, start: str) -> None:
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.start)


def quiet_known_noise() -> None:
    """Keep the warnings in KNOWN_NOISE out of the run's log."""
    for name, start in KNOWN_NOISE:
        logging.getLogger(name).addFilter(_DropStart(start))


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


class FolderReporter:
    """The SDK Reporter, writing to the run folder (rank 0 only)."""

    def __init__(self, run: RunFolder) -> None:
        self.run = run
        self.enabled = is_main_process()

    def log_metrics(self, record: dict[str, Any]) -> None:
        if self.enabled:
            self.run.log_metrics(record)

    def set_progress(self, **fields: Any) -> None:
        if self.enabled:
            self.run.set_progress(**fields)


def execute(run: RunFolder, resume: bool = False) -> dict[str, Any]:
    """Run the trainer plugin for a prepared run folder and return its results."""
    handles = load_run_plugins(run)
    if is_main_process():
        record_for_run(run, handles)  # what "0" and "auto" stand for in this run
    resume_from = run.latest_checkpoint() if resume else None
    carry = prepare_resume(run, resume_from) if resume and is_main_process() else None
    if carry is not None:  # kept in status.json, so a second resume adds to it
        run.set_status("running", prior_train_s=carry["prior_train_s"])
    ctx = RunContext(
        run_dir=run.path,
        reporter=FolderReporter(run),
        resume_from=resume_from,
        recipe=run.recipe(),
        **handles,
    )
    results = handles["trainer"].instance.run(ctx)
    return whole_run_results(results, carry) if carry is not None else results


def main(argv: list[str] | None = None, *, own_process: bool = False) -> int:
    """Train one run folder; `own_process`: this process exists for the run alone (so it may
    leave unloaded what the run cannot use)."""
    parser = argparse.ArgumentParser(description="Run one prepared peftlab run folder.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    args = parser.parse_args(argv)
    quiet_known_noise()
    run = RunFolder(args.run_dir.absolute())
    main_process = is_main_process()
    if own_process:
        _leave_out_unused_libraries(run, main_process)
    try:
        lock = run.acquire_lock() if main_process else None
    except OSError as exc:
        return _storage_exit(exc)
    if main_process and lock is None:  # a second `train --resume` of the same run: leave it be
        print(f"error: {run.path}: another process is training this run", file=sys.stderr)
        return LOCKED_EXIT_CODE
    try:
        return train_locked(run, args.resume, main_process)
    finally:  # released here too, not only at exit: a caller may run the next session in-process
        if lock is not None:
            lock.close()


def train_locked(run: RunFolder, resume: bool, main_process: bool) -> int:
    """Train a run whose lock this process holds; the exit code of the training process."""
    try:
        if main_process:
            identity = ProcessIdentity.of(os.getpid())
            run.set_status(
                "running",
                pid=os.getpid(),
                pid_started=identity.started if identity else None,
                started=time.time(),
                resumed=resume,
            )
    except OSError as exc:
        return _storage_exit(exc)
    try:
        results = execute(run, resume=resume)
    except BaseException as exc:  # record every failure, including KeyboardInterrupt
        traceback.print_exc()  # the whole story goes to log.txt; status.json keeps one line
        return _record_failure(run, explain_held_back(exc)) if main_process else 1
    if main_process:
        try:
            run.write_results(results)
            run.set_status("completed", finished=time.time())
        except OSError as exc:
            return _storage_exit(exc)
    _leave_process_group()
    return 0


def _leave_out_unused_libraries(run: RunFolder, main_process: bool) -> None:
    try:
        held = hold_back_quantizer(run)
    except (PeftlabError, OSError, ValueError, KeyError):  # a damaged folder: execute reports it
        return
    if held and main_process:
        try:
            print("note: bitsandbytes not loaded (no bundle of this run quantizes)", flush=True)
        except OSError:  # log.txt is on a full disk: the storage error is reported later
            pass


def resumable_failure(exc: BaseException) -> bool:
    """Whether resuming could succeed where this failure happened: a stop, memory or a full
    disk can pass; a wrong recipe, bad data or a bug fails the same way again."""
    if isinstance(exc, KeyboardInterrupt | MemoryError):
        return True
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _record_failure(run: RunFolder, exc: BaseException) -> int:
    info = exc.as_dict() if isinstance(exc, PeftlabError) else {"message": str(exc)}
    message = f"{type(exc).__name__}: {exc}"
    try:
        run.set_status(
            "failed",
            finished=time.time(),
            error=message,
            error_detail=info,
            resumable=resumable_failure(exc),
            traceback=traceback.format_exc(),
        )
    except OSError as write_error:
        return _storage_exit(write_error)
    return 1


def _storage_exit(exc: OSError) -> int:
    """The run folder cannot be written (a full or read-only disk): say why on stderr and in
    the exit code, the one record that needs no disk space."""
    try:
        print(f"error: cannot write the run folder: {storage_reason(exc)}", file=sys.stderr)
    except OSError:  # log.txt is on the same full disk
        pass
    code = exc.errno or 0
    return STORAGE_EXIT_BASE + code if 0 < code < 256 - STORAGE_EXIT_BASE else 1


def _leave_process_group() -> None:
    """Under torchrun / accelerate launch: wait until rank 0 has written the run's files, then
    close the process group (torch warns about a group left open at exit)."""
    torch = sys.modules.get("torch")  # the runner does not import torch itself
    if torch is None:
        return
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main(own_process=True))
