"""The Train page through streamlit.testing: forms from specs, validation, compatibility,
model weights, recipes, hot-reloaded bounds and starting a run."""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml

SINK = "param:technique:kitchen_sink:"


def _errors(at) -> str:
    return "\n".join(e.value for e in at.error)


def test_form_has_a_widget_for_every_param_type(train_page):
    at = train_page
    assert not at.exception
    assert at.slider(key=SINK + "rank").value == 8  # int with min and max
    assert at.number_input(key=SINK + "steps").value == 0  # int without max
    assert at.slider(key=SINK + "scale").value == 0.5  # float on the slider's grid
    assert at.number_input(key=SINK + "rate").value == 0.0  # float default on a bound
    assert at.toggle(key=SINK + "enabled").value is True
    assert at.radio(key=SINK + "mode").options == ["a", "b", "c"]  # <= 4 options
    assert len(at.selectbox(key=SINK + "flavour").options) == 6
    targets = at.multiselect(key=SINK + "targets")
    assert targets.value == ["auto"]
    assert targets.options == ["auto", "q", "k", "v"]  # options_from the chosen model
    assert at.text_input(key=SINK + "note").label == "A note"
    assert at.text_input(key=SINK + "data_file").value == ""
    advanced = [e for e in at.expander if e.label.startswith("Advanced")]
    assert any(w.key == SINK + "secret_knob" for e in advanced for w in e.slider)
    assert not at.error


def test_depends_on_shows_a_param_only_when_its_condition_holds(train_page):
    at = train_page
    assert SINK + "depth" not in [s.key for s in at.slider]
    at.radio(key=SINK + "mode").set_value("b").run()
    assert at.slider(key=SINK + "depth").value == 2


def test_invalid_values_show_errors_and_block_the_start(train_page):
    at = train_page
    at.multiselect(key=SINK + "targets").set_value([]).run()
    assert "choose at least one entry" in _errors(at)
    assert at.button(key="start").disabled
    at.multiselect(key=SINK + "targets").set_value(["q", "my_proj"]).run()
    assert not at.error
    at.text_input(key=SINK + "data_file").input("/no/such/file.csv").run()
    assert "does not exist" in _errors(at)
    assert at.button(key="start").disabled


def test_incompatible_choices_show_the_reason(train_page):
    at = train_page
    label = at.selectbox(key="choice:technique").format_func("lora")
    assert "⚠" in label and "adapts linear or conv1d layers" in label
    at.selectbox(key="choice:technique").set_value("lora").run()
    assert "adapts linear or conv1d layers" in _errors(at)
    assert at.button(key="start").disabled


def test_model_weights_accept_a_folder_or_a_hub_id(train_page, tmp_path):
    at = train_page
    key = "param:model:toy_model:name_or_path"
    at.text_input(key=key).input(str(tmp_path / "missing")).run()
    assert "does not exist" in _errors(at)
    folder = tmp_path / "tiny"
    folder.mkdir()
    at.text_input(key=key).input(str(folder)).run()
    assert "no config.json" in _errors(at)
    (folder / "config.json").write_text("{}")
    at.text_input(key=key).run()
    assert not at.error
    recipe = yaml.safe_load(at.code[0].value)
    assert recipe["model"]["params"]["name_or_path"] == str(folder.resolve())
    at.text_input(key=key).input("some-org/some-model").run()
    assert not at.error
    assert any("needs network" in c.value for c in at.caption)


def test_recipe_yaml_and_cli_follow_the_form(train_page):
    at = train_page
    at.slider(key=SINK + "rank").set_value(16).run()
    recipe = yaml.safe_load(at.code[0].value)
    assert recipe["technique"] == {"id": "kitchen_sink", "params": {"rank": 16}}
    assert "--set technique.rank=16" in at.code[1].value
    assert "--technique kitchen_sink" in at.code[1].value


