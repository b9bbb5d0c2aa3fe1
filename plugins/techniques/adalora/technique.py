"""AdaLoRA: adaptive rank allocation, through peft's AdaLoraConfig.

peft needs two things the other techniques do not: the run's number of
optimizer steps before training (the rank budget follows a schedule over
them), and a call to `update_and_allocate(step)` after each optimizer step,
while the gradients are still there. The first comes from
`TechniqueContext.total_steps` (or the `total_steps` param); the second is the
callback `training_callbacks` returns, which the trainer adds to its
`transformers.Trainer`.
"""

from __future__ import annotations

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
    default_learning_rate = 2e-3

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

    def training_callbacks(self, model: Any, ctx: TechniqueContext) -> list[Any]:
        return [rank_allocation_callback(model)]


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
