"""The training engine: a recipe's plugins -> transformers Trainer -> a finished run.

Loads the dataset, the base model (as the technique wants it loaded) and applies
the technique; tokenizes once; measures the untrained model; trains with
checkpoints for resume; evaluates; saves the technique's weights, the tokenizer
and `peftlab.json` (what `predict` needs to rebuild the model). Under torchrun
every rank runs this; only rank 0 writes files.
"""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from sdk import (
    DatasetContext,
    DatasetSplits,
    RunContext,
    TrainerPlugin,
    count_parameters,
)

DEFAULT_MAX_LENGTH = 128
INFO_FILE = "peftlab.json"


def _interruptible() -> None:
    """SIGINT stops training with KeyboardInterrupt (recorded by the runner; the run stays resumable),
    even when the process inherited an ignored SIGINT from a background launcher."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _quiet_libraries() -> None:
    """The CLI draws its own progress bar: no tqdm bars in the training process's log."""
    import datasets
    import transformers

    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()


class HFTrainer(TrainerPlugin):
    def run(self, ctx: RunContext) -> dict[str, Any]:
        import torch
        import transformers
        from transformers import DataCollatorWithPadding, IntervalStrategy, Trainer

        from . import distributed, measures
        from .progress import RunProgress

        started = time.time()
        _interruptible()
        _quiet_libraries()
        p = ctx.trainer.params
        progress = RunProgress(ctx.reporter, started)
        progress.report("loading")
        seed = int(p.get("seed", 42))
        transformers.set_seed(seed)

        # data first: the number of labels decides the model's head
        section = ctx.dataset_section
        task = section.get("task", "sequence-classification")
        if task != "sequence-classification":  # causal-lm, seq2seq: text pairs, ROUGE
            from .generation import run_generation

            return run_generation(ctx, progress, started)
        splits: DatasetSplits = ctx.dataset.instance.load(
            DatasetContext(
                params=dict(ctx.dataset.params),
                bundle_dir=Path(ctx.dataset.bundle_dir),
                task=task,
                label_names=list(section.get("label_names") or []),
                text_fields=list(section.get("text_fields") or ["text"]),
                label_field=section.get("label_field", "label"),
                seed=seed,
            )
        )
        for note in splits.notes:
            print(f"data: {note}", flush=True)
        label_names = list(splits.label_names) or list(section.get("label_names") or [])
        if not label_names:
            label_names = [str(i) for i in sorted(set(splits.train["label"]))]

        from sdk.hf import footprint_bytes, load_base_model

        loaded, tctx = load_base_model(ctx.model, ctx.technique, task, label_names)
        tokenizer = loaded.tokenizer
        max_length = splits.max_length or DEFAULT_MAX_LENGTH
        learning_rate = float(p.get("learning_rate") or 0) or float(
            type(ctx.technique.instance).default_learning_rate
        )
        args = _training_arguments(ctx, p, learning_rate, seed)
        # techniques that schedule over the run (AdaLoRA) need its length before apply
        tctx = replace(tctx, total_steps=planned_steps(len(splits.train), args))
        technique = ctx.technique.instance
        model = technique.apply(loaded.model, tctx)
        trainable, total = count_parameters(model)

        train_set = _tokenize(splits.train, tokenizer, max_length)
        # the order of evaluation does not change its scores: longest first, so that each
        # batch pads little (the evaluation sampler keeps the order; training batches are
        # grouped by length by the Trainer's sampler)
        eval_set = _tokenize(splits.validation, tokenizer, max_length)
        eval_set = eval_set.sort("length", reverse=True).flatten_indices()
        collator = DataCollatorWithPadding(tokenizer)
        if args.world_size > 1:
            args.ddp_find_unused_parameters = _find_unused(p, model, train_set, collator)
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=train_set,
            eval_dataset=eval_set,
            processing_class=tokenizer,
            data_collator=collator,
            compute_metrics=measures.classification_metrics,
            preprocess_logits_for_metrics=measures.logits_to_classes,
            callbacks=[progress, *technique.training_callbacks(model, tctx)],
        )

        measure_baseline = bool(p.get("measure_baseline", True))
        if getattr(model, "is_loaded_in_4bit", False) and args.device.type == "cpu":
            # bitsandbytes repacks 4-bit weights for its CPU inference kernel on the first
            # no-grad forward, after which a training step fails ("a view of a leaf Variable
            # ... in-place operation"): on the CPU a 4-bit model is evaluated only at the end
            print(
                "evaluation: only after training (a 4-bit model on the CPU cannot train after evaluating)"
            )
            measure_baseline = False
            trainer.args.eval_strategy = IntervalStrategy.NO
        baseline: dict[str, float] = {}
        if measure_baseline:
            progress.report("baseline")
            baseline = trainer.evaluate(metric_key_prefix="baseline")
            if args.world_size > 1:
                distributed.rewrap_after_evaluation(trainer)

        resume = str(ctx.resume_from) if ctx.resume_from else None
        train_result = trainer.train(resume_from_checkpoint=resume)
        state = trainer.state

        final = _last_eval(state.log_history, state.global_step)
        if final is None:
            progress.report("evaluating", state)
            final = trainer.evaluate()

        progress.report("saving", state)
        adapter_bytes = 0
        trained = trainer.model
        if trainer.is_fsdp_enabled:  # every rank holds a shard: gather the weights first

            def fresh_copy() -> Any:
                base, _ = load_base_model(ctx.model, ctx.technique, task, label_names)
                return technique.apply(base.model, tctx)

            trained = distributed.gathered_model(trainer, fresh_copy)
        if trainer.is_world_process_zero():
            adapter_bytes = _save(ctx, trained, tokenizer, tctx, label_names, max_length)

        peak_mb, peak_kind = measures.peak_memory()
        # every rank holds its own copy of the model: the largest process is what a machine must fit
        peak_mb = distributed.max_across_ranks(peak_mb)
        rank, world = distributed.world()
        if world > 1:  # one line per process in the log: every rank took part
            print(f"rank {rank} of {world}: trained {state.global_step} steps", flush=True)
        metrics = train_result.metrics
        runtime = float(metrics.get("train_runtime") or (time.time() - started))
        tokens = metrics.get("train_tokens_per_second")
        if tokens is None and runtime > 0:
            tokens = (state.num_input_tokens_seen - progress.first_tokens) / runtime
        results = {
            "accuracy": final.get("eval_accuracy"),
            "f1_macro": final.get("eval_f1_macro"),
            "eval_loss": final.get("eval_loss"),
            "train_loss": metrics.get("train_loss"),
            "baseline_accuracy": baseline.get("baseline_accuracy"),
            "baseline_f1_macro": baseline.get("baseline_f1_macro"),
            "trainable_params": trainable,
            "total_params": total,
            "trainable_percent": 100.0 * trainable / total if total else None,
            "train_runtime_s": runtime,
            "train_samples_per_s": metrics.get("train_samples_per_second"),
            "train_steps_per_s": metrics.get("train_steps_per_second"),
            "train_tokens_per_s": tokens,
            "peak_memory_mb": peak_mb,
            "peak_memory_kind": peak_kind,
            "peak_memory_scope": "process" if args.world_size == 1 else "largest process",
            "model_footprint_mb": footprint_bytes(trainer.model) / 2**20,
            "adapter_size_mb": adapter_bytes / 2**20,
            "inference_samples_per_s": final.get("eval_samples_per_second"),
            "global_step": state.global_step,
            "epochs": state.epoch,
            "num_train_samples": len(train_set),
            # what the evaluation actually scored (under DDP, gathered over ranks without the
            # examples a sampler repeats to even out the shards)
            "num_eval_samples": int(final.get("eval_examples", len(eval_set))),
            "learning_rate": learning_rate,
            "label_names": label_names,
            "technique": ctx.technique.id,
            "model": ctx.model.id,
            "dataset": ctx.dataset.id,
            "max_length": max_length,
            "world_size": args.world_size,
            "ddp_find_unused_parameters": args.ddp_find_unused_parameters,
            "device": str(args.device),
            "resumed_from": resume,
            "data_notes": list(splits.notes),
            "total_runtime_s": time.time() - started,
        }
        if torch.cuda.is_available():
            results["gpu"] = torch.cuda.get_device_name(0)
        progress.report("done", state)
        return results


