"""Fixtures for the Streamlit app tests: a plugin folder of small test bundles in tmp_path.

The bundles need no torch: a technique whose params cover every param type, a
model and a dataset that only declare facts, and a trainer that "trains" in a
few milliseconds, writing metrics, progress and results like the real one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

APP = Path(__file__).resolve().parents[2] / "ui" / "app.py"

KITCHEN_SINK = {
    "id": "kitchen_sink",
    "kind": "technique",
    "name": "Kitchen sink",
    "version": "1.0.0",
    "api": 1,
    "entry": "technique:KitchenSink",
    "summary": "A test technique with one param of every type.",
    "requires": {"tasks": ["sequence-classification"]},
    "params": {
        "rank": {"type": "int", "default": 8, "min": 1, "max": 64, "help": "slider"},
        "steps": {"type": "int", "default": 0, "min": 0, "help": "number field"},
        "scale": {"type": "float", "default": 0.5, "min": 0.0, "max": 1.0},
        "rate": {"type": "float", "default": 0.0, "min": 0.0, "max": 1.0},
        "enabled": {"type": "bool", "default": True},
        "mode": {"type": "choice", "default": "a", "options": ["a", "b", "c"]},
        "flavour": {
            "type": "choice",
            "default": "one",
            "options": ["one", "two", "three", "four", "five", "six"],
        },
        "targets": {
            "type": "multiselect",
            "default": "auto",
            "options_from": "model.attention_modules",
        },
        "note": {"type": "str", "default": "hello", "label": "A note"},
        "data_file": {"type": "path", "default": ""},
        "secret_knob": {"type": "int", "default": 3, "min": 0, "max": 10, "advanced": True},
        "depth": {"type": "int", "default": 2, "min": 1, "max": 5, "depends_on": {"mode": "b"}},
    },
}

TOY_MODEL = {
    "id": "toy_model",
    "kind": "model",
    "name": "Toy model",
    "version": "1.0.0",
    "api": 1,
    "entry": "model:Toy",
    "model": {
        "architecture": "toy",
        "tasks": ["sequence-classification"],
        "layer_kinds": ["embedding"],  # nothing LoRA adapts: the built-ins' misfit
        "attention_modules": ["q", "k", "v"],
        "default_target_modules": ["q", "v"],
    },
    "params": {"name_or_path": {"type": "str", "default": ""}},
}

TOY_DATA = {
    "id": "toy_data",
    "kind": "dataset",
    "name": "Toy data",
    "version": "1.0.0",
    "api": 1,
    "entry": "dataset:ToyData",
    "dataset": {"task": "sequence-classification", "label_names": ["neg", "pos"]},
    "params": {"rows": {"type": "int", "default": 10, "min": 1, "max": 100}},
}

INSTANT = {
    "id": "instant",
    "kind": "trainer",
    "name": "Instant trainer",
    "version": "1.0.0",
    "api": 1,
    "entry": "trainer:Instant",
    "requires": {"tasks": ["sequence-classification"]},
    "params": {
        "steps": {"type": "int", "default": 4, "min": 1, "max": 50},
        "pause": {
            "type": "float",
            "default": 0.0,
            "min": 0.0,
            "max": 10.0,
            "help": "seconds per step",
        },
        "learning_rate": {
            "type": "float",
            "default": 0.0,
            "min": 0.0,
            "max": 1.0,
            "help": "0 picks the technique's recommended rate",
        },
    },
}

MODULES = {
    "technique": "from sdk import Technique\n\n\nclass KitchenSink(Technique):\n"
    "    default_learning_rate = 0.25\n\n"
    "    def apply(self, model, ctx):\n        return model\n",
    "model": "from sdk import ModelProvider\n\n\nclass Toy(ModelProvider):\n    pass\n",
    "dataset": "from sdk import DatasetProvider\n\n\nclass ToyData(DatasetProvider):\n    pass\n",
    "trainer": """import time

from sdk import TrainerPlugin


class Instant(TrainerPlugin):
    def run(self, ctx):
        steps = ctx.trainer.params["steps"]
        for step in range(1, steps + 1):
            time.sleep(ctx.trainer.params.get("pause", 0.0))
            ctx.reporter.log_metrics({"step": step, "epoch": step / steps, "loss": 1.0 / step})
            ctx.reporter.set_progress(phase="training", step=step, total_steps=steps,
                                      epoch=step / steps, eta_s=0, elapsed_s=0.01 * step)
        ctx.reporter.log_metrics({"step": steps, "epoch": 1.0, "eval_loss": 0.5,
                                  "eval_accuracy": 0.75})
        ctx.reporter.set_progress(phase="done", step=steps, total_steps=steps, epoch=1.0,
                                  eta_s=0, elapsed_s=0.05)
        rank = ctx.technique.params.get("rank", 1)
        return {"accuracy": 0.75, "f1_macro": 0.7, "trainable_percent": 0.1 * rank,
                "train_runtime_s": 0.05, "peak_memory_mb": 12.0, "technique": ctx.technique.id,
                "model": ctx.model.id, "dataset": ctx.dataset.id}
""",
}

ENTRY_FILES = {
    "technique": "technique.py",
    "model": "model.py",
    "dataset": "dataset.py",
    "trainer": "trainer.py",
}


def write_bundle(root: Path, manifest: dict) -> Path:
    kind = manifest["kind"]
    folder = root / f"{kind}s" / manifest["id"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "plugin.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    (folder / ENTRY_FILES[kind]).write_text(MODULES[kind], encoding="utf-8")
    return folder


@pytest.fixture
def ui_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A plugin folder with the test bundles, and home, runs and cache folders in tmp_path."""
    plugins = tmp_path / "plugins"
    for manifest in (KITCHEN_SINK, TOY_MODEL, TOY_DATA, INSTANT):
        write_bundle(plugins, manifest)
    home, runs = tmp_path / "home", tmp_path / "runs"
    monkeypatch.setenv("PEFTLAB_PLUGIN_PATH", str(plugins))
    monkeypatch.setenv("PEFTLAB_HOME", str(home))
    monkeypatch.setenv("PEFTLAB_RUNS_DIR", str(runs))
    monkeypatch.setenv("PEFTLAB_NO_ENTRY_POINTS", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return {"plugins": plugins, "home": home, "runs": runs, "tmp": tmp_path}


@pytest.fixture
def app(ui_env: dict[str, Path]):
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(APP), default_timeout=60)


TEST_CHOICES = {
    "dataset": "toy_data",
    "model": "toy_model",
    "technique": "kitchen_sink",
    "trainer": "instant",
}


def _choose(at, **ids: str):
    for kind, bundle_id in ids.items():
        at.selectbox(key=f"choice:{kind}").set_value(bundle_id).run()
    return at


@pytest.fixture
def train_page(app):
    """The Train page with the test bundles chosen."""
    app.run()
    assert not app.exception, app.exception
    return _choose(app, **TEST_CHOICES)


@pytest.fixture
def choose():
    """choose(at, kind=id, ...): pick plugins on the Train page, one rerun per choice."""
    return _choose
