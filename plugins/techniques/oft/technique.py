"""OFT: a learned block-diagonal orthogonal transform of each target layer, through peft's OFTConfig."""

from __future__ import annotations

from sdk.peft_utils import PeftTechnique


class OFT(PeftTechnique):
    # MiniLM, 1,000 rows of rotten tomatoes, 1 epoch, batch 32, validation accuracy:
    # 1e-3 .52, 3e-3 .74, 1e-2 .71; docs/results/rotten_tomatoes/lr_sweeps_new_techniques.md
    default_learning_rate = 3e-3
    peft_config_name = "OFTConfig"
