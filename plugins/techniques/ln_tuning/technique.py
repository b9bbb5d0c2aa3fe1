"""LN tuning: train only the normalisation layers' gains and biases, through peft's LNTuningConfig.

peft knows default norm layers for a few architectures only (not BERT, DistilBERT or
RoBERTa), so the default targets are found in the model by class: every LayerNorm
and RMSNorm, named by the last part of its module name as peft matches targets.
"""

from __future__ import annotations

from typing import Any

from sdk import TechniqueContext
from sdk.peft_utils import PeftTechnique

# classes of norm layers that are not torch.nn.LayerNorm: T5LayerNorm, LlamaRMSNorm, ...
NORM_CLASS_SUFFIXES = ("LayerNorm", "RMSNorm")


def norm_layer_names(model: Any) -> list[str]:
    """Last name components of every LayerNorm / RMSNorm module, e.g. ['LayerNorm']."""
    import torch

    names = {
        name.rsplit(".", 1)[-1]
        for name, module in model.named_modules()
        if name
        and (
            isinstance(module, torch.nn.LayerNorm | torch.nn.RMSNorm)
            or type(module).__name__.endswith(NORM_CLASS_SUFFIXES)
        )
    }
    if not names:
        raise ValueError(f"{type(model).__name__} has no LayerNorm or RMSNorm layer to tune")
    return sorted(names)


class LNTuning(PeftTechnique):
    # MiniLM, 1,000 rows of rotten tomatoes, 1 epoch, batch 32, validation accuracy:
    # 3e-3 .54, 1e-2 .60, 3e-2 .50 (diverged); docs/results/rotten_tomatoes/lr_sweeps_new_techniques.md
    default_learning_rate = 1e-2
    peft_config_name = "LNTuningConfig"

    def peft_kwargs(self, model: Any, ctx: TechniqueContext) -> dict[str, Any]:
        chosen = [n.strip() for n in str(ctx.params["target_modules"]).split(",") if n.strip()]
        return {"target_modules": chosen or norm_layer_names(model)}
