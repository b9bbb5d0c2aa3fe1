"""Saved state a run reads back: weights (safetensors only, intact), checkpoints (a damaged
trainer_state.json falls back to the previous one) and the whole-run figures of a resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.resume import prepare_resume, whole_run_results
from engine.weights import check_saved_weights
from kernel.errors import RunError
from kernel.runs import RunFolder
from tests.reliability.builders import peftlab


def _weights(folder: Path) -> Path:
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "adapter_model.safetensors"
    save_file({"a": np.ones((64, 64), dtype=np.float32)}, str(path))
    return path


def test_intact_weights_pass_and_truncated_ones_are_named(tmp_path: Path) -> None:
    path = _weights(tmp_path / "adapter")
    check_saved_weights(path.parent)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RunError, match="adapter_model.safetensors: damaged weights file"):
        check_saved_weights(path.parent)
    path.write_bytes(data[:5])
    with pytest.raises(RunError, match="damaged weights file"):
        check_saved_weights(path.parent)


def test_a_pickle_adapter_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_model.bin").write_bytes(b"\x80\x04K\x01.")  # pickle of the number 1
    with pytest.raises(
        RunError, match=r"adapter_model.bin: a pickle weights file; .*safetensors only"
    ):
        check_saved_weights(folder)


def test_a_damaged_trainer_state_falls_back_to_the_previous_checkpoint(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path, "ckpt")
    for step, state in ((5, {"global_step": 5}), (10, None), (15, None)):
        folder = run.checkpoints_dir / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        if state is not None:
            (folder / "trainer_state.json").write_text(json.dumps(state))
    (run.checkpoints_dir / "checkpoint-10" / "trainer_state.json").write_text("{not json")
    (run.checkpoints_dir / "checkpoint-15" / "trainer_state.json").write_bytes(b"[1, 2]")
    assert run.latest_checkpoint() == run.checkpoints_dir / "checkpoint-5"


def test_a_resume_counts_the_whole_run(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path, "resumed")
    for step, loss in ((2, 1.0), (4, 0.8), (6, 0.6), (8, 0.5)):  # killed after step 8
        run.log_metrics({"step": step, "loss": loss})
    run.log_metrics({"step": 4, "eval_loss": 0.7})
    run.set_progress(step=8, elapsed_s=30.0)
    checkpoint = run.checkpoints_dir / "checkpoint-4"
    carry = prepare_resume(run, checkpoint)
    assert [r["step"] for r in run.metrics()] == [2, 4, 4], "steps 5..8 are trained again"
    assert carry["prior_train_s"] == 30.0 and carry["loss_sum_before"] == 2 * 1.0 + 2 * 0.8
    # the resumed session: steps 5..10, mean loss 0.4 by the Trainer's reckoning
    results = whole_run_results(
        {"global_step": 10, "train_loss": 0.4, "train_runtime_s": 12.0}, carry
    )
    assert results["train_loss"] == pytest.approx((3.6 + 0.4 * 6) / 10)
    assert results["train_runtime_s"] == 42.0


@pytest.mark.slow
def test_predict_on_damaged_weights_is_one_line(tmp_path: Path, tiny_models, tiny_csv_dir) -> None:
    trained = peftlab(tmp_path, "--runs-dir", "runs", "train",
                      "--dataset", "rotten_tomatoes", "--set", f"dataset.path={tiny_csv_dir}",
                      "--set", "dataset.max_length=16", "--model", "bert",
                      "--set", f"model.name_or_path={tiny_models['bert']}",
                      "--set", "trainer.max_steps=2", "--set", "trainer.measure_baseline=false")  # fmt: skip
    assert trained.returncode == 0, trained.stdout[-2000:]
    (run_path,) = (tmp_path / "runs").iterdir()
    weights = next((run_path / "adapter").glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:100])
    result = peftlab(tmp_path, "--runs-dir", "runs", "predict", run_path.name, "great film")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "damaged weights file" in result.stderr
    weights.unlink()
    (run_path / "adapter" / "adapter_model.bin").write_bytes(b"\x80\x04K\x01.")
    result = peftlab(tmp_path, "--runs-dir", "runs", "predict", run_path.name, "great film")
    assert result.returncode == 2 and "safetensors only" in result.stderr
