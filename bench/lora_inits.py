"""What each LoRA initialisation costs before training starts, on MiniLM.

Times the lora bundle's `apply` (peft's get_peft_model plus the initialisation's own
work: an SVD of each weight for PiSSA, a QR for OLoRA, forward passes over the
calibration examples for EVA and CorDA) on a freshly loaded all-MiniLM-L6-v2 with a
2-class head. The calibration examples are what hf_trainer offers: `--examples`
seeded rotten tomatoes training sentences, padded per batch of 32, max length 64.
Initialisations alternate within each of `--rounds` rounds, so a change in the
machine's load hits them all alike; the median is reported.

    python bench/lora_inits.py [--rounds 3] [--examples 256] [--inits default eva corda]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quiet  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "datasets" / "rotten_tomatoes"
INITS = ["default", "gaussian", "pissa", "olora", "eva", "corda"]
BATCH, MAX_LENGTH, SEED = 32, 64, 42


def calibration_batches(tokenizer: Any, examples: int) -> list[dict[str, Any]]:
    import pandas as pd
    import torch

    rows = pd.read_csv(DATA / "train.csv").sample(n=examples, random_state=SEED)
    texts, labels = list(rows["text"]), list(rows["label"])
    batches = []
    for start in range(0, examples, BATCH):
        encoded = tokenizer(texts[start : start + BATCH], truncation=True,
                            max_length=MAX_LENGTH, padding=True, return_tensors="pt")  # fmt: skip
        batches.append({**encoded, "labels": torch.tensor(labels[start : start + BATCH])})
    return batches


def time_apply(init: str, batches: list[dict[str, Any]]) -> float:
    """Seconds the lora bundle's apply takes with this initialisation on a fresh MiniLM."""
    import yaml
    from transformers import AutoModelForSequenceClassification

    from kernel.discovery import BundleLocation
    from kernel.params import complete_params
    from kernel.registry import read_bundle
    from sdk import ModelFacts, TechniqueContext
    from sdk.scoring import shipped_minilm

    bundle = read_bundle(BundleLocation(REPO / "plugins" / "techniques" / "lora", "builtin", 0))
    manifest = yaml.safe_load((REPO / "plugins/models/minilm/plugin.yaml").read_text())
    ctx = TechniqueContext(
        params=complete_params(bundle.manifest, {"init_lora_weights": init}),
        bundle_dir=REPO / "plugins" / "techniques" / "lora",
        facts=ModelFacts.from_manifest_section(manifest["model"]),
        task="sequence-classification",
        calibration=lambda: batches,
    )
    base = AutoModelForSequenceClassification.from_pretrained(
        str(shipped_minilm()), num_labels=2, use_safetensors=True
    )
    started = time.perf_counter()
    bundle.instantiate().apply(base, ctx)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--examples", type=int, default=256)
    parser.add_argument("--inits", nargs="+", default=INITS, choices=INITS)
    args = parser.parse_args()
    from transformers import AutoTokenizer

    from sdk.scoring import shipped_minilm

    batches = calibration_batches(
        AutoTokenizer.from_pretrained(str(shipped_minilm())), args.examples
    )
    time_apply("default", batches)  # warm-up: the first load reads the files from disk
    seconds: dict[str, list[float]] = {init: [] for init in args.inits}
    loads = []
    for _ in range(args.rounds):
        for init in args.inits:
            with quiet.OtherLoad() as load:
                seconds[init].append(time_apply(init, batches))
            loads.append(load.record())
    medians = {init: statistics.median(values) for init, values in seconds.items()}
    for init, median in medians.items():
        print(f"{init:10s} apply {median:6.2f} s (median of {args.rounds}: "
              + ", ".join(f"{s:.2f}" for s in seconds[init]) + ")")  # fmt: skip
    print(f"other load: {max(r['others_cpu_share'] for r in loads):.0%} of the CPU at most")
    record = {"examples": args.examples, "rounds": args.rounds, "seconds": seconds,
              "median_s": medians, "other_load": loads, "machine": quiet.machine_dict()}  # fmt: skip
    print(f"wrote {quiet.write_results('lora_inits', record)}")


if __name__ == "__main__":
    main()
