"""Small helpers plugin authors would otherwise rewrite."""

from __future__ import annotations

from typing import Any

from sdk.context import ModelFacts

AUTO = "auto"


def resolve_target_modules(value: Any, facts: ModelFacts) -> list[str]:
    """`auto` -> the model plugin's default targets; a list is used as given."""
    if value in (None, AUTO, [AUTO]):
        if not facts.default_target_modules:
            raise ValueError(
                f"model architecture {facts.architecture} declares no default_target_modules; "
                "set target_modules explicitly"
            )
        return list(facts.default_target_modules)
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value)


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts of a torch module.

    Quantized 4-bit weights are packed two per byte; bitsandbytes' Params4bit
    keeps the logical shape in quant_state, which is what we count.
    """
    trainable = total = 0
    for param in model.parameters():
        quant_state = getattr(param, "quant_state", None)
        n = int(quant_state.shape.numel()) if quant_state is not None else param.numel()
        total += n
        if param.requires_grad:
            trainable += n
    return trainable, total
