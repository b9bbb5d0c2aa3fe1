"""FourierFT: weight updates from a few trained spectral coefficients, through peft's FourierFTConfig."""

from __future__ import annotations

from sdk.peft_utils import PeftTechnique


class FourierFT(PeftTechnique):
    # learning-rate sweep: docs/results/rotten_tomatoes/lr_sweep_new_techniques
    default_learning_rate = 1e-3
    peft_config_name = "FourierFTConfig"
