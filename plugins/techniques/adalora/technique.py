"""AdaLoRA: adaptive rank allocation, through peft's AdaLoraConfig.

peft needs two things the other techniques do not: the run's number of
optimizer steps before training (the rank budget follows a schedule over
them), and a call to `update_and_allocate(step)` after each optimizer step,
while the gradients are still there. The first comes from
`TechniqueContext.total_steps` (or the `total_steps` param); the second is the
callback `training_callbacks` returns, which the trainer adds to its
`transformers.Trainer`.

peft also adds AdaLoRA's orthogonality penalty to the loss of every forward
pass that has labels, evaluation included; here it is added in training mode
only, so the evaluation loss is the task loss, as for every other technique.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sdk import TechniqueContext, resolve_target_modules
from sdk.peft_utils import PeftTechnique, peft_task_type


def schedule(total_steps: int, warmup_fraction: float, final_fraction: float) -> tuple[int, int]:
    """(tinit, tfinal) in steps, leaving at least one step of budget pruning as peft requires."""
    tinit = int(total_steps * warmup_fraction)
    tfinal = int(total_steps * final_fraction)
    if tinit + tfinal >= total_steps:
        # too few steps for the requested phases: keep a pruning phase, drop the others
        tinit = tfinal = 0
    return tinit, tfinal


class AdaLoRA(PeftTechnique):
    # MiniLM, 1 epoch of rotten tomatoes, batch 32, validation accuracy (x/y: two seeds):
    # 1e-3 .63, 2e-3 .67, 5e-3 .77/.76, 1e-2 .79, 2e-2 .79
    default_learning_rate = 1e-2

    def total_steps(self, ctx: TechniqueContext) -> int:
        steps = ctx.params.get("total_steps") or ctx.total_steps
        if not steps:
            raise ValueError(
                "AdaLoRA needs the run's number of optimizer steps: set the total_steps param, "
                "or use a trainer that fills TechniqueContext.total_steps"
            )
        return int(steps)

    def peft_config(self, model: Any, ctx: TechniqueContext) -> Any:
        from peft import AdaLoraConfig

        p = ctx.params
        total = self.total_steps(ctx)
        tinit, tfinal = schedule(total, p["warmup_fraction"], p["final_fraction"])
        return AdaLoraConfig(
            task_type=peft_task_type(ctx),
            init_r=p["init_r"],
            target_r=p["target_r"],
            lora_alpha=p["alpha"],
            lora_dropout=p["dropout"],
            target_modules=resolve_target_modules(p["target_modules"], ctx.facts),
            tinit=tinit,
            tfinal=tfinal,
            deltaT=p["delta_t"],
            beta1=p["beta1"],
            beta2=p["beta2"],
            orth_reg_weight=p["orth_reg_weight"],
            total_step=total,
        )

    def apply(self, model: Any, ctx: TechniqueContext) -> Any:
        model = super().apply(model, ctx)
        # peft adds the orthogonality penalty to every loss, evaluation included, which would
        # make AdaLoRA's eval_loss incomparable with other techniques': add it in training only
        model.peftlab_orth_reg_weight = ctx.params["orth_reg_weight"]
        model.register_forward_pre_hook(_penalty_in_training_only)
        return model

    def save(self, model: Any, directory: Path, ctx: TechniqueContext) -> None:
        _adapter_config(model).orth_reg_weight = model.peftlab_orth_reg_weight
        model.save_pretrained(str(directory))

    def training_callbacks(self, model: Any, ctx: TechniqueContext) -> list[Any]:
        return [rank_allocation_callback(model)]


def _adapter_config(model: Any) -> Any:
    return model.peft_config[model.active_adapter]


def _penalty_in_training_only(model: Any, args: Any) -> None:
    weight = model.peftlab_orth_reg_weight if model.training else 0.0
    _adapter_config(model).orth_reg_weight = weight


def rank_allocation_callback(model: Any) -> Any:
    """A TrainerCallback that calls peft's `update_and_allocate` after every optimizer step.

    Built in a function so that transformers is imported only when a run needs it.

    `on_optimizer_step` runs after `optimizer.step()` and before the gradients
    are zeroed, which is where peft's AdaLoRA example calls it; the Trainer has
    not yet incremented `global_step`, so the step passed counts from 0.
    """
    from transformers import TrainerCallback

    class _RankAllocation(TrainerCallback):
        def __init__(self, peft_model: Any) -> None:
            self.peft_model = peft_model

        def on_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.peft_model.base_model.update_and_allocate(state.global_step)

    return _RankAllocation(model)
