"""Runs survive crashes: a killed run reads as interrupted and resumes; files are never half-written."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest

from kernel import runs as runs_module
from kernel.procs import ProcessIdentity
from kernel.runs import RunFolder, atomic_write_json
from tests.reliability.builders import peftlab, technique_bundle

# Full fine-tuning at a known pace, so the test can stop it between two checkpoints.
PACED_TECHNIQUE = """import time

from transformers import TrainerCallback

from sdk import Technique


class Pace(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        time.sleep(0.2)


class T(Technique):
    default_learning_rate = 1e-4

    def apply(self, model, ctx):
        return model

    def training_callbacks(self, model, ctx):
        return [Pace()]
"""
MAX_STEPS = 12
SAVE_STEPS = 3


def wait_for_checkpoint(run: RunFolder, timeout: float) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        checkpoint = run.latest_checkpoint()
        if checkpoint is not None:
            return checkpoint
        state = run.status().get("state")
        if state in ("failed", "completed"):
            raise AssertionError(f"run ended ({state}) before it could be killed")
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint within {timeout} s")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_gone(pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still alive")


def test_sigkill_mid_run_leaves_it_interrupted_and_resume_finishes_it(
    tmp_path: Path, tiny_models, tiny_csv_dir
) -> None:
    technique_bundle(tmp_path / "plugins", "paced", PACED_TECHNIQUE)
    runs_dir = tmp_path / "runs"
    common = ["--runs-dir", str(runs_dir)]
    started = peftlab(
        tmp_path,
        *common,
        "--plugins-dir", str(tmp_path / "plugins"),
        "train",
        "--dataset", "rotten_tomatoes",
        "--set", f"dataset.path={tiny_csv_dir}",
        "--set", "dataset.max_length=16",
        "--model", "bert",
        "--set", f"model.name_or_path={tiny_models['bert']}",
        "--technique", "paced",
        "--set", f"trainer.max_steps={MAX_STEPS}",
        "--set", f"trainer.save_steps={SAVE_STEPS}",
        "--set", f"trainer.eval_steps={MAX_STEPS}",
        "--set", "trainer.batch_size=4",
        "--set", "trainer.logging_steps=1",
        "--set", "trainer.measure_baseline=false",
        "--name", "killed",
        "--detach",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    pid = int(re.search(r"pid (\d+)", started.stdout).group(1))
    (run_path,) = runs_dir.iterdir()
    run = RunFolder(run_path)

    try:
        checkpoint = wait_for_checkpoint(run, timeout=240)
    finally:
        # the run leads its own process group: its pid is the group id (torchrun workers go too)
        os.killpg(pid, signal.SIGKILL)
    wait_gone(pid)

    status = run.status()
    assert status["state"] == "interrupted", status
    assert run.results() is None
    killed_at = int(run.latest_checkpoint().name.rsplit("-", 1)[1])
    assert SAVE_STEPS <= killed_at < MAX_STEPS and killed_at >= int(
        checkpoint.name.rsplit("-", 1)[1]
    )

    resumed = peftlab(tmp_path, *common, "train", "--resume", run.id)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert f"resuming run {run.id} from checkpoint-{killed_at}" in resumed.stdout
    status = run.status()
    assert status["state"] == "completed" and status["resumed"] is True
    results = run.results()
    assert results["global_step"] == MAX_STEPS
    assert results["resumed_from"].endswith(f"checkpoint-{killed_at}")
    assert (run.adapter_dir / "model.safetensors").is_file()
    logged = [r["step"] for r in run.metrics() if "loss" in r]
    assert logged[-1] == MAX_STEPS and logged.count(MAX_STEPS) == 1


def test_a_checkpoint_cut_short_is_not_resumed_from(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path, "cut")
    for step in (5, 10):
        folder = run.checkpoints_dir / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    # killed while saving step 15: weights written, trainer_state.json (written last) not yet
    partial = run.checkpoints_dir / "checkpoint-15"
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"\0" * 16)
    assert run.latest_checkpoint() == run.checkpoints_dir / "checkpoint-10"


def test_resume_of_a_live_run_is_refused(tmp_path: Path) -> None:
    from engine.process import start_run
    from kernel.errors import RunError

    run = RunFolder.create(tmp_path, "live")
    me = ProcessIdentity.of(os.getpid())  # this test process: alive
    run.set_status("running", pid=me.pid, pid_started=me.started)
    assert run.status()["state"] == "running"
    with pytest.raises(RunError, match="still running"):
        start_run(run, resume=True)
    run.set_status("running", pid=2**22 + 12345, pid_started=me.started)  # above pid_max
    assert run.status()["state"] == "interrupted"


def test_a_reused_pid_is_not_the_run_and_is_never_signalled(tmp_path: Path) -> None:
    """status.json names a live process that is not the run's (a copied folder, a reboot):
    the run reads as interrupted, resume is allowed and stopping signals nothing."""
    from engine.process import stop_run

    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        started = ProcessIdentity.of(stranger.pid).started
        run = RunFolder.create(tmp_path, "copied")
        run.set_status("running", pid=stranger.pid, pid_started=started - 3600)
        assert run.status()["state"] == "interrupted"
        run.set_status("running", pid=stranger.pid)  # an old status: a pid and nothing else
        assert run.status()["state"] == "interrupted"
        outcome = stop_run(run)
        assert not outcome.stopped
        assert stranger.poll() is None, "an unrelated process was signalled"
    finally:
        stranger.kill()
        stranger.wait()


def test_runs_created_at_once_get_separate_folders(tmp_path: Path) -> None:
    barrier = threading.Barrier(8)
    made: list[Path] = []

    def create() -> None:
        barrier.wait()
        for _ in range(5):
            made.append(RunFolder.create(tmp_path / "runs", "same name").path)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 40 and len(set(made)) == 40
    assert all(p.parent == tmp_path / "runs" and p.is_dir() for p in made)


def test_a_write_failing_midway_leaves_the_old_file_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = RunFolder.create(tmp_path, "atomic")
    run.write_results({"accuracy": 0.5})
    run.set_status("completed")
    before = {name: (run.path / name).read_bytes() for name in ("results.json", "status.json")}

    def failing_fsync(fd: int) -> None:  # the data is half on its way when the disk fills
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runs_module.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space left"):
        run.write_results({"accuracy": 0.9, "padding": "x" * 100_000})
    with pytest.raises(OSError, match="No space left"):
        run.set_status("failed", error="x" * 100_000)
    monkeypatch.undo()

    assert {name: (run.path / name).read_bytes() for name in before} == before
    assert run.results() == {"accuracy": 0.5} and run.status()["state"] == "completed"
    assert sorted(p.name for p in run.path.iterdir()) == ["results.json", "status.json"]


def test_a_reader_never_sees_a_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "status.json"
    atomic_write_json(target, {"n": -1, "pad": ""})
    stop = threading.Event()
    seen: list[int] = []
    broken: list[str] = []

    def read() -> None:
        while not stop.is_set():
            text = target.read_text(encoding="utf-8")
            try:
                seen.append(json.loads(text)["n"])
            except ValueError:
                broken.append(text[:80])

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for n in range(120):
            atomic_write_json(target, {"n": n, "pad": "y" * (n * 97 % 50_000)})
    finally:
        stop.set()
        reader.join()
    assert not broken
    assert seen == sorted(seen) and len(seen) > 0  # always a whole file, never an older one
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]


def test_a_metrics_line_cut_by_a_kill_is_skipped_and_the_rest_kept(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path, "cut-line")
    for step in (1, 2):
        run.log_metrics({"step": step, "loss": 0.5})
    with open(run.path / "metrics.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"time": 1, "step": 3, "lo')  # the process died mid-line
    assert [r["step"] for r in run.metrics()] == [1, 2]
    run.log_metrics({"step": 3, "loss": 0.4})  # a resumed run appends after the cut
    assert [r["step"] for r in run.metrics()] == [1, 2, 3]
