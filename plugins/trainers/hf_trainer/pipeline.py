"""The one training pipeline: a recipe's plugins -> transformers Trainer -> a finished run.

Loads the dataset, the base model (as the technique wants it loaded) and applies
the technique; tokenizes once; measures the untrained model; trains with
checkpoints for resume; evaluates; saves the technique's weights, the tokenizer
and `peftlab.json` (what `predict` needs to rebuild the model); returns the
run's results record. Every task runs this same sequence; where a task differs
(data, collator, metrics, extra evaluation, results) the run's `TaskSteps` answer
(classification.py, generation.py). Under torchrun every rank runs this; only
rank 0 writes files.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import replace
from typing import Any

from sdk import RunContext, count_parameters
from sdk.data.cache import cache_root
from sdk.hf import footprint_bytes, load_base_model
from sdk.textgen import GENERATION_TASKS
from sdk.trial import trial_callbacks

from . import distributed, measures
from .arguments import apply_thread_count, learning_rate, planned_steps, training_arguments
from .calibration import calibration_source
from .classification import ClassificationSteps
from .generation import GenerationSteps
from .paging import ReleaseCachePages
from .progress import RunProgress
from .sampling import grouped_trainer_class
from .saving import save_adapter
from .steps import Run, TaskSteps


def steps_for(task: str) -> TaskSteps:
    """The task's steps: sequence classification, or a generation task's."""
    if task == "sequence-classification":
        return ClassificationSteps()
    if task in GENERATION_TASKS:
        return GenerationSteps()
    raise ValueError(f"hf_trainer cannot train task '{task}'")


def run_pipeline(ctx: RunContext) -> dict[str, Any]:
    """Train, evaluate and save one run; returns what results.json holds."""
    import transformers

    started = time.time()
    _interruptible()
    _quiet_libraries()
    apply_thread_count(ctx.trainer.params)
    progress = RunProgress(ctx.reporter, started)
    progress.report("loading")
    seed = int(ctx.trainer.params.get("seed", 42))
    transformers.set_seed(seed)
    run = Run(ctx=ctx, progress=progress, started=started, seed=seed)
    steps = steps_for(run.task)
    _load(run, steps)
    _build_trainer(run, steps)
    baseline = _baseline(run, steps)
    resume = str(ctx.resume_from) if ctx.resume_from else None
    train_result = run.trainer.train(resume_from_checkpoint=resume)
    final, trained = _final_evaluation(run, steps)
    progress.report("saving", run.trainer.state)
    adapter_bytes = 0
    if run.trainer.is_world_process_zero():
        assert run.tctx is not None
        info = steps.adapter_info(run)
        adapter_bytes = save_adapter(ctx, trained, run.tokenizer, run.tctx, info)
    common = _common_results(run, train_result.metrics, final, adapter_bytes, resume)
    results = steps.results(run, common, final, baseline)
    progress.report("done", run.trainer.state)
    return results.to_json_dict()


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


def _load(run: Run, steps: TaskSteps) -> None:
    """Data first (the number of labels decides the model's head), then the model with the
    technique applied."""
    ctx = run.ctx
    run.splits = ctx.dataset.instance.load(steps.dataset_context(run))
    for note in run.splits.notes:
        print(f"data: {note}", flush=True)
    run.label_names = steps.label_names(run)
    run.loaded, tctx = load_base_model(ctx.model, ctx.technique, run.task, run.label_names)
    steps.prepare_model(run, run.loaded)
    run.max_length = run.splits.max_length or steps.default_max_length
    run.learning_rate = learning_rate(ctx)
    run.args = training_arguments(ctx, run.learning_rate, run.seed)
    # tokenized before apply: techniques that initialise from the data (EVA, CorDA) read it
    run.train_set, run.eval_set = steps.encode(run)
    run.collator = steps.collator(run)
    run.tctx = replace(
        tctx,
        # techniques that schedule over the run (AdaLoRA) need its length before apply
        total_steps=planned_steps(len(run.splits.train), run.args),
        calibration=calibration_source(
            run.train_set, run.collator, run.args.per_device_train_batch_size, run.seed
        ),
    )  # fmt: skip
    run.model = ctx.technique.instance.apply(run.loaded.model, run.tctx)
    run.trainable, run.total = count_parameters(run.model)


def _build_trainer(run: Run, steps: TaskSteps) -> None:
    """The transformers Trainer on the tokenized splits, with the task's metrics."""
    collator = run.collator
    options = steps.trainer_options(run)
    if run.args.world_size > 1:
        choice = run.params.get("ddp_find_unused_parameters", "auto")
        run.args.ddp_find_unused_parameters = distributed.find_unused_parameters(
            choice, run.model, run.train_set, collator
        )
    technique = run.ctx.technique.instance
    # techniques with optimizers of their own (LoRA+); the schedule still comes from args
    optimizer = technique.create_optimizer(run.model, run.args, run.tctx)
    if optimizer is not None:
        options["optimizers"] = (optimizer, None)
    run.trainer = grouped_trainer_class()(
        model=run.model,
        args=run.args,
        train_dataset=run.train_set,
        eval_dataset=run.eval_set,
        processing_class=run.tokenizer,
        data_collator=collator,
        callbacks=[
            run.progress,
            ReleaseCachePages(cache_root()),
            *technique.training_callbacks(run.model, run.tctx),
            *trial_callbacks(run.ctx.run_dir),  # a sweep's trial reports to its study
        ],
        **options,
    )


def _baseline(run: Run, steps: TaskSteps) -> dict[str, Any]:
    """The untrained model's scores (keys `baseline_*`), unless switched off or impossible."""
    from transformers import IntervalStrategy

    trainer = run.trainer
    measure = bool(run.params.get("measure_baseline", True))
    if getattr(run.model, "is_loaded_in_4bit", False) and run.args.device.type == "cpu":
        # bitsandbytes repacks 4-bit weights for its CPU inference kernel on the first
        # no-grad forward, after which a training step fails ("a view of a leaf Variable
        # ... in-place operation"): on the CPU a 4-bit model is evaluated only at the end
        print(
            "evaluation: only after training (a 4-bit model on the CPU cannot train after evaluating)"
        )
        measure = False
        trainer.args.eval_strategy = IntervalStrategy.NO
    if not measure:
        return {}
    run.progress.report("baseline")
    baseline = trainer.evaluate(metric_key_prefix="baseline")
    if run.args.world_size > 1:
        distributed.rewrap_after_evaluation(trainer)
    baseline.update(steps.baseline_extra(run))
    return baseline


def last_eval(history: list[dict[str, Any]], step: int, marker: str) -> dict[str, Any] | None:
    """The evaluation the Trainer already ran at the final step (the last log entry holding
    `marker`), so it is not run twice."""
    for entry in reversed(history):
        if marker in entry:
            return dict(entry) if entry.get("step") == step else None
    return None


def _final_evaluation(run: Run, steps: TaskSteps) -> tuple[dict[str, Any], Any]:
    """Scores after training (keys `eval_*`) and the whole trained model (None off rank 0
    under FSDP)."""
    trainer = run.trainer
    state = trainer.state
    final = last_eval(state.log_history, state.global_step, steps.eval_marker)
    if final is None:
        run.progress.report("evaluating", state)
        final = trainer.evaluate()
    trained = trainer.model
    if trainer.is_fsdp_enabled:  # every rank holds a shard: gather the weights first
        trained = distributed.gathered_model(trainer, lambda: _fresh_copy(run, steps))
    final.update(steps.final_extra(run, trained))
    return final, trained


def _fresh_copy(run: Run, steps: TaskSteps) -> Any:
    """The base model with the technique applied, as before training (receives gathered weights)."""
    ctx = run.ctx
    base, _ = load_base_model(ctx.model, ctx.technique, run.task, run.label_names)
    steps.prepare_model(run, base)
    return ctx.technique.instance.apply(base.model, run.tctx)


def _peak_memory(run: Run) -> tuple[float, str]:
    """The largest process's peak memory: every rank holds its own copy of the model."""
    peak_mb, peak_kind = measures.peak_memory()
    peak_mb = distributed.max_across_ranks(peak_mb)
    rank, world = distributed.world()
    if world > 1:  # one line per process in the log: every rank took part
        print(f"rank {rank} of {world}: trained {run.trainer.state.global_step} steps", flush=True)
    return peak_mb, peak_kind


def _common_results(
    run: Run,
    metrics: dict[str, Any],
    final: dict[str, Any],
    adapter_bytes: int,
    resume: str | None,
) -> dict[str, Any]:
    """The results every task reports: losses, sizes, speed, memory and what was trained."""
    import torch

    assert run.splits is not None
    state, args = run.trainer.state, run.args
    peak_mb, peak_kind = _peak_memory(run)
    runtime = float(metrics.get("train_runtime") or (time.time() - run.started))
    tokens = metrics.get("train_tokens_per_second")
    if tokens is None and runtime > 0:
        tokens = (state.num_input_tokens_seen - run.progress.first_tokens) / runtime
    return {
        "eval_loss": final.get("eval_loss"),
        "train_loss": metrics.get("train_loss"),
        "trainable_params": run.trainable,
        "total_params": run.total,
        "trainable_percent": 100.0 * run.trainable / run.total if run.total else None,
        "train_runtime_s": runtime,
        "train_samples_per_s": metrics.get("train_samples_per_second"),
        "train_steps_per_s": metrics.get("train_steps_per_second"),
        "train_tokens_per_s": tokens,
        "peak_memory_mb": peak_mb,
        "peak_memory_kind": peak_kind,
        "peak_memory_scope": "process" if args.world_size == 1 else "largest process",
        "model_footprint_mb": footprint_bytes(run.trainer.model) / 2**20,
        "adapter_size_mb": adapter_bytes / 2**20,
        "inference_samples_per_s": final.get("eval_samples_per_second"),
        "global_step": state.global_step,
        "epochs": state.epoch,
        "num_train_samples": len(run.train_set),
        # what the evaluation actually scored (under DDP, gathered over ranks without the
        # examples a sampler repeats to even out the shards)
        "num_eval_samples": int(final.get("eval_examples", len(run.eval_set))),
        "learning_rate": run.learning_rate,
        "technique": run.ctx.technique.id,
        "model": run.ctx.model.id,
        "dataset": run.ctx.dataset.id,
        "max_length": run.max_length,
        "world_size": args.world_size,
        "ddp_find_unused_parameters": args.ddp_find_unused_parameters,
        "device": str(args.device),
        "precision": "bf16" if args.bf16 else "fp16" if args.fp16 else "no",
        "resumed_from": resume,
        "data_notes": list(run.splits.notes),
        "total_runtime_s": time.time() - run.started,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
