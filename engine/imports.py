"""Libraries a training process leaves unloaded when its run cannot use them.

peft imports bitsandbytes whenever it is installed (peft.helpers on import, LoRA's
layer dispatch on apply), which costs a training process about 45 MB of RSS and
0.8 s of start-up on this stack, though only quantized runs use it. A run may use
it when one of its bundles asks for it: `bitsandbytes` among its
`requires.packages`, or `quantizable` among its `requires.provides` (what a
QLoRA-like technique declares), or when its base model is a checkpoint saved
quantized (`quantization_config` in its config.json), or when that cannot be
told (a hub model not in the local cache, a model bundle with weights of its
own). Otherwise the process marks bitsandbytes absent before anything imports
it: a `None` entry in `sys.modules` makes `import` and `importlib.util.find_spec`
report it missing, and transformers and peft take their no-bitsandbytes paths.

Only a process that is the run's alone does this (`python -m engine.runner`), never
one that calls the runner in-process.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from engine.plugins import recorded_manifest
from kernel.manifest import Manifest
from kernel.recipe import RECIPE_KINDS
from kernel.runs import RunFolder
from sdk.hf import ModelLoadError
from sdk.hf_model import model_source

QUANTIZER = "bitsandbytes"
#: the capability a technique that quantizes the base model requires of it
QUANTIZING = "quantizable"


def hold_back_quantizer(run: RunFolder) -> bool:
    """Mark bitsandbytes absent in this process when the run cannot use it; True if it was."""
    if QUANTIZER in sys.modules or run_may_quantize(run):
        return False
    sys.modules[QUANTIZER] = None  # type: ignore[assignment]
    return True


def held_back() -> bool:
    """Whether this process marked bitsandbytes absent."""
    return QUANTIZER in sys.modules and sys.modules[QUANTIZER] is None


def explain_held_back(exc: BaseException) -> BaseException:
    """A failure that asked for the held-back bitsandbytes, with what to declare; else `exc`."""
    if not held_back() or QUANTIZER not in str(exc):
        return exc
    explained = ImportError(
        f"{exc} (bitsandbytes was not loaded for this run: none of its bundles lists it in "
        f"requires.packages or requires '{QUANTIZING}', and the model's config.json has no "
        "quantization_config; declare it in the bundle that quantizes)"
    )
    explained.__cause__ = exc
    return explained


def run_may_quantize(run: RunFolder) -> bool:
    """Whether any of the run's bundles asks for bitsandbytes, or its base model may be
    saved quantized (unknown counts as may)."""
    record = run.recipe()
    manifests = {kind: recorded_manifest(record[kind], run.path) for kind in RECIPE_KINDS}
    if any(asks_for_quantizer(manifest) for manifest in manifests.values()):
        return True
    return checkpoint_may_be_quantized(record["model"].get("params", {}), manifests["model"])


def asks_for_quantizer(manifest: Manifest) -> bool:
    if QUANTIZING in manifest.requires.provides:
        return True
    return any(_requirement_name(entry) == QUANTIZER for entry in manifest.requires.packages)


def checkpoint_may_be_quantized(params: dict[str, Any], manifest: Manifest) -> bool:
    """Whether the model's config.json says it was saved quantized; True when it cannot be read."""
    weights = manifest.model.weights.model_dump() if manifest.model else {}
    try:
        source = model_source(params, weights)
    except ModelLoadError:
        return True
    config = _config_file(source) if source else None
    if config is None:
        return True
    try:
        return "quantization_config" in json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True


def _config_file(source: str) -> Path | None:
    """config.json of a local model folder, or the local hub cache's copy for a hub id."""
    folder = Path(source).expanduser()
    if folder.is_dir():
        return folder / "config.json"
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(source, "config.json")
    except Exception:  # not a valid hub id: the load will say so
        return None
    return Path(cached) if isinstance(cached, str) else None


def _requirement_name(entry: str) -> str:
    # an invalid entry raises (InvalidRequirement is a ValueError): the runner then holds
    # nothing back; the capability graph refuses such a bundle before a run folder exists
    return canonicalize_name(Requirement(entry).name)
