"""One damaged run folder never hides the others: every reader is defensive."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kernel.runs import RunFolder
from tests.reliability.builders import peftlab

RECIPE = "name: ok\ndataset: {id: csv}\nmodel: {id: bert}\ntechnique: {id: lora}\n"

DAMAGE = {
    "results-not-utf8": ("results.json", b'{"accuracy": 0.5, "note": "\xff\xfe"}', "not UTF-8"),
    "results-a-list": ("results.json", b"[1, 2, 3]", "not a JSON object but list"),
    "results-string-number": ("results.json", b'{"accuracy": "high"}', "'accuracy' should be"),
    "status-string-pid": (
        "status.json",
        b'{"state": "running", "pid": "1234", "started": 1.0}',
        "'pid' should be an integer",
    ),
    "status-string-time": (
        "status.json",
        b'{"state": "failed", "started": "yesterday"}',
        "'started' should be a time",
    ),
    "recipe-a-list": ("recipe.yaml", b"- a\n- b\n", "not a mapping but list"),
    "recipe-not-utf8": ("recipe.yaml", b"name: \xff\n", "not UTF-8"),
}


def _runs_folder(tmp_path: Path) -> Path:
    runs = tmp_path / "runs"
    good = RunFolder.create(runs, "good")
    good.recipe_file.write_text(RECIPE, encoding="utf-8")
    good.set_status("completed", started=1.0, finished=2.0)
    good.write_results({"accuracy": 0.75, "trainable_percent": 1.5, "train_runtime_s": 3.0})
    for name, (file, content, _reason) in DAMAGE.items():
        run = RunFolder.create(runs, name)
        run.recipe_file.write_text(RECIPE, encoding="utf-8")
        (run.path / file).write_bytes(content)
    return runs


@pytest.mark.parametrize("name", sorted(DAMAGE))
def test_each_damage_is_named(tmp_path: Path, name: str) -> None:
    runs = _runs_folder(tmp_path)
    (run,) = [RunFolder(p) for p in runs.iterdir() if p.name.endswith(name)]
    assert DAMAGE[name][2] in (run.damage() or "")
    run.status(), run.results(), run.metrics(), run.progress()  # none of them raises


def test_peftlab_runs_lists_the_damaged_and_the_good(tmp_path: Path) -> None:
    _runs_folder(tmp_path)
    result = peftlab(tmp_path, "runs", "--json", timeout=60)
    assert result.returncode == 0, result.stderr
    rows = {row["id"].split("-", 2)[-1]: row for row in json.loads(result.stdout)}
    assert rows["good"]["state"] == "completed" and rows["good"]["accuracy"] == 0.75
    for name, (_file, _content, reason) in DAMAGE.items():
        assert rows[name]["state"] == "damaged" and reason in rows[name]["error"]
    table = peftlab(tmp_path, "runs", timeout=60)
    assert table.returncode == 0 and "Traceback" not in table.stderr
    assert "0.7500" in table.stdout and table.stdout.count("is damaged") == len(DAMAGE)


def test_the_ui_rows_mark_damaged_runs(tmp_path: Path) -> None:
    from ui.views._shared import run_rows

    rows = {row["run"].split("-", 2)[-1]: row for row in run_rows(_runs_folder(tmp_path))}
    assert rows["good"]["state"] == "completed" and rows["good"]["problem"] == ""
    for name, (_file, _content, reason) in DAMAGE.items():
        assert rows[name]["state"] == "damaged" and reason in rows[name]["problem"]
