"""Head-only training (linear probing), optionally with the last encoder layers.

The whole pre-trained model is frozen; the classifier head the model plugin
declares trains, and so do the last `unfreeze_last_layers` encoder layers.

Saving writes `technique_model.safetensors` (the trained weights by
parameter name) and `technique_config.json` (the params); loading freezes a
fresh base model the same way and copies the tensors in:

    technique = HeadOnly()
    model = technique.load(fresh_base_model, adapter_dir, ctx)
"""

from __future__ import annotations

from typing import Any

from sdk import TechniqueContext
from sdk.hf_modules import transformer_blocks
from sdk.peft_utils import SavedWeightsTechnique, freeze, head_modules, unfreeze_modules


class HeadOnly(SavedWeightsTechnique):
    # MiniLM, 1 epoch of rotten tomatoes, batch 32, validation accuracy (x/y: two seeds):
    # 1e-3 .64, 3e-3 .68, 1e-2 .69/.67, 3e-2 .70, 1e-1 .69; 1e-2 rather than 3e-2 because
    # unfreeze_last_layers trains encoder layers with the same rate
    default_learning_rate = 1e-2

    saved_as = "head_only"

    def build(self, model: Any, params: dict[str, Any], ctx: TechniqueContext) -> Any:
        heads = head_modules(ctx)
        if not heads:
            raise ValueError(
                f"head-only training needs a new task head; model "
                f"{ctx.facts.architecture} declares no classifier_modules for task {ctx.task}"
            )
        freeze(model)
        unfreeze_modules(model, heads)
        count = params["unfreeze_last_layers"]
        if count:
            for layer in transformer_blocks(model)[-count:]:
                for param in layer.parameters():
                    param.requires_grad_(True)
        return model
