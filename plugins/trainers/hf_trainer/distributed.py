"""What a run needs to behave the same on one process or many (torchrun, accelerate launch).

The Trainer does the distribution (DDP, FSDP, DeepSpeed through accelerate); this
module answers the few questions the engine asks around it: which rank am I,
which trainable parameters a step leaves without a gradient (DDP must be told),
the largest of a figure over all ranks, and the whole model for saving when FSDP
has sharded it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from sdk.tokenize import padded_batch


def world() -> tuple[int, int]:
    """(rank, world size) as the launcher set them; (0, 1) for a plain process."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def unused_trainable_parameters(model: Any, batch: dict[str, Any]) -> list[str]:
    """Names of trainable parameters that get no gradient from a training step on `batch`.

    DDP waits for a gradient of every trainable parameter unless it is built with
    find_unused_parameters=True, which costs a graph traversal per step; whether a
    technique leaves some unused (a prompt encoder's spare head, a frozen branch)
    depends on the technique and the model, so it is observed rather than assumed.
    The probe runs one forward pass in training mode and asks autograd directly, so
    no `.grad` is touched; the random state is restored afterwards, so dropout masks
    in training are the same as without the probe.
    """
    import torch

    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    if not named:
        return []
    cpu_state = torch.random.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    was_training = model.training
    model.train()
    try:
        outputs = model(**batch)
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs[0]
        grads = torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)
    finally:
        model.train(was_training)
        torch.random.set_rng_state(cpu_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)
    return [name for (name, _), grad in zip(named, grads, strict=True) if grad is None]


def find_unused_parameters(choice: str, model: Any, train_set: Any, collator: Any) -> bool:
    """DDP's find_unused_parameters: the recipe's choice ("always", "never"), or (auto) whether
    a probe step leaves a trainable parameter without a gradient. Off saves a graph traversal
    on every step."""
    if choice in ("always", "never"):
        return choice == "always"
    device = next(model.parameters()).device
    unused = unused_trainable_parameters(model, probe_batch(train_set, collator, device))
    if unused:
        shown = ", ".join(unused[:5]) + (" ..." if len(unused) > 5 else "")
        print(f"ddp: {len(unused)} trainable parameters get no gradient ({shown})", flush=True)
    return bool(unused)


def probe_batch(dataset: Any, collator: Any, device: Any, size: int = 2) -> dict[str, Any]:
    """A small padded training batch from a tokenized split, on `device`."""
    batch = padded_batch(dataset, range(min(size, len(dataset))), collator)
    return {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}


def max_across_ranks(value: float) -> float:
    """The largest `value` over all processes (the value itself outside a process group)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return value
    device = "cpu"
    if dist.get_backend() == "nccl":
        device = f"cuda:{torch.cuda.current_device()}"
    tensor = torch.tensor([float(value)], dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return float(tensor.item())


def rewrap_after_evaluation(trainer: Any) -> None:
    """Let `trainer.train()` wrap the model in DDP after an `evaluate()` that came first.

    evaluate() before train() prepares the model for evaluation only (no DDP wrapper)
    and accelerate marks it as prepared; train() then finds the mark, skips the
    wrapper, and every process trains alone on its shard with no gradient exchange
    (transformers 5.24, accelerate 1.15). FSDP and DeepSpeed are not affected: their
    evaluation already wraps the model for good.
    """
    if trainer.is_fsdp_enabled or trainer.is_deepspeed_enabled:
        return
    model = trainer.model
    if trainer.model_wrapped is model and model.__dict__.pop("_is_accelerate_prepared", False):
        accelerator = trainer.accelerator
        accelerator._models = [m for m in accelerator._models if m is not model]


def gathered_model(trainer: Any, build: Callable[[], Any]) -> Any | None:
    """The trained model with all its weights in one process, for saving; None off rank 0.

    Under FSDP every rank holds only a shard, so saving rank 0's model would write a
    fragment. Every rank must call this (gathering is collective); rank 0 loads the
    full weights into a fresh copy from `build` (the base model with the technique
    applied, as before training), which the technique then saves as it always does.
    """
    state = trainer.accelerator.get_state_dict(trainer.model)
    if not trainer.is_world_process_zero():
        return None
    model = build()
    missing, unexpected = model.load_state_dict(state, strict=False)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    lost = sorted(trainable & set(missing))
    if unexpected or lost:
        raise RuntimeError(
            "gathered weights do not fit a fresh copy of the model: "
            f"unexpected {sorted(unexpected)[:5]}, missing trainable {lost[:5]}"
        )
    return model
