"""LoRA through peft: low-rank updates on the chosen projections; DoRA, rsLoRA, PiSSA, OLoRA, EVA, CorDA and LoRA+ as options.

When the model plugin added tokens to the vocabulary (`add_tokens`), their
embedding rows train too (peft's `trainable_token_indices`) and are saved in
the adapter, so the new tokens learn a meaning and the adapter reloads onto a
base built the same way with the same outputs.

PiSSA and OLoRA start the adapter from the weight's principal directions and
take them out of the base weight (W_res = W - BA). Their adapter is saved
converted to a plain LoRA of rank 2r that applies to the untouched base (peft's
`path_initial_model_for_weight_conversion`), so it loads like any other; so
is CorDA's. EVA and CorDA start from the task's own examples (data_inits.py).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, ClassVar

from sdk import Technique, TechniqueContext, resolve_target_modules

from .data_inits import corda_config, eva_config, initialise_eva, prepare_corda

# peft's task types by peftlab task
PEFT_TASK_TYPES = {
    "sequence-classification": "SEQ_CLS",
    "causal-lm": "CAUSAL_LM",
    "seq2seq": "SEQ_2_SEQ_LM",
}
# the manifest's init_lora_weights choices -> peft's values (True: B = 0, A Kaiming-uniform)
INIT_LORA_WEIGHTS = {
    "default": True,
    "gaussian": "gaussian",
    "pissa": "pissa",
    "olora": "olora",
    "eva": "eva",
    "corda": "corda",
}
# initialisations that change the base weights, so the saved adapter must be converted
RESIDUAL_INITS = {"pissa", "olora", "corda"}
# where apply keeps the adapter as initialised, for the conversion at save time
INITIAL_ADAPTER = "peftlab_initial_adapter"


def peft_task_type(task: str) -> Any:
    from peft import TaskType

    try:
        return TaskType[PEFT_TASK_TYPES[task]]
    except KeyError:
        raise ValueError(f"LoRA has no peft task type for task '{task}'") from None


def keep_initial_adapter(model: Any) -> None:
    """Save the adapter as initialised to a temporary folder that lives as long as the model."""
    folder = tempfile.TemporaryDirectory(prefix="peftlab-lora-initial-")
    config = model.peft_config["default"]
    init = config.init_lora_weights
    # peft's recipe: the initial adapter is saved as a plain LoRA, then converted against
    config.init_lora_weights = True
    model.save_pretrained(folder.name)
    config.init_lora_weights = init
    setattr(model, INITIAL_ADAPTER, folder)


def restore_other_tensors(model: Any, directory: Path) -> None:
    """Put the trained tensors other than lora_A / lora_B back into a converted adapter.

    peft 0.21's conversion of a PiSSA / OLoRA adapter writes only the LoRA
    matrices: the task head (`modules_to_save`), trained biases, DoRA
    magnitudes and token rows would be lost, and the adapter would not load.
    """
    from peft import get_peft_model_state_dict
    from safetensors.torch import load_file, save_file

    path = Path(directory) / "adapter_model.safetensors"
    converted = load_file(str(path))
    others = {
        name: tensor.detach().contiguous()
        for name, tensor in get_peft_model_state_dict(model).items()
        if "lora_A" not in name and "lora_B" not in name
    }
    save_file({**others, **converted}, str(path), metadata={"format": "pt"})


class LoRA(Technique):
    # LoRA on small encoders needs a much higher rate than full fine-tuning
    default_learning_rate: ClassVar[float] = 2e-3

    def config(self, ctx: TechniqueContext) -> Any:
        from peft import LoraConfig

        p = ctx.params
        # the new classification head (and DistilBERT's pre_classifier) must train and be saved
        heads = list(ctx.facts.classifier_modules) if ctx.task == "sequence-classification" else []
        init = p.get("init_lora_weights", "default")
        return LoraConfig(
            task_type=peft_task_type(ctx.task),
            r=int(p.get("r", 8)),
            lora_alpha=int(p.get("alpha", 16)),
            lora_dropout=float(p.get("dropout", 0.0)),
            target_modules=resolve_target_modules(p.get("target_modules"), ctx.facts),
            bias=p.get("bias", "none"),
            use_dora=bool(p.get("use_dora", False)),
            use_rslora=bool(p.get("use_rslora", False)),
            init_lora_weights=INIT_LORA_WEIGHTS[init],
            eva_config=eva_config(ctx) if init == "eva" else None,
            corda_config=corda_config(ctx) if init == "corda" else None,
            modules_to_save=heads or None,
            # rows of the tokens the model plugin added: trained, and saved with the adapter
            trainable_token_indices=list(ctx.new_token_ids) or None,
        )

    def apply(self, model: Any, ctx: TechniqueContext) -> Any:
        from peft import get_peft_model

        config = self.config(ctx)
        init = ctx.params.get("init_lora_weights")
        if init == "corda":  # the covariances come from the base model, before the adapters
            prepare_corda(model, config, ctx)
        model = get_peft_model(model, config)
        if init == "eva":
            initialise_eva(model, ctx)
        if init in RESIDUAL_INITS:
            keep_initial_adapter(model)
        return model

    def create_optimizer(self, model: Any, args: Any, ctx: TechniqueContext) -> Any | None:
        """LoRA+ (loraplus_lr_ratio > 0): B matrices at ratio x the run's rate, A at the rate."""
        ratio = float(ctx.params.get("loraplus_lr_ratio", 0.0) or 0.0)
        if ratio <= 0:
            return None
        from peft.optimizers import create_loraplus_optimizer
        from transformers import Trainer

        # the optimizer class and its settings (betas, eps) the Trainer would have used
        optimizer_cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
        kwargs.pop("lr", None)
        return create_loraplus_optimizer(
            model,
            optimizer_cls,
            lr=args.learning_rate,
            loraplus_lr_ratio=ratio,
            loraplus_weight_decay=args.weight_decay,
            **kwargs,
        )

    def save(self, model: Any, directory: Path, ctx: TechniqueContext) -> None:
        kwargs: dict[str, Any] = {}
        initial = getattr(model, INITIAL_ADAPTER, None)
        if initial is not None:
            kwargs["path_initial_model_for_weight_conversion"] = initial.name
        if ctx.new_token_ids:
            # The added tokens' rows are in the adapter (trainable tokens); the rest of the grown
            # embedding matrix is the base's, rebuilt the same way by the model plugin, so it is
            # not copied (peft's "auto" would copy it whole after comparing with the base config).
            kwargs["save_embedding_layers"] = False
        model.save_pretrained(str(directory), **kwargs)
        if initial is not None:
            restore_other_tensors(model, directory)
