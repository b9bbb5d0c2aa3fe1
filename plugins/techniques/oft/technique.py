"""OFT: a learned block-diagonal orthogonal transform of each target layer, through peft's OFTConfig."""

from __future__ import annotations

from sdk.peft_utils import PeftTechnique


class OFT(PeftTechnique):
    # learning-rate sweep: docs/results/rotten_tomatoes/lr_sweep_new_techniques
    default_learning_rate = 1e-3
    peft_config_name = "OFTConfig"
