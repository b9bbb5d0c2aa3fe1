"""The generation tasks (causal-lm, seq2seq): train a language model on text pairs.

`HFTrainer.run` hands runs of these tasks here. The flow mirrors sequence
classification: load the data and the base model, apply the technique, train
with the transformers `Trainer`, evaluate, save. What differs:

* examples are prompt + completion (causal LM; the loss covers only the
  completion: the prompt and the padding are labelled -100) or source ->
  target (seq2seq), tokenized by `sdk.textgen` with the dataset's template;
* batches are padded by `DataCollatorForSeq2Seq` (labels with -100);
* evaluation reports the loss and its exponential, the perplexity of the
  references, and ROUGE-1/2/L F-measures of greedy generations (up to
  `max_new_tokens` new tokens) against the references of the validation
  split (the first `rouge_samples` rows; 0 = all);
* `peftlab.json` records the task, the input template and the generation
  length, so `peftlab predict` and the playground generate the same way.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from sdk import DatasetContext, DatasetSplits, RunContext, count_parameters
from sdk.textgen import encode_pairs, generate_texts, pair_columns, rouge_scores

DEFAULT_MAX_LENGTH = 256
DEFAULT_MAX_TARGET_LENGTH = 64
INFO_FILE = "peftlab.json"


def perplexity(loss: float | None) -> float | None:
    """exp(mean token loss); inf when it overflows a float."""
    if loss is None or not math.isfinite(loss):
        return None
    return math.exp(loss) if loss < 700 else math.inf


def run_generation(ctx: RunContext, progress: Any, started: float) -> dict[str, Any]:
    """Train and evaluate a causal-lm or seq2seq run; returns what results.json holds."""
    import torch
    from transformers import DataCollatorForSeq2Seq, Trainer

    from sdk.hf import footprint_bytes, load_base_model

    from . import measures
    from . import trainer as engine

    p = ctx.trainer.params
    seed = int(p.get("seed", 42))
    section = ctx.dataset_section
    task = section["task"]
    splits: DatasetSplits = ctx.dataset.instance.load(
        DatasetContext(
            params=dict(ctx.dataset.params),
            bundle_dir=Path(ctx.dataset.bundle_dir),
            task=task,
            label_names=[],
            text_fields=list(section.get("text_fields") or pair_columns(task)),
            label_field=section.get("label_field", pair_columns(task)[1]),
            seed=seed,
        )
    )
    for note in splits.notes:
        print(f"data: {note}", flush=True)
    missing = [c for c in pair_columns(task) if c not in splits.train.column_names]
    if missing:
        raise ValueError(
            f"dataset {ctx.dataset.id} returned columns {splits.train.column_names}; "
            f"task {task} needs {', '.join(pair_columns(task))}"
        )

    loaded, tctx = load_base_model(ctx.model, ctx.technique, task, [])
    tokenizer = loaded.tokenizer
    max_length = splits.max_length or DEFAULT_MAX_LENGTH
    max_target_length = splits.max_target_length or DEFAULT_MAX_TARGET_LENGTH
    template = splits.input_template
    learning_rate = float(p.get("learning_rate") or 0) or float(
        type(ctx.technique.instance).default_learning_rate
    )
    args = engine._training_arguments(ctx, p, learning_rate, seed)
    # the loss is all evaluation needs from the model: no logits over the vocabulary are kept
    args.prediction_loss_only = True
    tctx = replace(tctx, total_steps=engine.planned_steps(len(splits.train), args))
    technique = ctx.technique.instance
    model = technique.apply(loaded.model, tctx)
    trainable, total = count_parameters(model)

    encode = {
        "template": template,
        "max_length": max_length,
        "max_target_length": max_target_length,
    }
    train_set = encode_pairs(splits.train, tokenizer, task, **encode)
    eval_set = encode_pairs(splits.validation, tokenizer, task, **encode)
    collator = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100, padding=True)
    if args.world_size > 1:
        args.ddp_find_unused_parameters = engine._find_unused(p, model, train_set, collator)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        processing_class=tokenizer,
        data_collator=collator,
        callbacks=[progress, *technique.training_callbacks(model, tctx)],
    )

    max_new_tokens = int(p.get("max_new_tokens") or 64)
    rouge_rows = int(p.get("rouge_samples") or 0) or len(splits.validation)
    references = splits.validation.select(range(min(rouge_rows, len(splits.validation))))
    source_column, reference_column = pair_columns(task)

    def score(prefix: str) -> dict[str, float]:
        """ROUGE of greedy generations on the validation rows (rank 0 only: it is not sharded)."""
        if not trainer.is_world_process_zero():
            return {}
        generated = generate_texts(
            trainer.model,
            tokenizer,
            list(references[source_column]),
            task,
            template=template,
            max_new_tokens=max_new_tokens,
            max_length=max_length,
            batch_size=int(p.get("eval_batch_size", 64)),
        )
        scores = rouge_scores(generated, list(references[reference_column]))
        return {f"{prefix}_{key}": value for key, value in scores.items()}

    baseline: dict[str, Any] = {}
    if p.get("measure_baseline", True):
        progress.report("baseline")
        baseline = trainer.evaluate(metric_key_prefix="baseline")
        baseline.update(score("baseline"))

    resume = str(ctx.resume_from) if ctx.resume_from else None
    train_result = trainer.train(resume_from_checkpoint=resume)
    state = trainer.state

    final = _last_eval(state.log_history, state.global_step)
    if final is None:
        progress.report("evaluating", state)
        final = trainer.evaluate()
    progress.report("evaluating", state)
    eval_started = time.time()
    final.update(score("eval"))
    generation_s = time.time() - eval_started

    progress.report("saving", state)
    adapter_bytes = 0
    if trainer.is_world_process_zero():
        adapter_bytes = _save(ctx, trainer.model, tokenizer, tctx, max_length, template, p)
        ctx.reporter.log_metrics(
            {"step": state.global_step, **{k: v for k, v in final.items() if "rouge" in k}}
        )

    peak_mb, peak_kind = measures.peak_memory()
    if args.world_size > 1:  # every rank holds a copy of the model: report the largest process
        from . import distributed

        peak_mb = distributed.max_across_ranks(peak_mb)
    metrics = train_result.metrics
    runtime = float(metrics.get("train_runtime") or (time.time() - started))
    tokens = metrics.get("train_tokens_per_second")
    if tokens is None and runtime > 0:
        tokens = (state.num_input_tokens_seen - progress.first_tokens) / runtime
    scored = min(rouge_rows, len(splits.validation))
    results = {
        "accuracy": None,
        "f1_macro": None,
        "rouge1": final.get("eval_rouge1"),
        "rouge2": final.get("eval_rouge2"),
        "rougeL": final.get("eval_rougeL"),
        "perplexity": perplexity(final.get("eval_loss")),
        "eval_loss": final.get("eval_loss"),
        "train_loss": metrics.get("train_loss"),
        "baseline_accuracy": None,
        "baseline_f1_macro": None,
        "baseline_rouge1": baseline.get("baseline_rouge1"),
        "baseline_rouge2": baseline.get("baseline_rouge2"),
        "baseline_rougeL": baseline.get("baseline_rougeL"),
        "baseline_perplexity": perplexity(baseline.get("baseline_loss")),
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
        "generation_samples_per_s": scored / generation_s if generation_s > 0 else None,
        "global_step": state.global_step,
        "epochs": state.epoch,
        "num_train_samples": len(train_set),
        "num_eval_samples": len(eval_set),
        "num_rouge_samples": scored,
        "max_new_tokens": max_new_tokens,
        "learning_rate": learning_rate,
        "label_names": [],
        "task": task,
        "technique": ctx.technique.id,
        "model": ctx.model.id,
        "dataset": ctx.dataset.id,
        "max_length": max_length,
        "max_target_length": max_target_length if task == "seq2seq" else None,
        "new_tokens": len(tctx.new_token_ids),
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


def _last_eval(history: list[dict[str, Any]], step: int) -> dict[str, Any] | None:
    """The evaluation the Trainer already ran at the final step, so it is not run twice."""
    for entry in reversed(history):
        if "eval_loss" in entry:
            return dict(entry) if entry.get("step") == step else None
    return None


def _save(
    ctx: RunContext,
    model: Any,
    tokenizer: Any,
    tctx: Any,
    max_length: int,
    template: str | None,
    p: dict[str, Any],
) -> int:
    """Technique weights, then tokenizer and peftlab.json; returns the weights' size on disk."""
    from . import measures
    from . import trainer as engine

    target = ctx.adapter_dir
    target.mkdir(parents=True, exist_ok=True)
    ctx.technique.instance.save(model, target, tctx)
    weights_bytes = measures.folder_bytes(target)
    tokenizer.save_pretrained(str(target))
    info = {
        "format": 1,
        "task": tctx.task,
        "label_names": [],
        "max_length": max_length,
        "input_template": template,
        "max_new_tokens": int(p.get("max_new_tokens") or 64),
        "new_token_ids": list(tctx.new_token_ids),
        "model": {
            "id": ctx.model.id,
            "params": ctx.model.params,
            "base": engine.base_model_source(model),
        },
        "technique": {"id": ctx.technique.id, "params": ctx.technique.params},
        "dataset": {"id": ctx.dataset.id, "params": ctx.dataset.params},
    }
    tmp = target / f".{INFO_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(info, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(target / INFO_FILE)
    return weights_bytes