def _find_unused(p: dict[str, Any], model: Any, train_set: Any, collator: Any) -> bool:
    """DDP's find_unused_parameters: the recipe's choice, or (auto) whether a probe step leaves
    a trainable parameter without a gradient. Off saves a graph traversal on every step."""
    from . import distributed

    choice = p.get("ddp_find_unused_parameters", "auto")
    if choice in ("always", "never"):
        return choice == "always"
    device = next(model.parameters()).device
    unused = distributed.unused_trainable_parameters(
        model, distributed.probe_batch(train_set, collator, device)
    )
    if unused:
        shown = ", ".join(unused[:5]) + (" ..." if len(unused) > 5 else "")
        print(f"ddp: {len(unused)} trainable parameters get no gradient ({shown})", flush=True)
    return bool(unused)


def planned_steps(num_examples: int, args: Any) -> int:
    """Optimizer steps the Trainer will take, computed the way transformers does."""
    if args.max_steps > 0:
        return int(args.max_steps)
    batches = math.ceil(num_examples / (args.train_batch_size * max(1, args.world_size)))
    per_epoch = max(math.ceil(batches / args.gradient_accumulation_steps), 1)
    return math.ceil(args.num_train_epochs * per_epoch)


def _tokenize(dataset: Any, tokenizer: Any, max_length: int) -> Any:
    """input_ids/attention_mask (+ `length` for length grouping), once per split; padding waits for the batch."""

    def encode(batch: dict[str, list[Any]]) -> dict[str, Any]:
        encoded = tokenizer(batch["text"], truncation=True, max_length=max_length)
        encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
        return encoded

    keep = {"label"}
    drop = [c for c in dataset.column_names if c not in keep]
    return dataset.map(encode, batched=True, remove_columns=drop, desc="tokenizing")


