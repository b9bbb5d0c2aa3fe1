"""Resume races, orphans and paths: one training process per run folder, the CLI stops its
run on SIGTERM/SIGHUP, and every path a person types is resolved where they typed it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from kernel.runs import LOCKED_EXIT_CODE, RunFolder
from tests.reliability.builders import cli_env, peftlab, technique_bundle
from tests.reliability.test_runs import PACED_TECHNIQUE, wait_gone

RECIPE = "name: x\ndataset: {id: csv}\nmodel: {id: bert}\ntechnique: {id: lora}\n"


def _stopped_run(runs_dir: Path) -> RunFolder:
    run = RunFolder.create(runs_dir, "stopped")
    run.recipe_file.write_text(RECIPE, encoding="utf-8")
    run.set_status("running", pid=2**22 + 777, pid_started=1.0)  # a process long gone
    return run


def test_a_second_resume_of_a_locked_run_is_refused_before_training(tmp_path: Path) -> None:
    run = _stopped_run(tmp_path / "runs")
    lock = run.acquire_lock()  # what a live training process holds for its whole life
    assert lock is not None and run.acquire_lock() is None
    try:
        result = peftlab(
            tmp_path, "--runs-dir", str(tmp_path / "runs"), "train", "--resume", run.id
        )
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert "another process is training this run" in result.stderr
        assert not run.log_file.exists(), "no training process was started"
        # the runner itself refuses too (two resumes started in the same instant)
        direct = subprocess.run(
            [sys.executable, "-m", "engine.runner", str(run.path), "--resume"],
            capture_output=True, text=True, timeout=120, env=cli_env(tmp_path),
        )  # fmt: skip
        assert direct.returncode == LOCKED_EXIT_CODE, direct.stderr
        assert run.status()["state"] == "interrupted", "the loser must not touch status.json"
    finally:
        lock.close()
    assert not run.lock_held()


def test_a_run_whose_pid_belongs_to_another_process_can_be_resumed(tmp_path: Path) -> None:
    """A copied folder or a reboot: the pid is some other live process's; resume is allowed."""
    from engine.process import start_run

    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        run = RunFolder.create(tmp_path / "runs", "copied")
        run.recipe_file.write_text(RECIPE, encoding="utf-8")
        run.set_status("running", pid=stranger.pid, pid_started=time.time() - 86400)
        process = start_run(run, resume=True)  # not refused as "still running"
        process.wait(timeout=120)  # the recipe cannot train; what matters is it started
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_the_ui_cancel_of_a_stale_run_signals_nothing(tmp_path: Path) -> None:
    from ui.views._shared import cancel_run

    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        run = RunFolder.create(tmp_path / "runs", "copied")
        run.recipe_file.write_text(RECIPE, encoding="utf-8")
        run.set_status("running", pid=stranger.pid)  # an old status: a pid and nothing else
        message = cancel_run(run)
        assert "no process" in message
        time.sleep(0.3)
        assert stranger.poll() is None, "the UI's Cancel signalled an unrelated process"
        assert run.status()["state"] == "interrupted"
    finally:
        stranger.kill()
        stranger.wait()


def _tiny_args(tmp_path: Path, tiny_models, tiny_csv_dir, *extra: str) -> list[str]:
    """A tiny recipe whose data and model folders are given relative to `tmp_path`."""
    return [
        "train",
        "--dataset", "rotten_tomatoes",
        "--set", f"dataset.path={os.path.relpath(tiny_csv_dir, tmp_path)}",
        "--set", "dataset.max_length=16",
        "--model", "bert",
        "--set", f"model.name_or_path={os.path.relpath(tiny_models['bert'], tmp_path)}",
        "--set", "trainer.batch_size=4",
        "--set", "trainer.logging_steps=1",
        "--set", "trainer.measure_baseline=false",
        *extra,
    ]  # fmt: skip


def test_relative_paths_are_recorded_absolute(tmp_path: Path, tiny_models, tiny_csv_dir) -> None:
    args = _tiny_args(tmp_path, tiny_models, tiny_csv_dir, "--set", "trainer.max_steps=2")
    result = peftlab(tmp_path, "--runs-dir", "runs", *args, "--prepare-only")
    assert result.returncode == 0, result.stderr
    run_dir = Path(result.stdout.strip())
    assert run_dir.is_absolute() and run_dir.parent == tmp_path / "runs"
    record = yaml.safe_load((run_dir / "recipe.yaml").read_text(encoding="utf-8"))
    assert record["dataset"]["params"]["path"] == str(tiny_csv_dir.resolve())
    assert record["model"]["params"]["name_or_path"] == str(tiny_models["bert"].resolve())


@pytest.mark.slow
def test_resume_by_folder_path_trains(tmp_path: Path, tiny_models, tiny_csv_dir) -> None:
    args = _tiny_args(tmp_path, tiny_models, tiny_csv_dir, "--set", "trainer.max_steps=2")
    prepared = peftlab(tmp_path, "--runs-dir", "runs", *args, "--prepare-only")
    run_dir = Path(prepared.stdout.strip())
    resumed = peftlab(tmp_path, "--runs-dir", "runs", "train", "--resume", f"runs/{run_dir.name}/")
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert RunFolder(run_dir).status()["state"] == "completed"


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_the_cli_stops_its_run_on_sigterm_and_sighup(
    tmp_path: Path, tiny_models, tiny_csv_dir, sig: signal.Signals
) -> None:
    technique_bundle(tmp_path / "plugins", "paced", PACED_TECHNIQUE)
    args = _tiny_args(tmp_path, tiny_models, tiny_csv_dir, "--technique", "paced",
                      "--set", "trainer.max_steps=400", "--set", "trainer.save_steps=2")  # fmt: skip
    cli = subprocess.Popen(
        [sys.executable, "-m", "ui.cli", "--no-entry-points", "--runs-dir", "runs",
         "--plugins-dir", "plugins", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=cli_env(tmp_path), cwd=str(tmp_path),
    )  # fmt: skip
    deadline = time.monotonic() + 180
    run = None
    while time.monotonic() < deadline:
        runs = list((tmp_path / "runs").glob("*/recipe.yaml"))
        if runs and RunFolder(runs[0].parent).progress().get("step"):
            run = RunFolder(runs[0].parent)
            break
        time.sleep(0.1)
    assert run is not None, "training never started"
    pid = run.status()["pid"]
    cli.send_signal(sig)
    _out, err = cli.communicate(timeout=60)
    assert cli.returncode == 130 and "Traceback" not in err
    wait_gone(pid, timeout=10)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert run.status()["state"] in ("interrupted", "failed")