def test_save_and_load_a_recipe(train_page, ui_env):
    at = train_page
    at.slider(key=SINK + "rank").set_value(32).run()
    at.text_input(key="run_name_input").input("my recipe").run()
    at.button(key="save_recipe").click().run()
    saved = ui_env["home"] / "data" / "recipes" / "my-recipe.yaml"
    assert saved.is_file()
    assert yaml.safe_load(saved.read_text())["technique"]["params"] == {"rank": 32}
    at.slider(key=SINK + "rank").set_value(4).run()
    at.selectbox(key="recipe_pick").set_value(str(saved)).run()
    at.button(key="load_recipe").click().run()
    assert at.slider(key=SINK + "rank").value == 32
    assert any("loaded my-recipe.yaml" in s.value for s in at.success)


def test_changed_bounds_clamp_the_held_value(train_page, ui_env):
    at = train_page
    at.slider(key=SINK + "rank").set_value(60).run()
    manifest_file = ui_env["plugins"] / "techniques" / "kitchen_sink" / "plugin.yaml"
    manifest = yaml.safe_load(manifest_file.read_text())
    manifest["params"]["rank"]["max"] = 16
    manifest_file.write_text(yaml.safe_dump(manifest, sort_keys=False))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # the watcher applies the edit within its debounce
        at.run()
        if at.slider(key=SINK + "rank").max == 16:
            break
        time.sleep(0.2)
    slider = at.slider(key=SINK + "rank")
    assert slider.max == 16
    assert slider.value == 16
    assert any("outside the allowed range now; set to 16" in c.value for c in at.caption)
    assert not at.exception


def test_start_creates_a_run_that_finishes(train_page, ui_env):
    at = train_page
    at.slider(key=SINK + "rank").set_value(10).run()
    at.button(key="start").click().run()
    assert not at.exception
    runs = [p for p in ui_env["runs"].iterdir() if (p / "recipe.yaml").is_file()]
    assert len(runs) == 1
    recipe = yaml.safe_load((runs[0] / "recipe.yaml").read_text())
    assert recipe["technique"]["params"]["rank"] == 10
    assert recipe["trainer"]["id"] == "instant"
    deadline = time.monotonic() + 30
    state = ""
    while time.monotonic() < deadline:
        state = json.loads((runs[0] / "status.json").read_text()).get("state", "")
        if state in ("completed", "failed"):
            break
        time.sleep(0.2)
    assert state == "completed", (runs[0] / "log.txt").read_text()
    at.run()
    assert any(m.label == "accuracy" and m.value == "0.750" for m in at.metric)
    assert Path(runs[0] / "results.json").is_file()


def _state(run: Path) -> str:
    try:
        return json.loads((run / "status.json").read_text()).get("state", "")
    except (FileNotFoundError, json.JSONDecodeError):
        return ""


def test_cancel_stops_the_process_and_leaves_the_run_resumable(train_page, ui_env):
    at = train_page
    at.number_input(key="param:trainer:instant:pause").set_value(5.0).run()
    at.button(key="start").click().run()
    run = next(p for p in ui_env["runs"].iterdir() if (p / "recipe.yaml").is_file())
    deadline = time.monotonic() + 30
    while _state(run) != "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _state(run) == "running"
    at.run()
    at.button(key="train-run-cancel").click().run()
    assert not at.exception
    assert _state(run) == "interrupted"
    at.run()
    assert at.button(key="train-run-resume")
    assert any("Resume continues" in w.value for w in at.warning)


def test_any_model_shows_its_derived_facts_and_misfits(train_page, tmp_path):
    from sdk.testing import build_tiny_family

    folder = build_tiny_family(tmp_path / "gpt2", "gpt2")
    at = train_page
    at.selectbox(key="choice:model").set_value("hf").run()
    at.selectbox(key="choice:technique").set_value("lora").run()
    at.text_input(key="param:model:hf:name_or_path").input(str(folder)).run()
    assert not at.exception
    facts = dict(zip(at.table[0].value["fact"], at.table[0].value["value"], strict=True))
    assert facts["architecture"] == "gpt2" and facts["layer kinds"] == "conv1d"
    assert facts["default target modules"] == "c_attn"
    assert not at.error
    at.selectbox(key="choice:technique").set_value("loha").run()
    assert "loha: adapts linear layers; model hf (gpt2)'s layers are conv1d" in _errors(at)
    assert at.button(key="start").disabled
