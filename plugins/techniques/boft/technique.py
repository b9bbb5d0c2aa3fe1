"""BOFT: an orthogonal transform composed of butterfly factors, through peft's BOFTConfig."""

from __future__ import annotations

from sdk.peft_utils import PeftTechnique


class BOFT(PeftTechnique):
    # MiniLM, 1,000 rows of rotten tomatoes, 1 epoch, batch 32, validation accuracy:
    # 1e-3 .50, 3e-3 .53, 1e-2 .64, 3e-2 .76, 1e-1 .70 (on the CPU BOFT is a one-factor OFT
    # of block 4: smaller blocks than OFT's, so a higher rate);
    # docs/results/rotten_tomatoes/lr_sweeps_new_techniques.md
    default_learning_rate = 3e-2
    peft_config_name = "BOFTConfig"
