"""Start training jobs as subprocesses, so a crash cannot take the app down."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from kernel.config import PROJECT_ROOT
from kernel.discovery import is_ignored_name
from kernel.errors import RunError
from kernel.loader import content_hash
from kernel.recipe import RECIPE_KINDS, ResolvedRecipe
from kernel.runs import RunFolder

# Bundles up to this size are copied into the run folder, so the run trains with the
# version it was started with even if the bundle is edited (or hot-reloaded) meanwhile.
SNAPSHOT_LIMIT_BYTES = 64 * 1024 * 1024


def prepare_run(resolved: ResolvedRecipe, runs_dir: Path) -> RunFolder:
    """Create the run folder, snapshot its bundles and write the resolved recipe."""
    run = RunFolder.create(runs_dir, resolved.recipe.name)
    record = resolved.as_record()
    for kind in RECIPE_KINDS:
        snapshot = snapshot_bundle(Path(record[kind]["path"]), run.path / "bundles" / kind)
        if snapshot is not None and content_hash(snapshot) == record[kind]["content_hash"]:
            record[kind]["snapshot"] = str(snapshot.relative_to(run.path))
        elif snapshot is not None:  # edited between resolving and copying: use the live folder
            shutil.rmtree(snapshot, ignore_errors=True)
    run.write_recipe(record)
    run.set_status("pending")
    return run


def snapshot_bundle(source: Path, target: Path) -> Path | None:
    """Copy a bundle folder (without caches and editor files); None when it is too large."""
    size = sum(p.stat().st_size for p in source.rglob("*") if p.is_file())
    if size > SNAPSHOT_LIMIT_BYTES:
        return None
    shutil.copytree(
        source, target, ignore=lambda _d, names: [n for n in names if is_ignored_name(n)]
    )
    return target


def runner_command(run: RunFolder, *, resume: bool = False, nproc: int = 1) -> list[str]:
    """The command line of the training process (torchrun for more than one process)."""
    tail = ["-m", "kernel.runner", str(run.path)] + (["--resume"] if resume else [])
    if nproc > 1:
        torchrun = shutil.which("torchrun")
        launcher = [torchrun] if torchrun else [sys.executable, "-m", "torch.distributed.run"]
        return launcher + [f"--nproc_per_node={nproc}", "--standalone"] + tail
    return [sys.executable] + tail


def start_run(
    run: RunFolder, *, resume: bool = False, nproc: int = 1, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """Launch the training process in the background; its output goes to log.txt.

    `env` is added to this process's environment (e.g. thread counts for parallel runs).
    """
    if resume and run.status().get("state") == "running":
        raise RunError("this run is still running", path=run.path)
    env = {**os.environ, **(env or {})}
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
