"""Entry point of a training process: `python -m engine.runner RUN_DIR [--resume]`.

It receives data, not objects: the run's recipe.yaml names each bundle's folder
and content hash. The process loads those bundles itself, builds the SDK
contexts, hands them to the trainer plugin and records the outcome. Under
torchrun every rank runs this; only rank 0 writes the run's files.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from engine.effective import record_for_run
from engine.plugins import load_run_plugins
from kernel.errors import PeftlabError
from kernel.procs import ProcessIdentity
from kernel.runs import RunFolder
from sdk.context import RunContext

#: (logger, message start) of warnings that say nothing about a run; they opened every log
KNOWN_NOISE = (
    # bitsandbytes on an AVX512-BF16 CPU without the optional `kernels` package: it falls
    # back to its own 4-bit kernel, which works; logged on import, whatever the technique
    ("bitsandbytes.backends.cpu.ops", "Failed to load CPU gemm_4bit_forward"),
)


def quiet_known_noise() -> None:
    """Keep the warnings in KNOWN_NOISE out of the run's log."""
    for name, start in KNOWN_NOISE:
        logging.getLogger(name).addFilter(
            lambda record, start=start: not str(record.msg).startswith(start)
        )


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
    ctx = RunContext(
        run_dir=run.path,
        reporter=FolderReporter(run),
        resume_from=resume_from,
        recipe=run.recipe(),
        **handles,
    )
    return handles["trainer"].instance.run(ctx)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one prepared peftlab run folder.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    args = parser.parse_args(argv)
    quiet_known_noise()
    run = RunFolder(args.run_dir)
    main_process = is_main_process()
    if main_process:
        identity = ProcessIdentity.of(os.getpid())
        run.set_status(
            "running",
            pid=os.getpid(),
            pid_started=identity.started if identity else None,
            started=time.time(),
            resumed=args.resume,
        )
    try:
        results = execute(run, resume=args.resume)
    except BaseException as exc:  # record every failure, including KeyboardInterrupt
        if main_process:
            info = exc.as_dict() if isinstance(exc, PeftlabError) else {"message": str(exc)}
            run.set_status(
                "failed",
                finished=time.time(),
                error=f"{type(exc).__name__}: {exc}",
                error_detail=info,
                traceback=traceback.format_exc(),
            )
        traceback.print_exc()
        return 1
    if main_process:
        run.write_results(results)
        run.set_status("completed", finished=time.time())
    _leave_process_group()
    return 0


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
    sys.exit(main())
