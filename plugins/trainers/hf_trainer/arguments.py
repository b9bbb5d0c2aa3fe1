"""The transformers `TrainingArguments` of a run, from the trainer's params, and its step count."""

from __future__ import annotations

import math
import os
from typing import Any

from sdk import RunContext
from sdk.tracking import tracking_arguments


def learning_rate(ctx: RunContext) -> float:
    """The recipe's learning rate; 0 (the default) picks the technique's recommended rate."""
    chosen = float(ctx.trainer.params.get("learning_rate") or 0)
    return chosen or float(type(ctx.technique.instance).default_learning_rate)


def planned_steps(num_examples: int, args: Any) -> int:
    """Optimizer steps the Trainer will take, computed the way transformers does."""
    if args.max_steps > 0:
        return int(args.max_steps)
    batches = math.ceil(num_examples / (args.train_batch_size * max(1, args.world_size)))
    per_epoch = max(math.ceil(batches / args.gradient_accumulation_steps), 1)
    return math.ceil(args.num_train_epochs * per_epoch)


def training_arguments(ctx: RunContext, rate: float, seed: int) -> Any:
    """TrainingArguments for the run: schedule, batches, evaluation and checkpoints, devices."""
    import torch
    from transformers import TrainingArguments

    p = ctx.trainer.params
    precision = mixed_precision(str(p.get("mixed_precision", "no")))
    if precision == "fp16" and not torch.cuda.is_available():
        raise ValueError("trainer.mixed_precision=fp16 needs a CUDA GPU; use 'no' (or bf16) on CPU")
    compiling = bool(p.get("torch_compile", False))
    if compiling:
        # length-grouped batches change shape every step: compile for dynamic shapes once
        # instead of recompiling per new length (accelerate reads this when it compiles)
        os.environ.setdefault("ACCELERATE_DYNAMO_USE_DYNAMIC", "1")
    eval_steps = int(p.get("eval_steps") or 0)
    save_steps = int(p.get("save_steps") or 0)
    max_steps = int(p.get("max_steps") or 0)
    return TrainingArguments(
        output_dir=str(ctx.checkpoints_dir),
        num_train_epochs=float(p.get("epochs", 1.0)),
        max_steps=max_steps if max_steps > 0 else -1,
        learning_rate=rate,
        per_device_train_batch_size=int(p.get("batch_size", 32)),
        per_device_eval_batch_size=int(p.get("eval_batch_size", 64)),
        gradient_accumulation_steps=int(p.get("gradient_accumulation_steps", 1)),
        weight_decay=float(p.get("weight_decay", 0.0)),
        warmup_steps=float(p.get("warmup_ratio", 0.0)),  # a value below 1 is a share of the steps
        seed=seed,
        logging_steps=int(p.get("logging_steps", 10)),
        eval_strategy="steps" if eval_steps else "epoch",
        eval_steps=eval_steps or None,
        save_strategy="steps" if save_steps else "epoch",
        save_steps=save_steps or 500,
        save_total_limit=2,
        train_sampling_strategy="group_by_length" if p.get("group_by_length", True) else "random",
        length_column_name="length",
        include_num_input_tokens_seen="non_padding",
        # classification heads return a per-batch mean and ignore num_items_in_batch; averaging
        # "tokens across devices" would multiply that mean by the number of processes
        average_tokens_across_devices=ctx.dataset_section.get("task", "sequence-classification")
        != "sequence-classification",
        label_names=["labels"],
        **checkpointing_arguments(bool(p.get("gradient_checkpointing", False))),
        fp16=precision == "fp16",
        bf16=precision == "bf16",
        torch_compile=compiling,
        **tracking_arguments(p, ctx.run_dir),
        disable_tqdm=True,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        # without this, accelerate sees no device under torchrun on a CPU-only machine and
        # every process trains alone; with it, the processes form one gloo group (DDP)
        use_cpu=not torch.accelerator.is_available(),
    )


def mixed_precision(asked: str) -> str:
    """The precision a run trains in: `auto` is bf16 autocast on a CPU-only machine whose CPU
    computes bf16 natively (AVX512-BF16 or AMX: measured 0.70x the step time at equal
    accuracy, docs/benchmarks.md), full precision ("no") everywhere else."""
    if asked != "auto":
        return asked
    import torch

    if torch.accelerator.is_available():
        return "no"
    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return "bf16" if native else "no"


def apply_thread_count(params: dict[str, Any]) -> None:
    """`cpu_threads`: how many threads torch's CPU kernels use in this process (0 keeps torch's)."""
    threads = int(params.get("cpu_threads") or 0)
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


def checkpointing_arguments(enabled: bool) -> dict[str, Any]:
    """TrainingArguments for activation (gradient) checkpointing, under the name this
    transformers uses (5.x renamed `gradient_checkpointing` to `activation_checkpointing`)."""
    import dataclasses

    from transformers import TrainingArguments

    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    prefix = "activation" if "activation_checkpointing" in names else "gradient"
    # reentrant checkpointing: on the CPU it peaked lower than the non-reentrant kind (LoRA on a
    # BERT-base-sized model, batch 32 x 64: 1.60 vs 1.96 GiB); transformers makes the embeddings'
    # output require grad, so the gradient reaches adapters under frozen embeddings
    return {
        f"{prefix}_checkpointing": enabled,
        f"{prefix}_checkpointing_kwargs": {"use_reentrant": True} if enabled else None,
    }
