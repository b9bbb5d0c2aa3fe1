"""`peftlab train`, `runs` and `predict` end to end, each in its own process as a person runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_RT = REPO_ROOT.parent / "shared" / "datasets" / "rotten_tomatoes"
RESULT_KEYS = """accuracy f1_macro eval_loss train_loss baseline_accuracy baseline_f1_macro
trainable_params total_params trainable_percent train_runtime_s train_samples_per_s
train_steps_per_s train_tokens_per_s peak_memory_mb peak_memory_kind model_footprint_mb
adapter_size_mb inference_samples_per_s global_step epochs num_train_samples
num_eval_samples learning_rate label_names technique model dataset""".split()
TEXTS = ["a warm and clever film", "it broke on the first day", "fine"]


def env() -> dict[str, str]:
    values = dict(os.environ)
    values.update(
        HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", COLUMNS="160"
    )
    values["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), values.get("PYTHONPATH")]))
    return values


def peftlab(runs_dir: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ui.cli", "--runs-dir", str(runs_dir), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env(),
        cwd=str(runs_dir.parent),
    )


def tiny_train_args(model_dir: Path, data_dir: Path) -> list[str]:
    return [
        "train",
        "--dataset", "rotten_tomatoes",
        "--set", f"dataset.path={data_dir}",
        "--set", "dataset.max_length=32",
        "--model", "bert",
        "--set", f"model.name_or_path={model_dir}",
        "--technique", "lora",
        "--set", "technique.r=4",
        "--set", "trainer.epochs=2",
        "--set", "trainer.batch_size=4",
        "--set", "trainer.logging_steps=2",
        "--name", "e2e",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_models, tiny_csv_dir):
    """One finished `peftlab train` run: (runs dir, run folder, the command's output)."""
    runs_dir = tmp_path_factory.mktemp("e2e") / "runs"
    runs_dir.mkdir()
    done = peftlab(runs_dir, *tiny_train_args(tiny_models["bert"], tiny_csv_dir))
    assert done.returncode == 0, done.stdout + done.stderr
    (run_dir,) = [p for p in runs_dir.iterdir() if p.is_dir()]
    return runs_dir, run_dir, done


def test_train_completes_and_prints_the_metrics_table(trained):
    runs_dir, run_dir, done = trained
    assert run_dir.name.endswith("-e2e")
    for text in (
        "accuracy",
        "trainable params",
        "peak memory",
        "train time",
        "rotten_tomatoes x bert x lora",
    ):
        assert text in done.stdout, text
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "completed"
    results = json.loads((run_dir / "results.json").read_text())
    assert set(RESULT_KEYS) <= set(results)
    assert results["global_step"] == 8
    # the CLI shows the training process's log, not tqdm bars
    assert "it/s]" not in (run_dir / "log.txt").read_text()


def test_runs_lists_the_run(trained):
    runs_dir, run_dir, _ = trained
    listing = peftlab(runs_dir, "runs", "--json")
    assert listing.returncode == 0, listing.stderr
    (row,) = json.loads(listing.stdout)
    assert row["id"] == run_dir.name and row["state"] == "completed"
    assert (row["dataset"], row["model"], row["technique"]) == ("rotten_tomatoes", "bert", "lora")
    assert row["accuracy"] is not None and row["trainable_percent"] > 0
    table = peftlab(runs_dir, "runs")
    assert run_dir.name in table.stdout and "completed" in table.stdout


PLAIN_PEFT = textwrap.dedent(
    """
    import json, sys
    import torch
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    base_dir, adapter_dir, texts = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    base = AutoModelForSequenceClassification.from_pretrained(base_dir, num_labels=2)
    model = PeftModel.from_pretrained(base, adapter_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(adapter_dir)
    batch = tokenizer(texts, truncation=True, max_length=32, padding=True, return_tensors="pt")
    with torch.no_grad():
        probs = torch.softmax(model(**batch).logits, dim=-1).tolist()
    print(json.dumps(probs))
    """
)


def test_adapter_loads_in_plain_peft_and_agrees_with_predict(trained, tiny_models):
    runs_dir, run_dir, _ = trained
    predicted = peftlab(runs_dir, "predict", run_dir.name, *TEXTS, "--json")
    assert predicted.returncode == 0, predicted.stderr
    ours = json.loads(predicted.stdout)
    assert [p["text"] for p in ours] == TEXTS
    plain = subprocess.run(
        [
            sys.executable,
            "-c",
            PLAIN_PEFT,
            str(tiny_models["bert"]),
            str(run_dir / "adapter"),
            json.dumps(TEXTS),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env(),
    )
    assert plain.returncode == 0, plain.stderr
    theirs = json.loads(plain.stdout.strip().splitlines()[-1])
    for mine, probs in zip(ours, theirs, strict=True):
        assert [
            mine["probabilities"]["negative"],
            mine["probabilities"]["positive"],
        ] == pytest.approx(probs, abs=1e-5)
        assert mine["label"] == ("positive" if probs[1] > probs[0] else "negative")


def test_predict_table_and_unknown_run(trained):
    from click.testing import CliRunner

    from ui.cli import cli

    runs_dir, run_dir, _ = trained
    # in this process: the table rendering, with a unique prefix of the run id
    shown = CliRunner().invoke(
        cli, ["--runs-dir", str(runs_dir), "predict", run_dir.name[:15], "a lovely film"]
    )
    assert shown.exit_code == 0, shown.output
    assert "p(positive)" in shown.output and "a lovely film" in shown.output
    missing = peftlab(runs_dir, "predict", "no-such-run", "text")
    assert missing.returncode == 2 and "no run 'no-such-run'" in missing.stderr


def test_resume_of_a_completed_run_is_refused(trained):
    runs_dir, run_dir, _ = trained
    again = peftlab(runs_dir, "train", "--resume", run_dir.name)
    assert again.returncode == 2 and "already completed" in again.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "technique.r=0"], "below the minimum 1 (allowed: 1..256)"),
        (
            ["--set", "technique.rank=4"],
            "unknown parameter(s) rank; valid: alpha, bias, corda_method, dropout, eva_rho, ",
        ),
        (["--set", "trainer.batch_size=lots"], "expected an integer"),
        (["--set", "nonsense"], "--set expects KIND.PARAM=VALUE"),
        (["--technique", "nope"], "no technique plugin 'nope'; available: "),
        (["--dataset", "csv", "--set", "dataset.validation_fraction=0.9"], "above the maximum"),
        (["--model", "gpt-nope"], "no model plugin 'gpt-nope'; available: "),
        (["--recipe", "missing.yaml"], "recipe file not found"),
    ],
)
def test_bad_requests_are_refused_before_anything_loads(tmp_path, args, message):
    runs_dir = tmp_path / "runs"
    started = time.monotonic()
    done = peftlab(runs_dir, "train", *args, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert not runs_dir.exists() or not any(runs_dir.iterdir())  # no run folder was made
    assert time.monotonic() - started < 60


@pytest.mark.slow
@pytest.mark.skipif(
    not (SHARED_RT / "train.csv").is_file(), reason="shared rotten_tomatoes CSVs not present"
)
def test_minilm_lora_learns_rotten_tomatoes(tmp_path):
    """2,000 training sentences, full validation split (1,066): accuracy at least 0.75."""
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    done = peftlab(
        runs_dir,
        "train",
        "--dataset", "rotten_tomatoes",
        "--set", f"dataset.path={SHARED_RT}",
        "--set", "dataset.train_samples=2000",
        "--model", "minilm",
        "--technique", "lora",
        "--set", "trainer.epochs=2",
        "--set", "trainer.batch_size=16",
        "--name", "slow-rt",
        timeout=1800,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (run_dir,) = [p for p in runs_dir.iterdir() if p.is_dir()]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["num_train_samples"] == 2000 and results["num_eval_samples"] == 1066
    assert results["accuracy"] >= 0.75, results
    assert results["accuracy"] > results["baseline_accuracy"] + 0.15


def test_a_runs_recipe_can_be_trained_again(trained):
    from kernel.recipe import load_recipe

    _, run_dir, _ = trained
    recipe = load_recipe(run_dir / "recipe.yaml")
    assert recipe.ids() == {
        "dataset": "rotten_tomatoes",
        "model": "bert",
        "technique": "lora",
        "trainer": "hf_trainer",
    }
    assert recipe.technique.params["r"] == 4 and recipe.trainer.params["epochs"] == 2.0
