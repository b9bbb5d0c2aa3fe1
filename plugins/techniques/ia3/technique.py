"""(IA)^3: learned rescaling vectors, through peft's IA3Config.

peft matches a name like `output.dense` against every module whose name ends
with it, which on BERT also hits `attention.output.dense`. The automatic
targets are therefore regular expressions anchored on the layer index, which
peft matches against the full module name.
"""

from __future__ import annotations

from typing import Any

from sdk import AUTO, TechniqueContext
from sdk.peft_utils import PeftTechnique, peft_task_type

# architecture -> (target regex, feed-forward regex)
AUTO_TARGETS = {
    "bert": (
        r".*\.layer\.\d+\.(attention\.self\.key|attention\.self\.value|output\.dense)",
        r".*\.layer\.\d+\.output\.dense",
    ),
    "roberta": (
        r".*\.layer\.\d+\.(attention\.self\.key|attention\.self\.value|output\.dense)",
        r".*\.layer\.\d+\.output\.dense",
    ),
    "distilbert": (
        r".*\.layer\.\d+\.(attention\.k_lin|attention\.v_lin|ffn\.lin2)",
        r".*\.layer\.\d+\.ffn\.lin2",
    ),
    # GPT-2 fuses query, key and value in c_attn (all three are rescaled); c_proj exists in
    # both the attention and the MLP, only the MLP's is a feed-forward layer
    "gpt2": (r".*\.h\.\d+\.(attn\.c_attn|mlp\.c_proj)", r".*\.h\.\d+\.mlp\.c_proj"),
    # T5 as peft's own defaults: keys, values and the feed-forward output wo (self- and
    # cross-attention alike)
    "t5": (r".*\.block\.\d+\..*\.(k|v|wo)", r".*\.block\.\d+\..*\.wo"),
}


def _names(value: Any) -> list[str] | None:
    if value in (None, AUTO, [AUTO]):
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value)


def automatic_targets(ctx: TechniqueContext) -> tuple[Any, Any]:
    """(targets, feed-forward targets) when both params are auto.

    The anchored patterns above where the architecture has them; else peft's own
    per-model-type defaults (None lets peft choose) when peft knows the model type;
    else the model's facts: its default targets (the query and value projections)
    with its last feed-forward layer, which is also the one rescaled on its input.
    """
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as PEFT

    facts = ctx.facts
    if facts.architecture in AUTO_TARGETS:
        return AUTO_TARGETS[facts.architecture]
    if facts.architecture in PEFT:
        return None, None
    if not facts.default_target_modules or not facts.feedforward_modules:
        raise ValueError(
            f"IA3 has no automatic targets for architecture {facts.architecture} (the model "
            "declares no default targets or feed-forward modules); set target_modules and "
            "feedforward_modules"
        )
    output = facts.feedforward_modules[-1]
    return [*facts.default_target_modules, output], [output]


class IA3(PeftTechnique):
    # MiniLM, 1 epoch of rotten tomatoes, batch 32, validation accuracy (x/y: two seeds):
    # 3e-3 .75, 1e-2 .79/.79, 3e-2 .80/.79, 1e-1 .77
    default_learning_rate = 3e-2

    def targets(self, ctx: TechniqueContext) -> tuple[Any, Any]:
        """(target_modules, feedforward_modules) as peft takes them."""
        targets = _names(ctx.params["target_modules"])
        feedforward = _names(ctx.params["feedforward_modules"])
        if targets is None:
            if feedforward is not None:
                raise ValueError("feedforward_modules needs explicit target_modules too")
            return automatic_targets(ctx)
        if feedforward is None:
            # explicit targets: the model's feed-forward layers among them
            feedforward = [t for t in targets if t in ctx.facts.feedforward_modules]
        missing = [f for f in feedforward if f not in targets]
        if missing:
            raise ValueError(
                f"feedforward_modules {missing} are not in target_modules {targets}: "
                "IA3 only rescales layers it targets"
            )
        return targets, feedforward

    def peft_config(self, model: Any, ctx: TechniqueContext) -> Any:
        from peft import IA3Config

        targets, feedforward = self.targets(ctx)
        return IA3Config(
            task_type=peft_task_type(ctx),
            target_modules=targets,
            feedforward_modules=feedforward,
        )
