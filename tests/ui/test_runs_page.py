"""The Runs page's management through streamlit.testing: filters, names and tags, delete with
confirmation, comparisons within one dataset, effective values, export and the table."""

from __future__ import annotations

import json
import time

from kernel.runs import RunFolder
from tests.ui.test_pages import _fake_run


def _runs_page(app):
    app.run()
    app.switch_page("views/runs.py").run()
    assert not app.exception, app.exception
    return app


def _two_datasets(runs):
    old = _fake_run(runs, "old", "kitchen_sink", 4, 0.60, dataset="other_data")
    time.sleep(1.1)  # run folders are named by the second
    first = _fake_run(runs, "first", "kitchen_sink", 8, 0.70)
    time.sleep(1.1)
    second = _fake_run(runs, "second", "kitchen_sink", 16, 0.80)
    return old, first, second


def test_compare_defaults_to_the_newest_runs_dataset_only(app, ui_env):
    old, first, second = _two_datasets(ui_env["runs"])
    at = _runs_page(app)
    assert at.selectbox(key="compare_group").value == "toy_data"
    assert sorted(at.multiselect(key="compare_runs").value) == sorted([first.id, second.id])
    at.selectbox(key="compare_group").set_value("other_data").run()
    assert at.multiselect(key="compare_runs").value == [old.id]


def test_repeated_techniques_get_distinct_point_labels(app, ui_env):
    _, first, second = _two_datasets(ui_env["runs"])
    at = _runs_page(app)
    accuracy = json.loads(at.get("plotly_chart")[0].proto.spec)
    points = [t for t in accuracy["data"] if t.get("name") != "Pareto front"]
    labels = sorted(trace["text"][0] for trace in points)
    assert labels == [f"kitchen_sink · {first.id}", f"kitchen_sink · {second.id}"]


def test_filters_narrow_the_table(app, ui_env):
    _two_datasets(ui_env["runs"])
    at = _runs_page(app)
    assert len(at.dataframe[0].value) == 3
    at.multiselect(key="filter-dataset").set_value(["other_data"]).run()
    assert list(at.dataframe[0].value["dataset"]) == ["other_data"]


def test_a_failed_run_shows_blanks_not_none(app, ui_env):
    run = RunFolder.create(ui_env["runs"], "broken")
    run.write_recipe({"name": "broken", "technique": {"id": "kitchen_sink"}})
    run.set_status("failed", error="boom")
    at = _runs_page(app)
    row = at.dataframe[0].value.iloc[0]
    assert row["dataset"] == "" and row["model"] == "" and row["state"] == "failed"


def test_rename_and_tag_a_run_then_filter_by_tag(app, ui_env):
    _, first, second = _two_datasets(ui_env["runs"])
    at = _runs_page(app)
    at.selectbox(key="run_detail").set_value(first.id).run()
    at.text_input(key=f"meta-name-{first.id}").input("baseline")  # a form: no rerun per field
    at.text_input(key=f"meta-tags-{first.id}").input("cpu, small")
    at.button(key=f"FormSubmitter:meta-{first.id}-Save").click().run()
    assert not at.exception
    at.run()  # the page drew its table before the save; the next run shows the new name
    table = at.dataframe[0].value
    assert table[table["run"] == first.id].iloc[0]["name"] == "baseline"
    at.multiselect(key="filter-tags").set_value(["small"]).run()
    assert list(at.dataframe[0].value["run"]) == [first.id]


def test_delete_needs_confirmation(app, ui_env):
    _, first, second = _two_datasets(ui_env["runs"])
    at = _runs_page(app)
    at.selectbox(key="run_detail").set_value(first.id).run()
    assert at.button(key=f"delete-{first.id}").disabled
    at.checkbox(key=f"delete-sure-{first.id}").check().run()
    at.button(key=f"delete-{first.id}").click().run()
    assert not at.exception
    assert not first.path.exists() and second.path.exists()
    at.run()
    assert first.id not in list(at.dataframe[0].value["run"])


def test_the_diff_shows_effective_learning_rates(app, ui_env):
    _, first, second = _two_datasets(ui_env["runs"])
    for run, rate in ((first, 0.002), (second, 0.03)):
        run.write_results({**run.results(), "learning_rate": rate})
    at = _runs_page(app)
    diff = at.table[0].value
    assert "trainer.learning_rate" in diff.index
    assert sorted(diff.loc["trainer.learning_rate"]) == ["0.002 (default)", "0.03 (default)"]
    table = at.dataframe[0].value
    assert sorted(table["learning_rate"].dropna()) == [0.002, 0.03]


def test_export_offers_the_adapter_as_a_download(app, ui_env):
    _, first, _ = _two_datasets(ui_env["runs"])
    (first.adapter_dir).mkdir()
    (first.adapter_dir / "adapter_config.json").write_text("{}")
    at = _runs_page(app)
    at.selectbox(key="run_detail").set_value(first.id).run()
    assert not at.exception
    assert at.get("download_button")
