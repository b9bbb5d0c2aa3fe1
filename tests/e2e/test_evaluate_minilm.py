"""`peftlab evaluate` on real weights and data: LoRA and IA3 runs of the shipped MiniLM on
rotten tomatoes, scored on rows neither saw, against a plain transformers + peft evaluation.

Slow (two trainings of 60 steps): `python -m pytest -m slow tests/e2e/test_evaluate_minilm.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.engine.test_evaluate import train_run

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "rotten_tomatoes"

pytestmark = pytest.mark.slow


def data_folder(root: Path) -> tuple[Path, Path]:
    """train.csv (1,600 rows) and validation.csv (200) for training; unseen.csv (400 other rows)."""
    import pandas as pd

    if not (DATA / "train.csv").is_file():
        pytest.skip(f"no rotten tomatoes CSVs in {DATA}")
    train = pd.read_csv(DATA / "train.csv").sample(n=1600, random_state=0)
    validation = pd.read_csv(DATA / "validation.csv").sample(frac=1.0, random_state=0)
    root.mkdir(parents=True, exist_ok=True)
    train.to_csv(root / "train.csv", index=False)
    validation.iloc[:200].to_csv(root / "validation.csv", index=False)
    validation.iloc[200:600].to_csv(root / "unseen.csv", index=False)
    return root, root / "unseen.csv"


def plain_accuracy(run_dir: Path, unseen: Path) -> float:
    """The adapter on the shipped MiniLM with plain transformers + peft (batches of 64)."""
    import pandas as pd
    import torch
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from sdk.scoring import shipped_minilm

    rows = pd.read_csv(unseen)
    info = json.loads((run_dir / "adapter" / "peftlab.json").read_text())
    base = AutoModelForSequenceClassification.from_pretrained(str(shipped_minilm()), num_labels=2)
    model = PeftModel.from_pretrained(base, str(run_dir / "adapter")).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(run_dir / "adapter"))
    predicted = []
    texts = [str(t) for t in rows["text"]]
    for start in range(0, len(texts), 64):
        batch = tokenizer(texts[start : start + 64], truncation=True,
                          max_length=info["max_length"], padding=True, return_tensors="pt")  # fmt: skip
        with torch.no_grad():
            predicted += model(**batch).logits.argmax(-1).tolist()
    return float((np.array(predicted) == rows["label"].to_numpy()).mean())


def test_lora_and_ia3_on_unseen_rotten_tomatoes_agree_with_plain_peft(tmp_path):
    from click.testing import CliRunner

    from kernel import Kernel, KernelConfig
    from ui.cli import cli

    folder, unseen = data_folder(tmp_path / "data")
    kernel = Kernel(KernelConfig(use_entry_points=False, use_env_path=False))
    kernel.discover()
    runs = {}
    for technique in ("lora", "ia3"):
        runs[technique] = train_run(kernel, tmp_path / "runs", None, folder, technique,
                                    {"max_steps": 60, "batch_size": 32, "learning_rate": 0.002},
                                    model=("minilm", {}))  # fmt: skip
    ids = [runs["lora"].id, runs["ia3"].id]
    out = CliRunner().invoke(cli, ["--runs-dir", str(tmp_path / "runs"), "evaluate", *ids,
                                   "--data", str(unseen), "--json"])  # fmt: skip
    assert out.exit_code == 0, out.output
    found = {e["run_id"]: e for e in json.loads(out.output)}
    for technique, run in runs.items():
        evaluation = found[run.id]
        assert evaluation["examples"] == 400
        accuracy = plain_accuracy(run.path, unseen)
        assert evaluation["metrics"]["accuracy"] == pytest.approx(accuracy, abs=1e-4), technique
        interval = evaluation["intervals"]["accuracy"]
        assert interval["low"] < accuracy < interval["high"] and 0 < interval["stderr"] < 0.03
        print(technique, evaluation["metrics"])
    # two different adapters: their probabilities (and so their calibration) differ
    assert found[runs["lora"].id]["metrics"]["ece"] != found[runs["ia3"].id]["metrics"]["ece"]
    # 60 steps of LoRA on MiniLM learn the task: 0.6 is four standard errors above chance
    assert found[runs["lora"].id]["metrics"]["accuracy"] > 0.6
