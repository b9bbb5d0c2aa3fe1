"""FourierFT: weight updates from a few trained spectral coefficients, through peft's FourierFTConfig."""

from __future__ import annotations

from sdk.peft_utils import PeftTechnique


class FourierFT(PeftTechnique):
    # MiniLM, 1,000 rows of rotten tomatoes, 1 epoch, batch 32, validation accuracy:
    # 3e-3 .53, 1e-2 .55, 3e-2 .61, 1e-1 .71 (the highest rate tried);
    # docs/results/rotten_tomatoes/lr_sweeps_new_techniques.md
    default_learning_rate = 1e-1
    peft_config_name = "FourierFTConfig"
