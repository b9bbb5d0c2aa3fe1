"""LoKr: Kronecker-product updates, through peft's LoKrConfig (params named as its fields)."""

from __future__ import annotations

from sdk.peft_utils import PeftTechnique


class LoKr(PeftTechnique):
    # MiniLM, 1 epoch of rotten tomatoes, batch 32, validation accuracy (x/y: two seeds):
    # 2e-3 .78, 5e-3 .79, 1e-2 .80/.80, 2e-2 .77, 5e-2 diverges (.49)
    default_learning_rate = 1e-2
    peft_config_name = "LoKrConfig"
