"""Rebuild a run's models from its folder: the one place that does it.

The base model is built the way training built it: the run's model bundle
loads it (with the technique's load kwargs, e.g. 4-bit for QLoRA), then the
run's technique restores its saved weights from `adapter/`. Inference, export,
adapter switching and combining, evaluation and the playground all call these.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.plugins import load_plugin
from engine.weights import check_saved_weights
from kernel.errors import RunError
from kernel.runs import RunFolder
from sdk.textgen import GENERATION_TASKS

INFO_FILE = "peftlab.json"


def as_run(run: Path | str | RunFolder) -> RunFolder:
    return run if isinstance(run, RunFolder) else RunFolder(Path(run))


def run_info(run: RunFolder) -> dict[str, Any]:
    """adapter/peftlab.json of a finished run, or a RunError saying why there is none."""
    path = run.adapter_dir / INFO_FILE
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        state = run.status().get("state", "unknown")
        raise RunError(
            f"run has no trained model to load (state: {state}; {path.name} missing)", path=run.path
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunError(f"cannot read {path.name}: {exc}", path=run.path) from None
    if not isinstance(info, dict):
        raise RunError(f"{path.name} is not a JSON object", path=run.path)
    return info


def run_task(run: RunFolder) -> str:
    return str(run_info(run).get("task") or "sequence-classification")


@contextmanager
def quiet_loading() -> Iterator[None]:
    """No load reports or progress bars: a base model's missing head is expected."""
    import transformers

    logging = transformers.utils.logging
    level = logging.get_verbosity()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        logging.set_verbosity(level)
        logging.enable_progress_bar()


def load_base(run: RunFolder, *, seeded: bool = False) -> tuple[Any, dict[str, Any]]:
    """A fresh base model (`sdk.context.LoadedModel`) for a run, loaded as its technique
    wants it, and the run's info. `seeded`: with the run's seed, so a new classification
    head starts where the run's started (the playground's "before" model)."""
    loaded, _, info = _load_base(run, seeded=seeded)
    return loaded, info


def _load_base(run: RunFolder, *, seeded: bool = False) -> tuple[Any, Any, dict[str, Any]]:
    from sdk.hf import load_base_model

    info = run_info(run)
    record = run.recipe()
    if seeded:
        import transformers

        transformers.set_seed(int(record.get("trainer", {}).get("params", {}).get("seed", 42)))
    task = str(info.get("task") or "sequence-classification")
    # generation runs: the model plugin adds the run's tokens again, so the adapter fits
    labels = [] if task in GENERATION_TASKS else list(info.get("label_names") or [])
    loaded, tctx = load_base_model(
        load_plugin("model", record["model"], run.path),
        load_plugin("technique", record["technique"], run.path),
        task,
        labels,
    )
    return loaded, tctx, info


@dataclass
class TrainedModel:
    """A run's trained model with the tokenizer it was trained with and the run's info."""

    model: Any
    tokenizer: Any
    info: dict[str, Any]

    @property
    def task(self) -> str:
        return str(self.info.get("task") or "sequence-classification")


def load_trained(run: Path | str | RunFolder) -> TrainedModel:
    """The run's trained model: its base rebuilt, then its technique's saved weights."""
    run = as_run(run)
    check_saved_weights(run.adapter_dir)  # safetensors only, and intact: before any loading
    with quiet_loading():
        loaded, tctx, info = _load_base(run)
        technique = load_plugin("technique", run.recipe()["technique"], run.path)
        model = technique.instance.load(loaded.model, run.adapter_dir, tctx)
        return TrainedModel(model, _saved_tokenizer(run) or loaded.tokenizer, info)


def _saved_tokenizer(run: RunFolder) -> Any | None:
    """The tokenizer the run saved next to its adapter (it may have added tokens)."""
    if not (run.adapter_dir / "tokenizer_config.json").is_file():
        return None
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(run.adapter_dir))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer
