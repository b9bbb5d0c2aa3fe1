"""The other pages through streamlit.testing: plugins, runs & compare, playground, datasets."""

from __future__ import annotations

import json
import time
from pathlib import Path

from kernel.runs import RunFolder


def _fake_run(
    runs: Path, name: str, technique: str, rank: int, accuracy: float, dataset: str = "toy_data"
) -> RunFolder:
    """A finished run folder as the trainer leaves it, without training anything."""
    run = RunFolder.create(runs, name)
    run.write_recipe(
        {
            "name": name,
            "dataset": {"id": dataset, "params": {"rows": 10}},
            "model": {"id": "toy_model", "params": {"name_or_path": ""}},
            "technique": {"id": technique, "params": {"rank": rank}},
            "trainer": {"id": "instant", "params": {"steps": 3}},
        }
    )
    for step, loss in enumerate((0.9, 0.6, 0.4), start=1):
        run.log_metrics({"step": step, "epoch": step / 3, "loss": loss})
    run.log_metrics({"step": 3, "epoch": 1.0, "eval_loss": 0.5, "eval_accuracy": accuracy})
    run.write_results(
        {
            "accuracy": accuracy,
            "f1_macro": accuracy - 0.05,
            "trainable_percent": 0.1 * rank,
            "train_runtime_s": 12.0,
            "peak_memory_mb": 300.0,
            "technique": technique,
        }
    )
    run.set_status("completed", finished=time.time())
    return run


def _by_label(widgets, label: str):
    return next(w for w in widgets if w.label == label)


def test_the_sidebar_says_hot_reload_is_on(app):
    app.run()  # AppTest keeps sidebar elements drawn before page.run() for the first run only
    assert "plugins · hot reload on" in app.sidebar.caption[0].value


def test_plugins_page_lists_bundles_errors_and_the_graph(app, ui_env):
    broken = ui_env["plugins"] / "techniques" / "broken"
    broken.mkdir(parents=True)
    (broken / "plugin.yaml").write_text("id: broken\nkind: technique\nname: [unclosed\n")
    app.run()
    app.switch_page("views/plugins.py").run()
    assert not app.exception
    table = app.dataframe[0].value
    sink = table[table["id"] == "kitchen_sink"].iloc[0]
    assert sink["status"] == "ok" and sink["origin"] == "env"
    assert any("broken" in e.value and "not valid YAML" in e.value for e in app.error)
    assert app.get("plotly_chart")  # the capability network
    misfits = app.dataframe[1].value
    assert "adapts linear or conv1d layers" in " ".join(misfits["why"])


def test_runs_page_lists_runs_and_draws_the_comparison(app, ui_env):
    _fake_run(ui_env["runs"], "first", "kitchen_sink", 4, 0.70)
    time.sleep(1.1)  # run folders are named by the second
    _fake_run(ui_env["runs"], "second", "kitchen_sink", 16, 0.80)
    app.run()
    app.switch_page("views/runs.py").run()
    assert not app.exception
    table = app.dataframe[0].value
    assert len(table) == 2 and set(table["state"]) == {"completed"}
    assert sorted(table["accuracy"]) == [0.7, 0.8]
    assert len(app.multiselect(key="compare_runs").value) == 2
    charts = app.get("plotly_chart")
    assert len(charts) >= 5  # accuracy vs trainable %, loss, time, memory, the one-run loss
    diff = app.table[0].value
    assert list(diff.index) == ["technique.rank"]


def test_runs_page_without_runs_says_so(app):
    app.run()
    app.switch_page("views/runs.py").run()
    assert "No runs" in app.info[0].value


def test_playground_without_completed_runs_says_so(app, ui_env):
    run = RunFolder.create(ui_env["runs"], "unfinished")
    run.write_recipe({"name": "unfinished"})
    run.set_status("failed", error="boom")
    app.run()
    app.switch_page("views/playground.py").run()
    assert not app.exception
    assert "No completed runs" in app.info[0].value


def test_upload_saves_a_sanitised_file_and_presets_the_dataset(app, ui_env):
    """The built-in csv bundle reads a local file (path, text_column, label_column params)."""
    app.run()
    app.switch_page("views/data.py").run()
    app.session_state["peftlab.defaults_loaded"] = False  # as if the Train page was not seen yet
    app.session_state["peftlab.chosen_ids"] = {}
    data = b"review,stars\ngood film,pos\nbad film,neg\nfine film,pos\n"
    app.file_uploader(key="upload").upload("../../etc/evil name.csv", data, "text/csv").run()
    assert not app.exception
    assert "3 rows, 2 columns" in [c.value for c in app.caption]
    assert _by_label(app.selectbox, "Text column").value == "review"
    assert _by_label(app.selectbox, "Label column").value == "stars"
    app.button(key="save_dataset").click().run()
    folder = ui_env["home"] / "data" / "datasets"
    saved = folder / "evil-name.csv"
    assert sorted(p.name for p in folder.iterdir()) == [
        "evil-name.csv",
        "evil-name.csv.columns.json",
    ]
    assert saved.read_bytes() == data
    assert json.loads((folder / "evil-name.csv.columns.json").read_text()) == {
        "text": "review",
        "label": "stars",
    }

    app.button(key="use-evil-name.csv").click().run()
    app.switch_page("views/train.py").run()
    assert app.selectbox(key="choice:dataset").value == "csv"
    assert app.selectbox(key="choice:model").value == "minilm"  # the default recipe fills the rest
    assert app.text_input(key="param:dataset:csv:path").value == str(saved)
    assert app.text_input(key="param:dataset:csv:text_column").value == "review"
    assert app.text_input(key="param:dataset:csv:label_column").value == "stars"


def test_upload_refuses_a_file_without_a_usable_label(app):
    app.run()
    app.switch_page("views/data.py").run()
    app.file_uploader(key="upload").upload(
        "one.jsonl", b'{"text": "a", "label": 1}\n{"text": "b", "label": 1}\n'
    ).run()
    assert any("distinct value" in e.value for e in app.error)
    assert app.button(key="save_dataset").disabled


def test_upload_guesses_columns_from_their_content(app):
    app.run()
    app.switch_page("views/data.py").run()
    rows = "\n".join(f"{i},{i % 2},a review that is long enough number {i}" for i in range(30))
    app.file_uploader(key="upload").upload("ids.csv", f"id,stars,body\n{rows}\n".encode()).run()
    assert not app.exception
    assert _by_label(app.selectbox, "Text column").value == "body"  # not the numeric id
    assert _by_label(app.selectbox, "Label column").value == "stars"  # two values
    assert not app.warning


def test_upload_warns_about_a_free_text_label(app):
    app.run()
    app.switch_page("views/data.py").run()
    rows = "\n".join(f"a short review {i},comment number {i}" for i in range(40))
    app.file_uploader(key="upload").upload("free.csv", f"text,label\n{rows}\n".encode()).run()
    assert not app.exception
    assert any("looks like free text" in w.value for w in app.warning)


def test_a_second_upload_is_saved_under_its_own_name(app, ui_env):
    app.run()
    app.switch_page("views/data.py").run()
    data = b"text,label\ngood,1\nbad,0\n"
    app.file_uploader(key="upload").upload("first.csv", data, "text/csv").run()
    assert _by_label(app.text_input, "Save as").value == "first"
    app.file_uploader(key="upload").upload("second.csv", data, "text/csv").run()
    assert _by_label(app.text_input, "Save as").value == "second"
    app.button(key="save_dataset").click().run()
    assert (ui_env["home"] / "data" / "datasets" / "second.csv").is_file()
