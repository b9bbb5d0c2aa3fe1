"""`peftlab sweep`: Optuna trials as ordinary runs on a tiny BERT, a few steps each.

Each trial is a training subprocess (about 20 s here, mostly imports), so the sweeps are
marked slow; refusing a search happens before anything trains and is not.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner

from kernel.recipe import load_recipe
from kernel.runs import RunFolder

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REPO = Path(__file__).resolve().parents[2]


def sweep_args(model_dir: Path, data_dir: Path, *extra: str) -> list[str]:
    return [
        "sweep",
        "--dataset", "rotten_tomatoes",
        "--set", f"dataset.path={data_dir}",
        "--set", "dataset.max_length=32",
        "--model", "bert",
        "--set", f"model.name_or_path={model_dir}",
        "--technique", "lora",
        "--set", "trainer.batch_size=4",
        "--set", "trainer.logging_steps=1",
        "--set", "trainer.measure_baseline=false",
        "--metric", "eval_loss",
        *extra,
    ]  # fmt: skip


def cli(runs_dir: Path, *args: str):
    from ui.cli import cli as peftlab

    return CliRunner().invoke(peftlab, ["--runs-dir", str(runs_dir), *args])


def load_study(folder: Path):
    return optuna.load_study(study_name="sweep", storage=f"sqlite:///{folder / 'study.db'}")


def trial_results(folder: Path, study) -> dict[int, dict]:
    return {
        t.number: RunFolder(folder / "runs" / t.user_attrs["run_id"]).results()
        for t in study.trials
        if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    }


@pytest.mark.slow
def test_grid_sweep_runs_every_point_and_picks_the_lowest_loss(tmp_path, tiny_models, tiny_csv_dir):
    folder = tmp_path / "grid"
    done = cli(
        tmp_path / "runs",
        *sweep_args(tiny_models["bert"], tiny_csv_dir, "--set", "trainer.max_steps=2"),
        "--sampler", "grid",
        "--search", "technique.r=2,4",
        "--search", "trainer.learning_rate=1e-3,5e-2",
        "--out", str(folder),
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    study = load_study(folder)
    assert len(study.trials) == 4
    assert {(t.params["technique.r"], t.params["trainer.learning_rate"]) for t in study.trials} == {
        (2, 1e-3), (2, 5e-2), (4, 1e-3), (4, 5e-2)
    }  # fmt: skip
    results = trial_results(folder, study)
    losses = {n: r["eval_loss"] for n, r in results.items()}
    best = json.loads((folder / "best.json").read_text())
    assert best["trial"] == min(losses, key=losses.get)
    assert best["value"] == pytest.approx(min(losses.values()))
    # every trial trained with its own values, as an ordinary run with an adapter
    for trial in study.trials:
        run = RunFolder(folder / "runs" / trial.user_attrs["run_id"])
        assert run.recipe()["technique"]["params"]["r"] == trial.params["technique.r"]
        assert results[trial.number]["learning_rate"] == trial.params["trainer.learning_rate"]
        assert (run.adapter_dir / "adapter_config.json").is_file()
    recipe = load_recipe(folder / "best-recipe.yaml")
    assert recipe.technique.params["r"] == best["params"]["technique.r"]
    assert recipe.trainer.params["learning_rate"] == best["params"]["trainer.learning_rate"]
    rows = (folder / "trials.csv").read_text().splitlines()
    assert len(rows) == 5 and rows[0].startswith("trial,state,value,technique.r")
    for png in ("optimization_history.png", "parallel_coordinate.png", "param_importances.png"):
        assert (folder / png).read_bytes()[:8] == PNG_MAGIC
    assert set(json.loads((folder / "importance.json").read_text())) == {
        "technique.r",
        "trainer.learning_rate",
    }
    assert f"Best: trial {best['trial']}" in (folder / "report.md").read_text()


@pytest.mark.slow
def test_tpe_sweep_with_pruning_counts_pruned_trials_and_picks_the_best_complete_one(
    tmp_path, tiny_models, tiny_csv_dir
):
    folder = tmp_path / "tpe"
    done = cli(
        tmp_path / "runs",
        *sweep_args(tiny_models["bert"], tiny_csv_dir, "--set", "trainer.max_steps=4",
                    "--set", "trainer.eval_steps=1"),
        "--sampler", "tpe", "--trials", "5", "--prune", "--prune-startup", "2",
        "--search", "trainer.learning_rate=1e-5..1e-1:log",
        "--search", "technique.r=2,4",
        "--out", str(folder),
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    study = load_study(folder)
    states = [t.state for t in study.trials]
    assert len(states) == 5 and optuna.trial.TrialState.FAIL not in states
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned, "the seeded search prunes its worst trials"  # seed 42: 3 of 5 here
    for trial in study.trials:
        run_dir = folder / "runs" / trial.user_attrs["run_id"]
        steps = RunFolder(run_dir).results()["global_step"]
        assert len(trial.intermediate_values) == steps  # one report per evaluation
        stopped = (run_dir / "pruned.json").is_file()
        assert stopped == (trial in pruned)
        assert steps < 4 if stopped else steps == 4
    complete = {t.number: t.value for t in study.trials if t not in pruned}
    assert json.loads((folder / "best.json").read_text())["trial"] == min(
        complete, key=complete.get
    )


def _running_trial(folder: Path, deadline: float, log: Path) -> RunFolder:
    """Wait until the second trial is between its first and last step, then return it."""
    while time.time() < deadline:
        runs = sorted((folder / "runs").glob("*-t001"))
        if runs and RunFolder(runs[0]).progress().get("phase") in ("training", "evaluating"):
            return RunFolder(runs[0])
        time.sleep(0.05)
    tail = log.read_text(errors="replace")[-2000:] if log.is_file() else "(no output)"
    raise AssertionError(f"the second trial never started training; the sweep printed:\n{tail}")


@pytest.mark.slow
def test_a_killed_sweep_resumes_to_the_same_trials(tmp_path, tiny_models, tiny_csv_dir):
    folder, runs_dir, log = tmp_path / "killed", tmp_path / "runs", tmp_path / "sweep.log"
    # 200 steps keep a trial training for seconds (30 lasted under one), so the kill lands
    # mid-training however fast the machine
    args = sweep_args(tiny_models["bert"], tiny_csv_dir, "--set", "trainer.max_steps=200")
    args += ["--sampler", "grid", "--search", "technique.r=2,4,8", "--out", str(folder)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with open(log, "wb") as output:
        sweep = subprocess.Popen(
            [sys.executable, "-m", "ui.cli", "--runs-dir", str(runs_dir), *args],
            cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        victim = _running_trial(folder, time.time() + 300, log)
    finally:
        sweep.kill()  # the machine went down: the sweep and its trial die at once
        sweep.wait()
    assert victim.status()["state"] == "running", "the trial ended before it could be killed"
    os.kill(victim.status()["pid"], signal.SIGKILL)
    resumed = cli(runs_dir, "sweep", "--resume", str(folder))
    assert resumed.exit_code == 0, resumed.output
    assert "1 unfinished trial(s) run again" in resumed.output
    study = load_study(folder)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert sorted(t.params["technique.r"] for t in complete) == [2, 4, 8]
    assert [t.number for t in failed] == [1] and failed[0].user_attrs["interrupted"]
    assert [t.user_attrs.get("retry_of") for t in complete if "retry_of" in t.user_attrs] == [1]
    again = cli(runs_dir, "sweep", "--resume", str(folder))  # nothing left: no new trial
    assert again.exit_code == 0 and len(load_study(folder).trials) == 4


def test_a_search_outside_the_declared_bounds_is_refused_before_anything_runs(tmp_path):
    runs_dir = tmp_path / "runs"
    done = cli(
        runs_dir, "sweep", "--technique", "lora",
        "--search", "technique.r=4,512", "--search", "trainer.learning_rate=1e-4..1e-2:log",
    )  # fmt: skip
    assert done.exit_code == 2
    message = done.output.strip().splitlines()
    assert message == [
        "error: --search [technique.r]: 512 is above the maximum 256 (allowed: 1..256) "
        "(in technique.r=4,512)"
    ]
    assert not runs_dir.exists()  # no sweep folder, no run
    grid = cli(
        runs_dir, "sweep", "--sampler", "grid", "--search", "trainer.learning_rate=1e-4..1e-2"
    )
    assert grid.exit_code == 2 and "grid sweep needs listed values" in grid.output


def test_a_base_recipe_that_fails_preflight_is_refused_before_a_sweep_folder(tmp_path, tiny_models):
    runs_dir, data = tmp_path / "runs", tmp_path / "reviews.csv"
    data.write_text("review,stars\ngood,1\nbad,0\n", encoding="utf-8")
    done = cli(
        runs_dir, "sweep", "--dataset", "csv", "--set", f"dataset.path={data}",
        "--model", "bert", "--set", f"model.name_or_path={tiny_models['bert']}",
        "--technique", "lora", "--search", "technique.r=4,8",
    )  # fmt: skip
    assert done.exit_code == 2, done.output
    assert done.output.strip().splitlines() == [
        f"error: {data}: no column 'text', 'label'; it has: review, stars"
    ]  # the same line `peftlab train` prints
    assert not runs_dir.exists()  # no sweep folder, no trial


def test_a_trial_whose_values_fail_preflight_gets_no_run_folder(
    tmp_path, tiny_models, tiny_csv_dir
):
    from engine.space import bind
    from engine.sweep import SweepSettings, TrialFailed, TrialRunner, create_folder
    from tests.reliability.builders import kernel_for

    kernel = kernel_for()
    recipe = load_recipe(REPO / "manifests" / "recipes" / "default.yaml").with_overrides(
        {"dataset": "rotten_tomatoes", "model": "bert", "technique": "lora"},
        [f"dataset.path={tiny_csv_dir}", f"model.name_or_path={tiny_models['bert']}"],
    )
    huge = 10**11  # beyond any run: refused by the pre-flight checks, not by a training process
    settings = SweepSettings(recipe=recipe, search=[f"trainer.max_steps=10,{huge}"])
    folder = create_folder(tmp_path / "sweep", settings)
    space = bind(settings.search, recipe, kernel.snapshot)
    said: list[str] = []
    runner = TrialRunner(kernel, folder, settings, space, launcher=None, say=said.append)  # type: ignore[arg-type]
    with pytest.raises(TrialFailed, match="far beyond anything a run can reach"):
        runner(optuna.trial.FixedTrial({"trainer.max_steps": huge}))
    assert not folder.runs_dir.exists() or not any(folder.runs_dir.iterdir())
    assert said and "trial 0 refused" in said[0] and "[max_steps]" in said[0]
