"""The Train page and sidebar as a first-time user meets them: plugin folders created while
the app runs, effective values, failed and hot-reloaded plugins, the run queue and
comparisons started from the form."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from tests.ui.conftest import KITCHEN_SINK, TEST_CHOICES, write_bundle

SINK = "param:technique:kitchen_sink:"


def _until(at, condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Rerun the app until `condition` holds (the watcher applies changes in the background)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        at.run()
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met")


def _state(run: Path) -> str:
    try:
        return json.loads((run / "status.json").read_text()).get("state", "")
    except (FileNotFoundError, json.JSONDecodeError):
        return ""


def _runs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if (p / "recipe.yaml").is_file())


def _wait_state(run: Path, states: tuple[str, ...], timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while _state(run) not in states and time.monotonic() < deadline:
        time.sleep(0.1)
    return _state(run)


def test_a_plugin_folder_created_after_the_start_shows_on_the_train_page(app, ui_env, choose):
    home_plugins = ui_env["home"] / "plugins"  # a new user's: it does not exist yet
    assert not home_plugins.exists()
    app.run()
    choose(app, **TEST_CHOICES)

    def offered() -> bool:  # options read "Name (id)"
        return any("(late_sink)" in o for o in app.selectbox(key="choice:technique").options)

    assert not offered()
    write_bundle(home_plugins, {**KITCHEN_SINK, "id": "late_sink"})
    _until(app, offered)
    assert not app.exception


def test_the_form_shows_the_effective_learning_rate_and_targets(train_page):
    captions = " ".join(c.value for c in train_page.caption)
    assert "trainer.learning_rate = 0.25 (from 0)" in captions  # the technique's rate
    assert "technique.targets = q, v (from auto)" in captions  # the model's default targets
    train_page.number_input(key="param:trainer:instant:learning_rate").set_value(0.5).run()
    assert "trainer.learning_rate" not in " ".join(c.value for c in train_page.caption)


def test_a_failed_reload_is_shown_on_the_train_page_and_counted_alike(train_page, ui_env):
    at = train_page
    (ui_env["plugins"] / "techniques" / "kitchen_sink" / "plugin.yaml").write_text(
        "id: kitchen_sink\nkind: technique\nname: [unclosed\n"
    )
    _until(at, lambda: any("last reload failed" in w.value for w in at.warning))
    assert at.slider(key=SINK + "rank").value == 8  # the last good form stays usable
    assert any("1 plugin(s) with problems" in c.value for c in at.caption)


def test_untouched_fields_follow_a_hot_reloaded_default(train_page, ui_env):
    at = train_page
    at.slider(key=SINK + "scale").set_value(0.7).run()  # touched: stays
    manifest_file = ui_env["plugins"] / "techniques" / "kitchen_sink" / "plugin.yaml"
    manifest = yaml.safe_load(manifest_file.read_text())
    manifest["params"]["rank"]["default"] = 16
    manifest["params"]["scale"]["default"] = 0.2
    manifest_file.write_text(yaml.safe_dump(manifest, sort_keys=False))
    _until(at, lambda: at.slider(key=SINK + "rank").value == 16)
    assert at.slider(key=SINK + "scale").value == 0.7
    recipe = yaml.safe_load(at.code[0].value)
    assert recipe["technique"]["params"] == {"scale": 0.7}  # rank is no override


def test_a_second_start_is_queued_until_the_first_run_finishes(train_page, ui_env):
    at = train_page
    # 4 steps of 1.5 s: the first run is still training when the second click lands
    at.number_input(key="param:trainer:instant:pause").set_value(1.5).run()
    at.button(key="start").click().run()
    (first,) = _runs(ui_env["runs"])
    assert _wait_state(first, ("running",)) == "running"
    at.run()
    assert at.button(key="start").label == "Queue run"
    at.button(key="start").click().run()
    second = next(p for p in _runs(ui_env["runs"]) if p != first)
    assert _state(second) == "queued"
    assert json.loads((ui_env["runs"] / "queue.json").read_text()) == {"runs": [second.name]}
    assert _wait_state(first, ("completed", "failed")) == "completed"
    _until(at, lambda: _state(second) in ("pending", "running", "completed"))
    assert _wait_state(second, ("completed", "failed")) == "completed"


def test_two_techniques_start_as_one_queued_comparison(train_page, ui_env):
    write_bundle(ui_env["plugins"], {**KITCHEN_SINK, "id": "plain_sink"})
    at = train_page
    _until(at, lambda: "plain_sink" in at.multiselect(key="compare_techniques").options)
    at.multiselect(key="compare_techniques").set_value(["plain_sink"]).run()
    at.button(key="start_compare").click().run()
    assert not at.exception
    runs = _runs(ui_env["runs"])
    techniques = sorted(
        yaml.safe_load((r / "recipe.yaml").read_text())["technique"]["id"] for r in runs
    )
    assert techniques == ["kitchen_sink", "plain_sink"]
    assert sorted(at.multiselect(key="compare_runs").value) == [r.name for r in runs]
    for run in runs:
        _until(at, lambda run=run: _state(run) == "completed", timeout=40)


def test_several_values_of_one_param_start_as_a_comparison(train_page, ui_env):
    at = train_page
    at.selectbox(key="compare_param").set_value("technique.rank").run()
    at.text_input(key="compare_values").input("4, 32").run()
    at.button(key="start_compare").click().run()
    runs = _runs(ui_env["runs"])
    ranks = sorted(
        yaml.safe_load((r / "recipe.yaml").read_text())["technique"]["params"]["rank"] for r in runs
    )
    assert ranks == [4, 32]
    assert [_state(r) for r in runs].count("queued") >= 1  # one at a time


def test_a_loaded_recipe_keeps_its_description(train_page):
    at = train_page
    from kernel.config import RECIPES_DIR

    at.selectbox(key="recipe_pick").set_value(str(RECIPES_DIR / "default.yaml")).run()
    at.button(key="load_recipe").click().run()
    assert not at.exception
    recipe = yaml.safe_load(at.code[0].value)
    assert recipe["description"].startswith("The embedded default")


def test_choosers_show_plugin_names_with_every_reason(train_page):
    at = train_page
    box = at.selectbox(key="choice:technique")
    assert box.format_func("kitchen_sink") == "Kitchen sink (kitchen_sink)"
    assert box.format_func("lora").startswith("LoRA (lora)  ⚠ ")
