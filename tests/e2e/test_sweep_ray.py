"""Sweeps on a local Ray cluster (2 CPUs on 127.0.0.1): trials as Ray tasks, and a trial
whose worker is killed mid-training retried from its checkpoint until the sweep completes."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import optuna
import pytest

from engine.sweep import SweepSettings, create_folder, run_sweep
from kernel.config import PROJECT_ROOT
from kernel.recipe import PluginChoice, Recipe
from kernel.runs import RunFolder

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def local_ray():
    env = {"PYTHONPATH": str(PROJECT_ROOT), "TOKENIZERS_PARALLELISM": "false"}
    ray.init(
        num_cpus=2,
        _node_ip_address="127.0.0.1",
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": env},
    )
    yield
    ray.shutdown()


def tiny_settings(model_dir: Path, data_dir: Path, max_steps: int, **extra) -> SweepSettings:
    recipe = Recipe(
        name="ray",
        dataset=PluginChoice(id="rotten_tomatoes", params={"path": str(data_dir), "max_length": 32}),
        model=PluginChoice(id="bert", params={"name_or_path": str(model_dir)}),
        technique=PluginChoice(id="lora"),
        trainer=PluginChoice(
            id="hf_trainer",
            params={"max_steps": max_steps, "batch_size": 4, "save_steps": 2,
                    "logging_steps": 1, "measure_baseline": False},
        ),
    )  # fmt: skip
    return SweepSettings(
        name="ray", recipe=recipe, backend="ray", parallel=2, metric="eval_loss",
        direction="minimize", **extra,
    )  # fmt: skip


def test_a_four_trial_sweep_runs_as_ray_tasks(
    tmp_path, local_ray, kernel, tiny_models, tiny_csv_dir
):
    from engine.sweep_report import write_sweep_report

    settings = tiny_settings(
        tiny_models["bert"], tiny_csv_dir, 2, sampler="grid",
        search=["technique.r=2,4", "trainer.learning_rate=1e-3,1e-2"],
    )  # fmt: skip
    folder = create_folder(tmp_path / "sweep", settings)
    study = run_sweep(kernel, folder)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 4
    pids = set()
    for trial in study.trials:
        run = RunFolder(folder.runs_dir / trial.user_attrs["run_id"])
        assert run.results()["eval_loss"] == pytest.approx(trial.value)
        pids.add(run.status()["pid"])
    assert os.getpid() not in pids and len(pids) == 4  # each trial in its own Ray worker
    report = write_sweep_report(
        study, folder.path, settings, ["technique.r", "trainer.learning_rate"]
    )
    assert report.best["value"] == pytest.approx(min(t.value for t in study.trials))
    assert len(report.rows) == 4 and (folder.path / "best-recipe.yaml").is_file()


def _kill_worker_once(runs_dir: Path, done: threading.Event, killed: list[int]) -> None:
    """SIGKILL the worker training trial 0 once it has saved a checkpoint."""
    while not done.is_set():
        for path in runs_dir.glob("*-t000"):
            run = RunFolder(path)
            status = run.status()
            if status.get("state") == "running" and run.latest_checkpoint() is not None:
                os.kill(status["pid"], signal.SIGKILL)
                killed.append(status["pid"])
                return
        time.sleep(0.05)


def test_a_trial_whose_worker_dies_is_retried_and_the_sweep_completes(
    tmp_path, local_ray, kernel, tiny_models, tiny_csv_dir
):
    # 120 steps keep trial 0 training for seconds after its first checkpoint, so the kill
    # lands before it ends however fast the machine
    settings = tiny_settings(
        tiny_models["bert"], tiny_csv_dir, 120, sampler="grid", search=["technique.r=2,4"]
    )
    folder = create_folder(tmp_path / "sweep", settings)
    done, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_worker_once, args=(folder.runs_dir, done, killed))
    killer.start()
    try:
        study = run_sweep(kernel, folder)
    finally:
        done.set()
        killer.join()
    assert killed, "trial 0 finished before its worker could be killed"
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    victim = RunFolder(folder.runs_dir / study.trials[0].user_attrs["run_id"])
    status = victim.status()
    assert status["state"] == "completed" and status["resumed"] is True
    assert status["pid"] != killed[0]
    results = victim.results()
    assert results["global_step"] == 120 and results["resumed_from"]  # from its checkpoint
    assert json.loads((victim.path / "trial.json").read_text())["number"] == 0
