"""VB-LoRA: LoRA factors composed from one shared vector bank, through peft's VBLoRAConfig."""

from __future__ import annotations

from sdk.peft_utils import PeftTechnique


class VBLoRA(PeftTechnique):
    # MiniLM, 1,000 rows of rotten tomatoes, 1 epoch, batch 32, validation accuracy:
    # 3e-3 .55, 1e-2 .75, 3e-2 .75;
    # docs/results/rotten_tomatoes/lr_sweeps_new_techniques.md
    default_learning_rate = 1e-2
    peft_config_name = "VBLoRAConfig"
