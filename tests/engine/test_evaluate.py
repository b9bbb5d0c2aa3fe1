"""engine.evaluate on tiny runs: a LoRA and an IA3 run of a tiny BERT, scored on a CSV they
never saw, checked against a plain transformers + peft evaluation of the same adapters.

The runs train for a few steps through the real engine (recipe -> run folder ->
engine.runner, in this process); nothing is downloaded.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.evaluate import DataSource, EvaluateOptions, evaluate_runs, read_evaluations
from engine.evaluate_data import EvaluationError
from engine.runner import main as runner_main
from kernel import Kernel
from kernel.jobs import prepare_run
from kernel.recipe import PluginChoice, Recipe, resolve
from kernel.runs import RunFolder
from tests.conftest import write_rows

UNSEEN = [
    ("an honest, gripping story told with real care", 1),
    ("the finest performance of the year", 1),
    ("sharp dialogue and a satisfying finale", 1),
    ("a joyful surprise that I will watch again", 1),
    ("a tedious mess with nothing to say", 0),
    ("poorly edited and painfully long", 0),
    ("the worst sequel in years", 0),
    ("lifeless characters and a muddled plot", 0),
    ("charming but forgettable", 1),
    ("not as bad as I feared, but close", 0),
]


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Any:
    """Tiny models on a shared machine: one torch thread is many times faster than two."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def train_run(
    kernel: Kernel,
    runs_dir: Path,
    model_dir: Path | None,
    data_dir: Path,
    technique: str,
    trainer: dict[str, Any] | None = None,
    model: tuple[str, dict[str, Any]] | None = None,
) -> RunFolder:
    """A few steps of `technique` on the csv bundle's train.csv / validation.csv in `data_dir`,
    on the bert bundle over `model_dir` (or `model`: another bundle id and its params)."""
    model_id, model_params = model or ("bert", {"name_or_path": str(model_dir)})
    recipe = Recipe(
        name=f"eval-{technique}",
        dataset=PluginChoice(
            id="csv",
            params={
                "path": str(data_dir / "train.csv"),
                "validation_path": str(data_dir / "validation.csv"),
                "max_length": 32,
            },
        ),
        model=PluginChoice(id=model_id, params=model_params),
        technique=PluginChoice(id=technique, params={}),
        trainer=PluginChoice(
            id="hf_trainer",
            params={
                "max_steps": 6,
                "batch_size": 8,
                "learning_rate": 0.01,
                "logging_steps": 1,
                "measure_baseline": False,
                "group_by_length": False,
                **(trainer or {}),
            },
        ),
    )
    run = prepare_run(resolve(recipe, kernel.snapshot, kernel.graph()), runs_dir)
    runner_main([str(run.path)])
    assert run.status()["state"] == "completed", run.status().get("traceback")
    return run


@pytest.fixture(scope="module")
def trained(kernel, tmp_path_factory, tiny_models, tiny_csv_dir) -> dict[str, RunFolder]:
    runs_dir = tmp_path_factory.mktemp("eval-runs")
    return {
        t: train_run(kernel, runs_dir, tiny_models["bert"], tiny_csv_dir, t)
        for t in ("lora", "ia3")
    }


@pytest.fixture(scope="module")
def unseen_csv(tmp_path_factory) -> Path:
    return write_rows(tmp_path_factory.mktemp("unseen") / "unseen.csv", UNSEEN)


