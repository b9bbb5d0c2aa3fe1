"""`peftlab compare`: several techniques, one run each, a report with one row per technique.

The comparison itself runs through click in this process; its training runs are
subprocesses, as always. Runs are kept to two optimizer steps on a tiny BERT.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.report import COLUMNS, PLOT_FILES
from kernel.errors import RecipeError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def cli(runs_dir: Path, *args: str):
    from ui.cli import cli as peftlab

    return CliRunner().invoke(peftlab, ["--runs-dir", str(runs_dir), *args])


def tiny_args(model_dir: Path, data_dir: Path) -> list[str]:
    return [
        "--dataset", "rotten_tomatoes",
        "--set", f"dataset.path={data_dir}",
        "--set", "dataset.max_length=32",
        "--model", "bert",
        "--set", f"model.name_or_path={model_dir}",
        "--set", "trainer.max_steps=2",
        "--set", "trainer.batch_size=4",
        "--set", "trainer.logging_steps=1",
        "--set", "trainer.measure_baseline=false",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def compared(tmp_path_factory, tiny_models, tiny_csv_dir):
    """lora, a loha whose target pattern matches no layer (past the checks; its run fails), ia3."""
    root = tmp_path_factory.mktemp("compare")
    runs_dir, out = root / "runs", root / "report"
    done = cli(
        runs_dir,
        "compare",
        *tiny_args(tiny_models["bert"], tiny_csv_dir),
        "--techniques", "lora,loha,ia3",
        "--set", "technique.r=4",  # lora and loha have r; ia3 has none and is left alone
        "--set", "loha.target_modules=no_such_(layer)",  # a pattern: only peft can tell
        "--name", "cmp",
        "--out", str(out),
    )  # fmt: skip
    return runs_dir, out, done


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_compare_writes_a_row_per_technique_and_goes_past_a_failure(compared):
    runs_dir, out, done = compared
    assert done.exit_code == 1, done.output  # one technique failed
    assert "[1/3] lora" in done.output and "[3/3] ia3" in done.output
    rows = read_csv(out / "report.csv")
    assert list(rows[0]) == list(COLUMNS)
    assert [r["technique"] for r in rows] == ["lora", "loha", "ia3"]
    assert [r["status"] for r in rows] == ["completed", "failed", "completed"]
    failed = rows[1]
    assert "No modules were targeted" in failed["error"] and failed["accuracy"] == ""
    for row in (rows[0], rows[2]):
        assert 0.0 <= float(row["accuracy"]) <= 1.0
        assert float(row["trainable_percent"]) > 0 and int(row["trainable_params"]) > 0
        assert float(row["train_runtime_s"]) > 0 and float(row["peak_memory_mb"]) > 0
        assert (runs_dir / row["run_id"] / "results.json").is_file()
    # each technique trained with its own default learning rate, on the same seed and data
    assert float(rows[0]["learning_rate"]) != float(rows[2]["learning_rate"])
    recipes = [json.loads(json.dumps(_recipe(runs_dir, r["run_id"]))) for r in (rows[0], rows[2])]
    assert recipes[0]["dataset"] == recipes[1]["dataset"]
    assert recipes[0]["trainer"]["params"]["seed"] == recipes[1]["trainer"]["params"]["seed"]
    assert recipes[0]["technique"]["params"]["r"] == 4


def _recipe(runs_dir: Path, run_id: str) -> dict:
    import yaml

    return yaml.safe_load((runs_dir / run_id / "recipe.yaml").read_text())


def test_report_markdown_and_plots(compared):
    _, out, _ = compared
    report = (out / "report.md").read_text()
    assert report.count("| completed |") == 2 and "| failed |" in report
    assert "## Did not complete" in report and "No modules were targeted" in report
    assert "peftlab --runs-dir" in report and "--techniques lora,loha,ia3" in report
    for name in PLOT_FILES.values():
        path = out / name
        assert path.read_bytes()[:8] == PNG_MAGIC, name
        assert f"]({name})" in report


def test_from_runs_rebuilds_a_report(compared, tmp_path):
    runs_dir, out, _ = compared
    ids = [r["run_id"] for r in read_csv(out / "report.csv") if r["status"] == "completed"]
    failed_id = next(r["run_id"] for r in read_csv(out / "report.csv") if r["status"] == "failed")
    again = tmp_path / "again"
    done = cli(runs_dir, "compare", "--from-runs", *ids, failed_id, "--out", str(again))
    assert done.exit_code == 0, done.output
    rows = read_csv(again / "report.csv")
    assert [r["technique"] for r in rows] == ["lora", "ia3", "loha"]
    assert [r["status"] for r in rows] == ["completed", "completed", "failed"]
    assert rows[0]["accuracy"] == read_csv(out / "report.csv")[0]["accuracy"]


def test_unknown_technique_is_refused_before_any_run(tmp_path, tiny_models, tiny_csv_dir):
    runs_dir = tmp_path / "runs"
    done = cli(runs_dir, "compare", *tiny_args(tiny_models["bert"], tiny_csv_dir),
               "--techniques", "lora,nope")  # fmt: skip
    assert done.exit_code == 2 and "no technique plugin 'nope'" in done.output
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


def test_set_goes_to_the_techniques_that_have_the_param():
    from ui.commands.compare_plan import split_sets

    declared = {"lora": {"r", "alpha"}, "ia3": {"target_modules"}, "vera": {"r"}}
    sets = split_sets(
        ["trainer.epochs=1", "technique.r=4", "vera.r=64", "lora.alpha=8", "ia3.trainer.seed=3"],
        ["lora", "ia3", "vera"],
        declared,
    )
    assert sets["lora"] == ["trainer.epochs=1", "technique.r=4", "technique.alpha=8"]
    assert sets["ia3"] == ["trainer.epochs=1", "trainer.seed=3"]
    assert sets["vera"] == ["trainer.epochs=1", "technique.r=4", "technique.r=64"]
    with pytest.raises(RecipeError, match="no compared technique has a param 'rank'"):
        split_sets(["technique.rank=4"], ["lora"], {"lora": {"r"}})
    with pytest.raises(RecipeError, match="one of the compared techniques"):
        split_sets(["loha.r=4"], ["lora"], {"lora": {"r"}})


def test_compare_recipe_file(tmp_path):
    from ui.commands.compare_plan import load_compare_recipe

    path = tmp_path / "compare.yaml"
    path.write_text(
        "name: sweep\n"
        "dataset: {id: demo}\n"
        "model: {id: minilm}\n"
        "trainer: {id: hf_trainer, params: {epochs: 1}}\n"
        "techniques: [lora, {id: ia3, params: {target_modules: auto}}]\n"
    )
    recipe = load_compare_recipe(path)
    assert [t.id for t in recipe.techniques] == ["lora", "ia3"]
    one = recipe.recipe_for(recipe.techniques[1])
    assert one.name == "sweep-ia3" and one.technique.params == {"target_modules": "auto"}
    assert one.trainer.params == {"epochs": 1}
    path.write_text("dataset: {id: demo}\nmodel: {id: minilm}\ntechniques: [lora]\nbogus: 1\n")
    with pytest.raises(RecipeError):
        load_compare_recipe(path)
    path.write_text(
        "dataset: {id: demo}\nmodel: {id: minilm}\ntechnique: {id: ia3}\ntechniques: [lora]\n"
    )
    with pytest.raises(RecipeError, match="lists `techniques:`, not one `technique:`"):
        load_compare_recipe(path)


def _unlabelled_csv(tmp_path: Path) -> Path:
    data = tmp_path / "reviews.csv"
    data.write_text("review,stars\ngood,1\nbad,0\n", encoding="utf-8")
    return data


def test_a_preflight_problem_every_run_shares_is_refused_before_any_run(tmp_path, tiny_models):
    runs_dir, data = tmp_path / "runs", _unlabelled_csv(tmp_path)
    done = cli(runs_dir, "compare", "--dataset", "csv", "--set", f"dataset.path={data}",
               "--model", "bert", "--set", f"model.name_or_path={tiny_models['bert']}",
               "--techniques", "lora,ia3")  # fmt: skip
    assert done.exit_code == 2, done.output
    assert done.output.strip().splitlines() == [
        f"error: {data}: no column 'text', 'label'; it has: review, stars"
    ]  # the same line `peftlab train` prints
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


def test_a_technique_refused_by_preflight_gets_no_run_folder(tiny_models, tiny_csv_dir, tmp_path):
    from tests.reliability.builders import kernel_for
    from ui.commands.compare_plan import CompareRecipe, plan_runs

    kernel = kernel_for()

    base = CompareRecipe.model_validate(
        {"dataset": {"id": "rotten_tomatoes", "params": {"path": str(tiny_csv_dir)}},
         "model": {"id": "bert", "params": {"name_or_path": str(tiny_models["bert"])}}}
    )  # fmt: skip
    runs_dir = tmp_path / "runs"
    sets = ["lora.target_modules=q_proj"]
    lora, ia3 = plan_runs(kernel, base, ["lora", "ia3"], sets, None, None, runs_dir)
    assert lora.run is None and "[target_modules]: q_proj match(es) no layer" in (lora.error or "")
    assert ia3.run is not None and [p.name for p in runs_dir.iterdir()] == [ia3.run.id]