def _training_arguments(ctx: RunContext, p: dict[str, Any], learning_rate: float, seed: int) -> Any:
    import torch
    from transformers import TrainingArguments

    from sdk.tracking import tracking_arguments

    precision = p.get("mixed_precision", "no")
    if precision == "fp16" and not torch.cuda.is_available():
        raise ValueError("trainer.mixed_precision=fp16 needs a CUDA GPU; use 'no' (or bf16) on CPU")
    eval_steps = int(p.get("eval_steps") or 0)
    save_steps = int(p.get("save_steps") or 0)
    max_steps = int(p.get("max_steps") or 0)
    return TrainingArguments(
        output_dir=str(ctx.checkpoints_dir),
        num_train_epochs=float(p.get("epochs", 1.0)),
        max_steps=max_steps if max_steps > 0 else -1,
        learning_rate=learning_rate,
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
        **_checkpointing_arguments(bool(p.get("gradient_checkpointing", False))),
        fp16=precision == "fp16",
        bf16=precision == "bf16",
        **tracking_arguments(p, ctx.run_dir),
        disable_tqdm=True,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        # without this, accelerate sees no device under torchrun on a CPU-only machine and
        # every process trains alone; with it, the processes form one gloo group (DDP)
        use_cpu=not torch.accelerator.is_available(),
    )


def _checkpointing_arguments(enabled: bool) -> dict[str, Any]:
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


def base_model_source(model: Any) -> str | None:
    """Where the base weights came from (a folder or hub id), for people loading the adapter by hand."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return getattr(getattr(base, "config", None), "name_or_path", None) or None


def _last_eval(history: list[dict[str, Any]], step: int) -> dict[str, Any] | None:
    """The evaluation the Trainer already ran at the final step, so it is not run twice."""
    for entry in reversed(history):
        if "eval_accuracy" in entry:
            return entry if entry.get("step") == step else None
    return None


def _save(
    ctx: RunContext,
    model: Any,
    tokenizer: Any,
    tctx: Any,
    label_names: list[str],
    max_length: int,
) -> int:
    """Technique weights, then tokenizer and peftlab.json; returns the weights' size on disk."""
    from . import measures

    target = ctx.adapter_dir
    target.mkdir(parents=True, exist_ok=True)
    ctx.technique.instance.save(model, target, tctx)
    weights_bytes = measures.folder_bytes(target)
    tokenizer.save_pretrained(str(target))
    info = {
        "format": 1,
        "task": tctx.task,
        "label_names": label_names,
        "max_length": max_length,
        "model": {"id": ctx.model.id, "params": ctx.model.params, "base": base_model_source(model)},
        "technique": {"id": ctx.technique.id, "params": ctx.technique.params},
        "dataset": {"id": ctx.dataset.id, "params": ctx.dataset.params},
    }
    tmp = target / f".{INFO_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(info, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(target / INFO_FILE)
    return weights_bytes