def plain_peft_probabilities(run: RunFolder, base_dir: Path, texts: list[str]) -> np.ndarray:
    """The adapter evaluated with plain transformers + peft, nothing from peftlab."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    info = json.loads((run.adapter_dir / "peftlab.json").read_text())
    base = AutoModelForSequenceClassification.from_pretrained(str(base_dir), num_labels=2)
    model = PeftModel.from_pretrained(base, str(run.adapter_dir)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(run.adapter_dir))
    batch = tokenizer(
        texts, truncation=True, max_length=info["max_length"], padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        return torch.softmax(model(**batch).logits, dim=-1).numpy()


def plain_ece(probabilities: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    total = 0.0
    edges = np.linspace(0, 1, bins + 1)
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(total)


def test_lora_and_ia3_on_an_unseen_csv_agree_with_plain_peft(trained, unseen_csv, tiny_models):
    runs = [trained["lora"], trained["ia3"]]
    got = evaluate_runs(runs, DataSource(file=unseen_csv), EvaluateOptions(wrong_examples=3))
    assert [e.run_id for e in got] == [r.id for r in runs]
    texts = [t for t, _ in UNSEEN]
    labels = np.array([v for _, v in UNSEEN])
    for run, evaluation in zip(runs, got, strict=True):
        probabilities = plain_peft_probabilities(run, tiny_models["bert"], texts)
        predicted = probabilities.argmax(axis=1)
        accuracy = float((predicted == labels).mean())
        assert evaluation.metrics["accuracy"] == pytest.approx(accuracy, abs=1e-4)
        assert evaluation.metrics["ece"] == pytest.approx(
            plain_ece(probabilities, labels), abs=1e-4
        )
        # the interval: binomial standard error and a bootstrap interval around the accuracy
        interval = evaluation.intervals["accuracy"]
        assert interval.stderr == pytest.approx(
            math.sqrt(accuracy * (1 - accuracy) / (len(texts) - 1)), abs=1e-9
        )
        assert interval.low <= accuracy <= interval.high
        confusion = np.zeros((2, 2), dtype=int)
        for truth, guess in zip(labels, predicted, strict=True):
            confusion[truth, guess] += 1
        assert evaluation.confusion == confusion.tolist()
        assert [c.support for c in evaluation.per_class] == [5, 5]
        wrong = [i for i in range(len(texts)) if predicted[i] != labels[i]]
        assert len(evaluation.wrong) == min(3, len(wrong))
        if evaluation.wrong:
            most = max(wrong, key=lambda i: probabilities[i].max())
            assert evaluation.wrong[0].text == texts[most]
            assert evaluation.wrong[0].confidence == pytest.approx(
                probabilities[most].max(), abs=1e-5
            )
        assert evaluation.metrics["samples_per_s"] > 0 and evaluation.metrics["latency_ms"] > 0
        stored = read_evaluations(run)
        assert stored[0].data_hash == evaluation.data_hash
        assert stored[0].path == run.path / "evaluations" / f"{evaluation.data_hash}.json"
        assert (
            stored[0].metrics == evaluation.metrics and stored[0].intervals == evaluation.intervals
        )


def test_same_rows_from_another_file_share_the_hash(trained, unseen_csv, tmp_path):
    jsonl = tmp_path / "unseen.jsonl"
    jsonl.write_text("".join(json.dumps({"text": t, "label": v}) + "\n" for t, v in UNSEEN))
    first = evaluate_runs([trained["lora"]], DataSource(file=unseen_csv), write=False)[0]
    second = evaluate_runs([trained["lora"]], DataSource(file=jsonl), write=False)[0]
    assert first.data_hash == second.data_hash
    assert first.metrics["accuracy"] == second.metrics["accuracy"]


def test_unknown_labels_are_refused_with_the_row(trained, tmp_path):
    bad = write_rows(tmp_path / "bad.csv", [("fine", 1), ("meh", 7)])
    with pytest.raises(EvaluationError, match=r"row 2 has label '7'"):
        evaluate_runs([trained["lora"]], DataSource(file=bad), write=False)


def test_evaluate_command_scores_both_runs_and_runs_lists_the_result(trained, unseen_csv):
    from click.testing import CliRunner

    from ui.cli import cli

    runs_dir = trained["lora"].path.parent
    ids = [trained["lora"].id, trained["ia3"].id]
    base = ["--runs-dir", str(runs_dir)]
    out = CliRunner().invoke(cli, [*base, "evaluate", *ids, "--data", str(unseen_csv), "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert [r["run_id"] for r in rows] == ids
    assert all(set(r["intervals"]["accuracy"]) == {"value", "stderr", "low", "high"} for r in rows)
    shown = CliRunner().invoke(cli, [*base, "evaluate", *ids, "--data", str(unseen_csv)])
    assert shown.exit_code == 0, shown.output
    assert "accuracy ± s.e." in shown.output and "Recommended:" in shown.output
    listing = CliRunner().invoke(cli, [*base, "runs", "--json"])
    held = {r["id"]: r["held_out"] for r in json.loads(listing.output)}
    for row in rows:
        assert held[row["run_id"]]["value"] == pytest.approx(row["metrics"]["accuracy"])
        assert held[row["run_id"]]["data_hash"] == row["data_hash"]
    ranked = CliRunner().invoke(
        cli, [*base, "runs", "--best", "accuracy", "--data", str(unseen_csv), "--json"]
    )
    assert ranked.exit_code == 0, ranked.output
    choice = json.loads(ranked.output)
    assert choice["recommended"]["run_id"] in ids
    assert all(c["excluded"] is None for c in choice["candidates"])


def test_evaluate_command_refuses_a_missing_file_in_one_line(trained, tmp_path):
    from click.testing import CliRunner

    from ui.cli import cli

    runs_dir = trained["lora"].path.parent
    missing = tmp_path / "nope.csv"
    out = CliRunner().invoke(
        cli, ["--runs-dir", str(runs_dir), "evaluate", trained["lora"].id, "--data", str(missing)]
    )
    assert out.exit_code == 2
    assert "file not found" in out.output and "Traceback" not in out.output


def test_evaluate_command_on_dataset_bundle_splits(trained, tiny_csv_dir):
    from click.testing import CliRunner

    from ui.cli import cli

    run = trained["lora"]
    base = ["--runs-dir", str(run.path.parent), "evaluate", run.id, "--json"]
    # the bundle the run trained on (its own copy and params): its validation split
    own = CliRunner().invoke(cli, [*base, "--data", "csv:validation"])
    assert own.exit_code == 0, own.output
    assert json.loads(own.output)[0]["examples"] == 4
    assert json.loads(own.output)[0]["data"] == "dataset csv split validation"
    # another bundle, pointed at a folder with a test.csv: its names map onto the run's labels
    other = CliRunner().invoke(
        cli, [*base, "--data", "rotten_tomatoes:test", "--set", f"path={tiny_csv_dir}"]
    )
    assert other.exit_code == 0, other.output
    found = json.loads(other.output)[0]
    assert found["examples"] == 4 and [c["support"] for c in found["per_class"]] == [2, 2]
    unknown = CliRunner().invoke(cli, [*base, "--data", "no_such_bundle"])
    assert unknown.exit_code == 2 and "no dataset plugin 'no_such_bundle'" in unknown.output
