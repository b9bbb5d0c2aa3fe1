"""ui.forms' decisions from a spec alone (no Streamlit run needed), the chart builders,
and the `peftlab ui` command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from kernel.manifest import Manifest, ParamSpec
from ui import charts, forms
from ui.commands.app import app_environment, streamlit_command
from ui.context import CliState


def spec(**fields) -> ParamSpec:
    return ParamSpec(**fields)


@pytest.mark.parametrize(
    ("fields", "slider"),
    [
        ({"type": "int", "default": 8, "min": 1, "max": 256}, True),
        ({"type": "int", "default": 64, "min": 1, "max": 4096}, False),  # too wide for a slider
        ({"type": "int", "default": 0, "min": 0}, False),  # no max
        ({"type": "float", "default": 0.1, "min": 0.0, "max": 0.9}, True),
        ({"type": "float", "default": 0.0, "min": 0.0, "max": 1.0}, False),  # default on a bound
        ({"type": "float", "default": 1.0, "min": 0.01, "max": 100}, False),  # off the slider grid
        ({"type": "int", "default": 16, "min": 1, "max": 1024}, False),  # LoRA alpha: typed
    ],
)
def test_bounded_numbers_get_a_slider_when_it_can_hold_their_values(fields, slider):
    assert forms.uses_slider(spec(**fields)) is slider


def test_a_share_slider_moves_in_hundredths():
    fraction = spec(type="float", default=0.1, min=0.01, max=0.5)
    assert forms.float_step(fraction) == 0.01 and forms.uses_slider(fraction)
    assert forms.float_step(spec(type="float", default=0.5, min=0.0, max=1.0)) == 0.01


def test_numbers_are_cast_to_their_type_and_clamped():
    int_spec = spec(type="int", default=8, min=1.5, max=16.9)
    assert forms.number_bounds(int_spec) == (2, 16)
    assert forms.clamp_number(int_spec, 100) == 16 and isinstance(
        forms.clamp_number(int_spec, 3.0), int
    )
    float_spec = spec(type="float", default=0.5, min=0, max=1)
    assert forms.number_bounds(float_spec) == (0.0, 1.0)
    assert forms.clamp_number(float_spec, 2) == 1.0 and isinstance(
        forms.clamp_number(float_spec, 0), float
    )
    assert forms.clamp_number(float_spec, "junk") == 0.5


def test_multiselect_offers_auto_model_options_and_typed_entries():
    model = Manifest.model_validate(
        {
            "id": "m",
            "kind": "model",
            "name": "M",
            "version": "1",
            "api": 1,
            "entry": "model:M",
            "model": {
                "architecture": "bert",
                "tasks": ["sequence-classification"],
                "attention_modules": ["q", "v"],
            },
        }
    )
    targets = spec(type="multiselect", default="auto", options_from="model.attention_modules")
    assert forms.widget_options(targets, model, ["auto"]) == ["auto", "q", "v"]
    assert forms.widget_options(targets, model, ["q", "custom"]) == ["auto", "q", "v", "custom"]
    assert forms.normalise(targets, "auto", ["auto", "q"]) == ["auto"]
    assert forms.normalise(targets, "q, v", ["auto", "q", "v"]) == ["q", "v"]


def test_choice_values_that_vanished_fall_back_to_the_default():
    choice = spec(type="choice", default="b", options=["a", "b"])
    assert forms.normalise(choice, "zzz", ["a", "b"]) == "b"
    assert forms.normalise(choice, "a", ["a", "b"]) == "a"


def test_depends_on_compares_plain_values():
    depth = spec(type="int", default=2, depends_on={"mode": "b", "targets": "auto"})
    assert forms.is_active(depth, {"mode": "b", "targets": ["auto"]})
    assert not forms.is_active(depth, {"mode": "a", "targets": ["auto"]})


def test_charts_render_from_plain_rows():
    rows = [
        {
            "run": "r1",
            "technique": "lora",
            "accuracy": 0.8,
            "trainable_percent": 0.5,
            "train_runtime_s": 10.0,
            "peak_memory_mb": 100.0,
        },
        {"run": "r2", "technique": "full", "accuracy": None, "trainable_percent": None},
    ]
    assert len(charts.accuracy_vs_trainable(rows).data) == 1
    assert len(charts.bar(rows, "train_runtime_s", "time", "s").data[0].x) == 1
    curves = charts.loss_curves(
        {"r1": [{"step": 1, "loss": 1.0}, {"step": 1, "eval_loss": 0.9}]}, log_y=True
    )
    assert len(curves.data) == 2 and curves.layout.yaxis.type == "log"
    graph = {
        "nodes": [
            {"kind": "technique", "id": "t", "missing": ["needs x"]},
            {"kind": "model", "id": "m"},
        ],
        "edges": [{"source": "technique/t", "target": "model/m", "ok": False, "reasons": ["why"]}],
    }
    network = charts.capability_network(graph)
    assert "not model/m: why" in network.data[1].hovertext[0]


def test_ui_command_runs_streamlit_locally_and_keeps_plugin_folders_out_of_its_watcher(tmp_path):
    state = CliState(
        plugin_dirs=[tmp_path / "mine"], use_entry_points=False, runs_dir=tmp_path / "runs"
    )
    command = streamlit_command(state, "127.0.0.1", 8600)
    assert command[1:4] == ["-m", "streamlit", "run"] and Path(command[4]).name == "app.py"
    flags = dict(zip(command[5::2], command[6::2], strict=False))
    assert flags["--server.address"] == "127.0.0.1" and flags["--server.port"] == "8600"
    assert flags["--server.headless"] == "true"
    blacklisted = [
        command[i + 1] for i, part in enumerate(command) if part == "--server.folderWatchBlacklist"
    ]
    assert str((tmp_path / "mine").resolve()) in blacklisted
    assert any(entry.endswith("plugins") for entry in blacklisted)
    env = app_environment(state)
    assert env["PEFTLAB_UI_PLUGIN_DIRS"] == str((tmp_path / "mine").resolve())
    assert env["PEFTLAB_RUNS_DIR"] == str((tmp_path / "runs").resolve())
    assert env["PEFTLAB_NO_ENTRY_POINTS"] == "1"


def test_ui_command_is_registered():
    from ui.cli import cli

    result = CliRunner().invoke(cli, ["ui", "--help"])
    assert result.exit_code == 0
    assert "--port" in result.output and "--host" in result.output


def test_a_single_logged_loss_is_visible_and_series_have_their_own_colours():
    curves = charts.loss_curves({"r1": [{"step": 2, "loss": 0.7}, {"step": 2, "eval_loss": 0.6}]})
    train, validation = curves.data
    assert "markers" in train.mode and "markers" in validation.mode
    assert train.line.color != validation.line.color
    assert validation.line.dash == "dash" and train.marker.symbol != validation.marker.symbol


def test_run_logs_lose_colour_codes_and_the_kernels_warning():
    from ui.views._run_view import clean_log

    raw = (
        "Failed to load CPU gemm_4bit_forward from kernels-community: No module named 'kernels'\n"
        "\x1b[32mINFO\x1b[0m step 1\n"
        "progress 10%\rprogress 100%\n"
    )
    assert clean_log(raw) == "INFO step 1\nprogress 100%"
