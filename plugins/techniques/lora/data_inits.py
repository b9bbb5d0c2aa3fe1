"""LoRA initialisations computed from the task's data: EVA and CorDA (peft 0.21).

EVA (arXiv 2410.07170) runs the training examples through the model and sets
each lora_A to the top right-singular vectors of that layer's inputs, giving
ranks to the layers whose inputs explain the most variance (up to rho x r); the
base weights stay as they are. CorDA (arXiv 2406.05223) decomposes each weight
oriented by its inputs' covariance and starts the adapter from the components
the task uses most (IPM) or the least (KPM, which preserves what the model
knew); like PiSSA it takes them out of the base weight, so its adapter is saved
converted to a plain LoRA.

Both read the examples through `TechniqueContext.calibration`, the batches the
trainer offers before it builds its optimizer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from sdk import TechniqueContext

#: passes over the calibration examples before EVA gives up on converging
EVA_MAX_PASSES = 50


def required_examples(ctx: TechniqueContext, init: str) -> list[dict[str, Any]]:
    """The run's calibration batches, or a one-line error naming what is missing."""
    if ctx.calibration is None:
        raise ValueError(
            f"init_lora_weights={init} needs calibration examples, which this run's trainer "
            "does not offer (the built-in hf_trainer does)"
        )
    return list(ctx.calibration())


def eva_config(ctx: TechniqueContext) -> Any:
    """peft's EvaConfig: per-token label masks only where labels are per token (generation)."""
    from peft import EvaConfig

    per_token_labels = ctx.task != "sequence-classification"
    return EvaConfig(rho=float(ctx.params.get("eva_rho", 2.0)), use_label_mask=per_token_labels)


def initialise_eva(model: Any, ctx: TechniqueContext) -> None:
    """Set the adapters of a peft model created with init_lora_weights='eva' from the data."""
    from peft import initialize_lora_eva_weights

    batches = required_examples(ctx, "eva")
    modes = module_modes(model)  # peft's EVA leaves every module in training mode
    initialize_lora_eva_weights(
        model,
        dataloader=batches,
        forward_fn=bounded_forward(len(batches) * EVA_MAX_PASSES),
        show_progress_bar=False,
    )
    restore_modes(modes)


def module_modes(model: Any) -> dict[Any, bool]:
    """Each module's training flag (modules differ: a base model arrives in evaluation mode)."""
    return {module: module.training for module in model.modules()}


def restore_modes(modes: dict[Any, bool]) -> None:
    for module, training in modes.items():
        module.training = training


def bounded_forward(limit: int) -> Callable[[Any, dict[str, Any]], Any]:
    """EVA's forward step (peft runs it under no_grad), which stops a search that does not
    converge (peft cycles the data until every layer's components settle) with a one-line
    error instead of hanging."""
    calls = 0

    def forward(model: Any, inputs: dict[str, Any]) -> Any:
        nonlocal calls
        calls += 1
        if calls > limit:
            raise ValueError(
                f"EVA's components did not settle within {EVA_MAX_PASSES} passes over the "
                "calibration examples; use another init_lora_weights"
            )
        return model(**inputs)

    return forward


def corda_config(ctx: TechniqueContext) -> Any:
    from peft.tuners.lora.config import CordaConfig

    return CordaConfig(corda_method=str(ctx.params.get("corda_method", "ipm")))


def prepare_corda(model: Any, config: Any, ctx: TechniqueContext) -> None:
    """Collect each target layer's input covariance on the base model (before get_peft_model)."""
    import torch
    from peft.tuners.lora.corda import preprocess_corda

    batches = required_examples(ctx, "corda")

    def run_model() -> None:
        with torch.no_grad():
            for example in single_examples(batches):
                model(**example)

    modes = module_modes(model)  # peft's calibration leaves every module in evaluation mode
    preprocess_corda(model, config, run_model=run_model)
    restore_modes(modes)


def single_examples(batches: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Each example of each batch alone and without its padding (left or right): CorDA's hook
    reads one sequence per forward (it squeezes the batch dimension away)."""
    for batch in batches:
        mask = batch.get("attention_mask")
        for row in range(len(batch["input_ids"])):
            real = mask[row].bool() if mask is not None else None
            yield {
                name: _real_tokens(value[row : row + 1], real)
                for name, value in batch.items()
                if name != "labels"
            }


def _real_tokens(one: Any, real: Any) -> Any:
    """One example's tensor cut to its real tokens (per-token tensors only)."""
    if real is None or one.dim() < 2 or one.shape[1] != real.shape[0]:
        return one
    return one[:, real]
