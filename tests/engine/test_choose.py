"""Choosing a run: `peftlab runs --best` and engine.choose on run folders with known figures.

The run folders are written by the test (recipe.yaml, status.json, results.json): no
training, so the right answer is known in advance.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from engine.choose import Candidate, Constraints, candidates_from_runs, choose
from engine.metrics import Interval
from kernel.runs import list_runs

# technique: accuracy, trainable %, peak MiB, train s, saved MiB
FIGURES = {
    "lora": (0.850, 0.50, 1500, 100, 1.00),
    "full": (0.900, 100.0, 3000, 200, 90.0),
    "ia3": (0.840, 0.05, 1400, 90, 0.20),
    "prompt_tuning": (0.700, 0.01, 1300, 80, 0.05),
    "loha": (0.800, 0.60, 1600, 120, 1.20),
}


def write_runs(runs_dir: Path, rows: int) -> None:
    """One completed run per technique (validation accuracy over `rows` rows), plus a failed one."""
    for index, (technique, figures) in enumerate(FIGURES.items()):
        accuracy, trainable, memory, seconds, size = figures
        folder = runs_dir / f"20261201-00000{index}-{technique}"
        folder.mkdir(parents=True)
        recipe = {"name": technique, **{k: {"id": k} for k in ("dataset", "model", "trainer")}}
        recipe["technique"] = {"id": technique, "params": {}}
        (folder / "recipe.yaml").write_text(yaml.safe_dump(recipe))
        (folder / "status.json").write_text(json.dumps({"state": "completed"}))
        results = {
            "accuracy": accuracy,
            "num_eval_samples": rows,
            "trainable_percent": trainable,
            "peak_memory_mb": memory,
            "train_runtime_s": seconds,
            "adapter_size_mb": size,
            "technique": technique,
        }
        (folder / "results.json").write_text(json.dumps(results))
    failed = runs_dir / "20261201-000009-vera"
    failed.mkdir()
    (failed / "recipe.yaml").write_text(yaml.safe_dump({"technique": {"id": "vera"}}))
    (failed / "status.json").write_text(json.dumps({"state": "failed", "error": "boom"}))


def best(runs_dir: Path, *args: str) -> dict:
    from ui.cli import cli

    out = CliRunner().invoke(cli, ["--runs-dir", str(runs_dir), "runs", "--best", *args, "--json"])
    assert out.exit_code == 0, out.output
    return json.loads(out.output)


def by_label(choice: dict) -> dict[str, dict]:
    return {c["label"]: c for c in choice["candidates"]}


def test_best_accuracy_under_one_percent_trainable_calls_the_tie_and_takes_the_cheaper(tmp_path):
    # 1,000 validation rows: a standard error of about 0.011, so 0.850 and 0.840 are a tie
    write_runs(tmp_path, rows=1000)
    choice = best(tmp_path, "accuracy", "--max-trainable-percent", "1")
    runs = by_label(choice)
    assert choice["recommended"]["label"] == "ia3"
    assert "tie within the noise with lora" in choice["sentence"]
    assert runs["full"]["excluded"].startswith("100 % trainable > 1 %")
    assert runs["full"]["rank"] is None and "vera" not in runs
    assert [runs[t]["rank"] for t in ("lora", "ia3", "loha", "prompt_tuning")] == [1, 2, 3, 4]
    assert runs["lora"]["score"]["stderr"] == pytest.approx((0.85 * 0.15 / 1000) ** 0.5)
    # loha is worse than lora at more of every cost: the only one off the front
    assert {t for t, c in runs.items() if c["on_front"]} == {"lora", "ia3", "prompt_tuning"}
    assert runs["prompt_tuning"]["tied_with_best"] is False


def test_with_many_rows_the_best_score_wins_outright(tmp_path):
    write_runs(tmp_path, rows=1_000_000)  # standard errors below 0.0004: no tie
    choice = best(tmp_path, "accuracy", "--max-trainable-percent", "1")
    assert choice["recommended"]["label"] == "lora"
    assert "ahead of ia3 by 0.0100, more than the noise" in choice["sentence"]
    unconstrained = best(tmp_path, "accuracy")
    assert unconstrained["recommended"]["label"] == "full"
    assert by_label(unconstrained)["full"]["on_front"] is True


def test_memory_and_time_limits_and_the_table(tmp_path):
    write_runs(tmp_path, rows=1_000_000)
    choice = best(tmp_path, "accuracy", "--max-memory-mb", "1450", "--max-train-time", "85")
    assert choice["recommended"]["label"] == "prompt_tuning"
    assert by_label(choice)["ia3"]["excluded"] == "90.0 s training > 85 s"
    from ui.cli import cli

    out = CliRunner().invoke(cli, ["--runs-dir", str(tmp_path), "runs", "--best", "accuracy"])
    assert out.exit_code == 0, out.output
    assert out.output.strip().splitlines()[-1].startswith("Recommended: full")


def test_no_eligible_run_says_why(tmp_path):
    write_runs(tmp_path, rows=100)
    choice = best(tmp_path, "accuracy", "--max-trainable-percent", "0.001")
    assert choice["recommended"] is None
    assert choice["sentence"].startswith("No run can be recommended by accuracy")


def test_lower_is_better_metrics_rank_upwards():
    def made(name: str, value: float, trainable: float) -> Candidate:
        return Candidate(
            name, name, Interval(value, 0.0, value, value), {"trainable_percent": trainable}
        )

    choice = choose([made("a", 3.0, 1.0), made("b", 2.0, 5.0), made("c", 4.0, 0.5)], "perplexity")
    assert [c.run_id for c in choice.candidates] == ["b", "a", "c"]
    assert choice.recommended.run_id == "b"
    assert [c.on_front for c in choice.candidates] == [True, True, True]


def test_evaluation_scores_replace_validation_scores(tmp_path):
    from engine.evaluate_results import RunEvaluation, write_evaluation

    write_runs(tmp_path, rows=1_000_000)
    runs = list_runs(tmp_path)
    loha = next(r for r in runs if r.id.endswith("loha"))
    held = Interval(0.99, 0.001, 0.988, 0.992)
    evaluation = RunEvaluation(loha.id, "sequence-classification", "file x.csv", "abc123", 10,
                               {"accuracy": 0.99}, {"accuracy": held})  # fmt: skip
    write_evaluation(loha, evaluation)
    found = choose(candidates_from_runs(runs, "accuracy", "abc"), "accuracy", Constraints())
    assert found.recommended.run_id == loha.id
    assert all(c.excluded for c in found.candidates if c.run_id != loha.id)


def test_compare_report_marks_the_front_and_recommends(tmp_path):
    from engine.report import front_labels, markdown, rows_from_runs, write_report

    write_runs(tmp_path / "runs", rows=1000)
    rows = rows_from_runs(list_runs(tmp_path / "runs"))
    # on the chart's axes (accuracy against trainable share) only loha is beaten: lora has
    # more accuracy at a smaller trainable share
    assert set(front_labels(rows)) == {"full", "lora", "ia3", "prompt_tuning"}
    text = markdown(rows, title="t")
    assert "## Choosing" in text
    assert "Pareto front of validation accuracy against cost" in text
    assert "Recommended: full" in text  # no constraints: full is ahead by more than the noise
    files = write_report(rows, tmp_path / "report")
    assert (tmp_path / "report" / "accuracy_vs_trainable.png") in files.plots


def test_the_report_table_gives_each_runs_held_out_interval(tmp_path):
    """report.csv and report.md carry the bootstrap interval of the newest held-out
    evaluation; a run never evaluated has empty cells."""
    import csv

    from engine.evaluate_results import RunEvaluation, write_evaluation
    from engine.report import rows_from_runs, write_report

    write_runs(tmp_path / "runs", rows=1000)
    runs = list_runs(tmp_path / "runs")
    lora = next(r for r in runs if r.id.endswith("lora"))
    held = Interval(0.85, 0.011, 0.828, 0.871)
    write_evaluation(lora, RunEvaluation(lora.id, "sequence-classification", "file v.csv",
                                         "h1", 1000, {"accuracy": 0.85}, {"accuracy": held}))  # fmt: skip
    write_report(rows_from_runs(runs), tmp_path / "report")
    table = {r["technique"]: r for r in csv.DictReader((tmp_path / "report" / "report.csv").open())}
    assert (table["lora"]["accuracy_low"], table["lora"]["accuracy_high"]) == ("0.828", "0.871")
    assert (table["ia3"]["accuracy_low"], table["ia3"]["accuracy_high"]) == ("", "")
    markdown = (tmp_path / "report" / "report.md").read_text()
    lora_line = next(line for line in markdown.splitlines() if line.startswith("| lora |"))
    assert "| 0.8280 | 0.8710 |" in lora_line


def test_the_apps_compare_chart_draws_the_front():
    from ui.charts import accuracy_vs_trainable

    rows = [
        {"run": technique, "technique": technique, "accuracy": f[0], "trainable_percent": f[1]}
        for technique, f in FIGURES.items()
    ]
    fig = accuracy_vs_trainable(rows)
    front = [t for t in fig.data if t.name == "Pareto front"]
    assert len(front) == 1
    # left to right: prompt_tuning, ia3, lora, full (loha is beaten by lora)
    assert list(front[0].x) == [0.01, 0.05, 0.50, 100.0]
    assert list(front[0].y) == [0.700, 0.840, 0.850, 0.900]
