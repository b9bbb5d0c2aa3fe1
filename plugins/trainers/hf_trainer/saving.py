"""Writing a trained run's adapter folder: the technique's weights, the tokenizer, peftlab.json.

peftlab.json records what `peftlab predict` and the playground need to rebuild the
model and feed it the way training did (the task, labels, lengths, templates).
"""

from __future__ import annotations

import json
import os
from typing import Any

from sdk import RunContext

from . import measures

INFO_FILE = "peftlab.json"


def base_model_source(model: Any) -> str | None:
    """Where the base weights came from (a folder or hub id), for people loading the adapter by hand."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return getattr(getattr(base, "config", None), "name_or_path", None) or None


def save_adapter(
    ctx: RunContext,
    model: Any,
    tokenizer: Any,
    tctx: Any,
    info: dict[str, Any],
) -> int:
    """Technique weights, then tokenizer and peftlab.json (the task's `info` keys plus what
    rebuilds the model); returns the weights' size on disk."""
    target = ctx.adapter_dir
    target.mkdir(parents=True, exist_ok=True)
    ctx.technique.instance.save(model, target, tctx)
    weights_bytes = measures.folder_bytes(target)
    tokenizer.save_pretrained(str(target))
    record = {
        "format": 1,
        "task": tctx.task,
        **info,
        "model": {"id": ctx.model.id, "params": ctx.model.params, "base": base_model_source(model)},
        "technique": {"id": ctx.technique.id, "params": ctx.technique.params},
        "dataset": {"id": ctx.dataset.id, "params": ctx.dataset.params},
    }
    # written aside and renamed: a reader never sees half a file
    tmp = target / f".{INFO_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(target / INFO_FILE)
    return weights_bytes
