"""Checks before a run folder exists, and how a failed run is reported."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kernel.runs import RunFolder
from tests.reliability.builders import peftlab, technique_bundle


def _train(tmp_path: Path, *args: str):  # noqa: ANN202
    started = time.monotonic()
    result = peftlab(tmp_path, "--runs-dir", "runs", "train", *args, timeout=120)
    return result, time.monotonic() - started


def _bert(tiny_models, tiny_csv_dir) -> list[str]:
    return [
        "--dataset", "rotten_tomatoes", "--set", f"dataset.path={tiny_csv_dir}",
        "--model", "bert", "--set", f"model.name_or_path={tiny_models['bert']}",
    ]  # fmt: skip


def _refused(tmp_path: Path, result, message: str) -> None:  # noqa: ANN001
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_missing_dataset_path(tmp_path: Path, tiny_models) -> None:
    result, _ = _train(tmp_path, "--dataset", "csv", "--set", "dataset.path=nothing/here.csv",
                       "--model", "bert", "--set", f"model.name_or_path={tiny_models['bert']}")  # fmt: skip
    _refused(tmp_path, result, f"[path]: no such file or folder: {tmp_path}/nothing/here.csv")


def test_a_missing_text_column_from_the_header(tmp_path: Path, tiny_models) -> None:
    data = tmp_path / "reviews.csv"
    data.write_text("review,stars\ngood,1\nbad,0\n", encoding="utf-8")
    result, seconds = _train(tmp_path, "--dataset", "csv", "--set", "dataset.path=reviews.csv",
                             "--model", "bert", "--set", f"model.name_or_path={tiny_models['bert']}")  # fmt: skip
    _refused(tmp_path, result, "reviews.csv: no column 'text', 'label'; it has: review, stars")
    ok = _train(tmp_path, "--dataset", "csv", "--set", "dataset.path=reviews.csv",
                "--set", "dataset.text_column=review", "--set", "dataset.label_column=stars",
                "--model", "bert", "--set", f"model.name_or_path={tiny_models['bert']}",
                "--prepare-only")[0]  # fmt: skip
    assert ok.returncode == 0, ok.stderr


def test_a_missing_model_folder(tmp_path: Path, tiny_csv_dir) -> None:
    result, _ = _train(tmp_path, "--dataset", "rotten_tomatoes", "--set", f"dataset.path={tiny_csv_dir}",
                       "--model", "bert", "--set", "model.name_or_path=./no-model")  # fmt: skip
    _refused(tmp_path, result, f"model folder {tmp_path}/no-model does not exist")


def test_a_hub_id_while_offline_and_not_cached(tmp_path: Path, tiny_csv_dir) -> None:
    result, _ = _train(tmp_path, "--dataset", "rotten_tomatoes", "--set", f"dataset.path={tiny_csv_dir}",
                       "--model", "bert", "--set", "model.name_or_path=someone/not-cached")  # fmt: skip
    _refused(tmp_path, result, "'someone/not-cached' is a hub id, the hub is offline")


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("trainer.max_steps=1e20", "[max_steps]: 1e+20 is far beyond"),
        ("technique.target_modules=q_proj", "[target_modules]: q_proj match(es) no layer of bert"),
    ],
)
def test_bounds_and_target_modules(
    tmp_path: Path, tiny_models, tiny_csv_dir, setting: str, message: str
) -> None:
    result, seconds = _train(tmp_path, *_bert(tiny_models, tiny_csv_dir), "--set", setting)
    _refused(tmp_path, result, message)
    assert seconds < 30  # no training process, no torch


def test_real_module_names_pass(tmp_path: Path, tiny_models, tiny_csv_dir) -> None:
    result, _ = _train(tmp_path, *_bert(tiny_models, tiny_csv_dir),
                       "--set", "technique.target_modules=query,attention.output.dense",
                       "--prepare-only")  # fmt: skip
    assert result.returncode == 0, result.stderr


FAILING = """from sdk import Technique


class T(Technique):
    def apply(self, model, ctx):
        raise ValueError("this technique cannot wrap the model")
"""


@pytest.mark.slow
def test_a_failed_run_prints_one_line_and_is_not_offered_resume(
    tmp_path: Path, tiny_models, tiny_csv_dir
) -> None:
    technique_bundle(tmp_path / "plugins", "failing", FAILING)
    result = peftlab(tmp_path, "--runs-dir", "runs", "--plugins-dir", "plugins", "train",
                     *_bert(tiny_models, tiny_csv_dir), "--technique", "failing",
                     "--set", "trainer.measure_baseline=false", timeout=240)  # fmt: skip
    assert result.returncode == 1
    assert "ValueError: this technique cannot wrap the model" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert "--resume" not in result.stdout
    (run_path,) = (tmp_path / "runs").iterdir()
    run = RunFolder(run_path)
    assert "Traceback" in run.log_file.read_text(encoding="utf-8")
    assert not run.resumable()
    again = peftlab(tmp_path, "--runs-dir", "runs", "train", "--resume", run.id, timeout=60)
    assert again.returncode == 2 and "resuming would fail the same way" in again.stderr
