"""Start training jobs as subprocesses, so a crash cannot take the app down."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from kernel.config import PROJECT_ROOT
from kernel.errors import RunError
from kernel.recipe import ResolvedRecipe
from kernel.runs import RunFolder


def prepare_run(resolved: ResolvedRecipe, runs_dir: Path) -> RunFolder:
    """Create the run folder and write the resolved recipe; nothing is trained yet."""
    run = RunFolder.create(runs_dir, resolved.recipe.name)
    run.write_recipe(resolved.as_record())
    run.set_status("pending")
    return run


def runner_command(run: RunFolder, *, resume: bool = False, nproc: int = 1) -> list[str]:
    """The command line of the training process (torchrun for more than one process)."""
    tail = ["-m", "kernel.runner", str(run.path)] + (["--resume"] if resume else [])
    if nproc > 1:
        torchrun = shutil.which("torchrun")
        launcher = [torchrun] if torchrun else [sys.executable, "-m", "torch.distributed.run"]
        return launcher + [f"--nproc_per_node={nproc}", "--standalone"] + tail
    return [sys.executable] + tail


def start_run(run: RunFolder, *, resume: bool = False, nproc: int = 1) -> subprocess.Popen:
    """Launch the training process in the background; its output goes to log.txt."""
    if resume and run.status().get("state") == "running":
        raise RunError("this run is still running", path=run.path)
    env = dict(os.environ)
    # The runner imports kernel/sdk from this checkout even when started elsewhere.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    log = open(run.log_file, "ab")  # noqa: SIM115 - handed to the child process
    try:
        return subprocess.Popen(
            runner_command(run, resume=resume, nproc=nproc),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=str(run.path),
            start_new_session=True,  # Ctrl-C in the UI's terminal does not kill the run
        )
    finally:
        log.close()
