"""--parallel 2: a comparison's runs and a sweep's trials train at the same time."""

from __future__ import annotations

import csv
from pathlib import Path

import optuna
import pytest

from kernel.runs import RunFolder
from tests.e2e.test_compare import cli, tiny_args
from tests.e2e.test_sweep import load_study, sweep_args


def overlap(a: RunFolder, b: RunFolder) -> bool:
    sa, sb = a.status(), b.status()
    return sa["started"] < sb["finished"] and sb["started"] < sa["finished"]


@pytest.mark.slow
def test_compare_with_parallel_two_trains_both_runs_at_once(tmp_path, tiny_models, tiny_csv_dir):
    runs_dir, out = tmp_path / "runs", tmp_path / "report"
    done = cli(
        runs_dir, "compare", *tiny_args(tiny_models["bert"], tiny_csv_dir),
        "--techniques", "lora,ia3", "--parallel", "2", "--out", str(out),
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "2 at a time on this machine" in done.output
    with open(out / "report.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["technique"], r["status"]) for r in rows] == [
        ("lora", "completed"),
        ("ia3", "completed"),
    ]
    first, second = (RunFolder(runs_dir / r["run_id"]) for r in rows)
    assert overlap(first, second)


@pytest.mark.slow
def test_sweep_with_parallel_two_runs_trials_at_once(tmp_path, tiny_models, tiny_csv_dir):
    folder = tmp_path / "sweep"
    done = cli(
        tmp_path / "runs",
        *sweep_args(tiny_models["bert"], tiny_csv_dir, "--set", "trainer.max_steps=3"),
        "--sampler", "grid", "--search", "technique.r=2,4", "--parallel", "2",
        "--out", str(folder),
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    study = load_study(folder)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    a, b = (RunFolder(Path(folder) / "runs" / t.user_attrs["run_id"]) for t in study.trials)
    assert overlap(a, b)
