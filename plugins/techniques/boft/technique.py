"""BOFT: an orthogonal transform composed of butterfly factors, through peft's BOFTConfig."""

from __future__ import annotations

from sdk.peft_utils import PeftTechnique


class BOFT(PeftTechnique):
    # MiniLM, 1,000 rows of rotten tomatoes, 1 epoch, batch 32, validation accuracy:
    # 1e-3 .50 (not trained yet); 3e-3 is OFT's best rate (on the CPU BOFT is a one-factor
    # OFT), not measured for BOFT; docs/results/rotten_tomatoes/lr_sweeps_new_techniques.md
    default_learning_rate = 3e-3
    peft_config_name = "BOFTConfig"
