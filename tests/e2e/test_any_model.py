"""`peftlab train --model hf --set model.name_or_path=FOLDER` for any transformers family.

The generic `hf` bundle derives the model's facts from its config; a technique
that does not fit them is refused before a run folder exists, with the reason.
Training runs (each family, classification and causal LM, LoRA and QLoRA) are slow.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sdk.testing import build_tiny_family
from tests.e2e.test_train_cli import peftlab

FAST = ["--set", "trainer.max_steps=1", "--set", "trainer.measure_baseline=false",
        "--set", "trainer.batch_size=4", "--set", "dataset.train_samples=8",
        "--set", "dataset.eval_samples=8"]  # fmt: skip
DATASETS = {"sequence-classification": "demo", "causal-lm": "instructions", "seq2seq": "summaries"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    built: dict[str, Path] = {}

    def make(family: str) -> Path:
        if family not in built:
            built[family] = build_tiny_family(tmp_path_factory.mktemp(family), family)
        return built[family]

    return make


def test_a_misfit_is_refused_before_a_run_folder(tiny, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    model = f"model.name_or_path={tiny('gpt2')}"
    out = peftlab(runs, "train", "--model", "hf", "--set", model, "--technique", "loha",
                  "--dataset", "instructions")  # fmt: skip
    assert out.returncode != 0
    assert "loha: adapts linear layers; model hf (gpt2)'s layers are conv1d" in out.stderr
    assert "Traceback" not in out.stderr
    assert not runs.exists() or not any(runs.iterdir())


def test_a_folder_without_a_model_is_one_line(tmp_path: Path) -> None:
    out = peftlab(tmp_path / "runs", "train", "--model", "hf", "--set",
                  f"model.name_or_path={tmp_path}", "--technique", "lora")  # fmt: skip
    assert out.returncode != 0
    assert "[model.name_or_path]" in out.stderr and "has no config.json" in out.stderr
    assert "Traceback" not in out.stderr


CASES = [(f, "causal-lm", "lora") for f in ("llama", "mistral", "qwen2", "phi", "gemma")]
CASES += [(f, "sequence-classification", "lora")
          for f in ("deberta-v2", "electra", "xlm-roberta", "albert", "llama")]  # fmt: skip
CASES += [(f, "seq2seq", "lora") for f in ("bart", "mt5")]
CASES += [("qwen2", "causal-lm", "qlora"), ("llama", "sequence-classification", "qlora"),
          ("electra", "sequence-classification", "qlora")]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(("family", "task", "technique"), CASES)
def test_trains_any_family(tiny, tmp_path: Path, family: str, task: str, technique: str) -> None:
    runs = tmp_path / "runs"
    out = peftlab(runs, "train", "--model", "hf", "--set", f"model.name_or_path={tiny(family)}",
                  "--technique", technique, "--dataset", DATASETS[task], *FAST)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    (run,) = list(runs.iterdir())
    assert (run / "adapter" / "adapter_config.json").is_file()
    assert (run / "results.json").is_file()
