"""LoHa: low-rank Hadamard product updates, through peft's LoHaConfig (params named as its fields)."""

from __future__ import annotations

from sdk.peft_utils import PeftTechnique


class LoHa(PeftTechnique):
    # MiniLM, 1 epoch of rotten tomatoes, batch 32, validation accuracy (x/y: two seeds):
    # 1e-3 .77, 2e-3 .80, 5e-3 .81/.80, 1e-2 .80
    default_learning_rate = 5e-3
    peft_config_name = "LoHaConfig"
