"""VB-LoRA: LoRA factors composed from one shared vector bank, through peft's VBLoRAConfig."""

from __future__ import annotations

from sdk.peft_utils import PeftTechnique


class VBLoRA(PeftTechnique):
    # learning-rate sweep: docs/results/rotten_tomatoes/lr_sweep_new_techniques
    default_learning_rate = 1e-3
    peft_config_name = "VBLoRAConfig"
