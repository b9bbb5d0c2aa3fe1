"""sdk.testing: check_bundle, the tiny fixtures, and how smoke_train picks and reports."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from kernel.manifest import Manifest
from sdk.testing import check_bundle, smoke_train, tiny_architecture_for
from tests.sdk.common import needs_engine
from tests.sdk.test_validate import CASES, GOOD_MODULE, write_bundle


def test_check_bundle_passes_a_good_bundle(tmp_path: Path) -> None:
    check_bundle(write_bundle(tmp_path / "good"))


def test_check_bundle_lists_every_problem(tmp_path: Path) -> None:
    several = next(c for c in CASES if c.name == "several problems at once")
    with pytest.raises(AssertionError) as caught:
        check_bundle(write_bundle(tmp_path / "bad", several))
    message = str(caught.value)
    assert message.startswith("4 problem(s) in bundle")
    for fragment in (
        "[version]",
        "[colour]",
        "[params.r]",
        "[requires.architectures]",
        "does not implement apply",
    ):
        assert fragment in message


def test_check_bundle_fails_on_warnings_only_when_strict(tmp_path: Path) -> None:
    warning_only = next(c for c in CASES if c.name == "unknown architecture")
    folder = write_bundle(tmp_path / "warn", warning_only)
    check_bundle(folder)
    with pytest.raises(AssertionError, match="'llama' is not provided"):
        check_bundle(folder, strict=True)


@pytest.mark.parametrize("tiny_model_dir", ["bert", "distilbert", "roberta"], indirect=True)
def test_tiny_models_are_small_real_checkpoints(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    config = yaml.safe_load((tiny_model_dir / "config.json").read_text())
    assert config.get("hidden_size", config.get("dim")) == 32
    assert config.get("num_hidden_layers", config.get("n_layers")) == 2
    assert (tiny_model_dir / "model.safetensors").is_file()
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_model_dir), num_labels=3)
    logits = model(**tokenizer(["a tiny test"], return_tensors="pt")).logits
    assert tuple(logits.shape) == (1, 3)
    assert sum(p.numel() for p in model.parameters()) < 1_500_000


def test_tiny_distilbert_fixture(tiny_distilbert_dir: Path) -> None:
    assert (
        yaml.safe_load((tiny_distilbert_dir / "config.json").read_text())["model_type"]
        == "distilbert"
    )


def test_tiny_dataset(tiny_dataset_dir: Path) -> None:
    for name in ("train.csv", "validation.csv"):
        with open(tiny_dataset_dir / name, newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert rows and set(rows[0]) == {"text", "label"}
        assert {r["label"] for r in rows} == {"0", "1"}


def manifest(**fields: object) -> Manifest:
    base = {"id": "x", "kind": "technique", "name": "X", "version": "1", "api": 1, "entry": "t:X"}
    return Manifest.model_validate({**base, **fields})


def test_smoke_runs_use_an_architecture_the_bundle_supports() -> None:
    assert tiny_architecture_for(manifest()) == "bert"
    assert (
        tiny_architecture_for(manifest(requires={"architectures": ["gpt2", "distilbert"]}))
        == "distilbert"
    )
    model = manifest(
        kind="model", model={"architecture": "roberta", "tasks": ["sequence-classification"]}
    )
    assert tiny_architecture_for(model) == "roberta"
    with pytest.raises(AssertionError, match="builds tiny bert, distilbert, roberta models only"):
        tiny_architecture_for(manifest(requires={"architectures": ["t5"]}))


@needs_engine
def test_a_failing_run_raises_with_its_traceback(
    tmp_path: Path, tiny_model_dir: Path, tiny_dataset_dir: Path
) -> None:
    folder = write_bundle(tmp_path / "boom")
    (folder / "technique.py").write_text(
        GOOD_MODULE.replace("return model", "raise RuntimeError('boom: the adapter would not fit')")
    )
    with pytest.raises(AssertionError) as caught:
        smoke_train(
            folder,
            model_dir=tiny_model_dir,
            dataset_dir=tiny_dataset_dir,
            runs_dir=tmp_path / "runs",
            in_process=False,  # the path `peftlab train` takes: a training subprocess
        )
    message = str(caught.value)
    assert "smoke run of technique 'echo' ended failed" in message
    assert "boom: the adapter would not fit" in message and "Traceback" in message
