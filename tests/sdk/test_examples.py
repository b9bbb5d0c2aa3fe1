"""The examples: a technique shipped as a pip package, and a plain folder bundle.

The package test is the kernel's criterion "a tiny package under examples/ that
registers a technique through a stevedore entry point shows up after pip
install": it really pip-installs the example (offline, into a temporary
target) and runs `peftlab` in a fresh process with that target on PYTHONPATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sdk.testing import smoke_train
from sdk.validate import validate_bundle
from tests.sdk.common import EXAMPLES, listed, needs_engine, peftlab

BITFIT_SRC = EXAMPLES / "peftlab-bitfit"
BITFIT_BUNDLE = BITFIT_SRC / "peftlab_bitfit" / "bundle"
FOLDER_BUNDLE = EXAMPLES / "folder-bundle"


@pytest.fixture(scope="module")
def installed_bitfit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip install --target` of a copy of the example (the copy keeps build files out of the repo)."""
    root = tmp_path_factory.mktemp("bitfit-install")
    source = shutil.copytree(
        BITFIT_SRC,
        root / "src",
        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"),
    )
    site = root / "site"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "--quiet",
            "--target",
            str(site),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return site


def with_site(env: dict[str, str], site: Path) -> dict[str, str]:
    return {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))}


def test_pip_installed_package_shows_up_through_its_entry_point(
    installed_bitfit: Path, clean_env: dict[str, str]
) -> None:
    entry_points = next(installed_bitfit.glob("*.dist-info")) / "entry_points.txt"
    assert "[peftlab.techniques]" in entry_points.read_text()
    before = listed(peftlab("plugins", "list", "--json", env=clean_env))
    assert ("technique", "bitfit") not in before

    rows = listed(peftlab("plugins", "list", "--json", env=with_site(clean_env, installed_bitfit)))
    row = rows[("technique", "bitfit")]
    assert row["status"] == "ok", row
    assert row["origin"].replace("-", "_") == "package:peftlab_bitfit"
    assert Path(row["path"]) == installed_bitfit / "peftlab_bitfit" / "bundle"
    # what the package shipped is a whole bundle: manifest and module
    assert validate_bundle(Path(row["path"])) == []

    shown = peftlab("plugins", "show", "bitfit", env=with_site(clean_env, installed_bitfit))
    assert shown.returncode == 0, shown.stderr
    assert "BitFit" in shown.stdout and "package:" in shown.stdout


def test_ignoring_entry_points_hides_the_package(
    installed_bitfit: Path, clean_env: dict[str, str]
) -> None:
    env = with_site(clean_env, installed_bitfit)
    rows = listed(peftlab("--no-entry-points", "plugins", "list", "--json", env=env))
    assert ("technique", "bitfit") not in rows


def test_folder_bundle_loads_with_plugins_dir(clean_env: dict[str, str]) -> None:
    assert validate_bundle(FOLDER_BUNDLE) == []
    rows = listed(
        peftlab("--plugins-dir", str(FOLDER_BUNDLE), "plugins", "list", "--json", env=clean_env)
    )
    row = rows[("dataset", "support_tickets")]
    assert row["status"] == "ok" and row["origin"] == "path"
    assert ("dataset", "support_tickets") not in listed(
        peftlab("plugins", "list", "--json", env=clean_env)
    )


def test_bitfit_trains_biases_and_head_only(tiny_model_dir: Path, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification

    from kernel.discovery import BundleLocation
    from kernel.registry import read_bundle
    from sdk import ModelFacts, TechniqueContext

    technique = read_bundle(BundleLocation(BITFIT_BUNDLE, "path", 0)).instantiate()
    facts = ModelFacts(
        architecture="bert",
        tasks=["sequence-classification"],
        attention_modules=["query", "key", "value", "attention.output.dense"],
        classifier_modules=["classifier"],
    )

    def context(**params: object) -> TechniqueContext:
        values = {"biases": "all", "train_head": True, "train_layer_norm": False, **params}
        return TechniqueContext(
            params=values, bundle_dir=BITFIT_BUNDLE, facts=facts, task="sequence-classification"
        )

    def fresh() -> torch.nn.Module:
        torch.manual_seed(0)
        return AutoModelForSequenceClassification.from_pretrained(str(tiny_model_dir), num_labels=2)

    model = technique.apply(fresh(), context())
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trained and all(n.endswith(".bias") or n.startswith("classifier.") for n in trained)
    assert (
        "classifier.weight" in trained and "bert.encoder.layer.0.intermediate.dense.bias" in trained
    )

    attention = technique.apply(fresh(), context(biases="attention", train_head=False))
    trained = {n for n, p in attention.named_parameters() if p.requires_grad}
    assert "bert.encoder.layer.0.attention.self.query.bias" in trained
    assert "bert.encoder.layer.0.attention.output.dense.bias" in trained
    assert "bert.encoder.layer.0.intermediate.dense.bias" not in trained
    assert not any(n.startswith("classifier.") for n in trained)

    # save writes only the trained tensors; load restores them onto a fresh base model
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(0.5)
    technique.save(model, tmp_path / "adapter", context())
    assert sorted(p.name for p in (tmp_path / "adapter").iterdir()) == [
        "bitfit.json",
        "bitfit.safetensors",
    ]
    restored = technique.load(fresh(), tmp_path / "adapter", context())
    inputs = {"input_ids": torch.tensor([[101, 2023, 2003, 102]])}
    model.eval(), restored.eval()
    with torch.no_grad():
        assert torch.allclose(model(**inputs).logits, restored(**inputs).logits)


@needs_engine
@pytest.mark.parametrize(
    "bundle", [BITFIT_BUNDLE, FOLDER_BUNDLE], ids=["bitfit", "support_tickets"]
)
def test_examples_train_one_step(
    bundle: Path, tiny_model_dir: Path, tiny_dataset_dir: Path, tmp_path: Path
) -> None:
    result = smoke_train(
        bundle, model_dir=tiny_model_dir, dataset_dir=tiny_dataset_dir, runs_dir=tmp_path
    )
    assert result.status["state"] == "completed"
    assert result.results["global_step"] == 1
    if bundle == BITFIT_BUNDLE:
        assert (result.adapter_dir / "bitfit.safetensors").is_file()
        assert 0 < result.results["trainable_params"] < result.results["total_params"] / 100
    else:
        assert result.results["label_names"] == ["billing", "technical", "account"]
