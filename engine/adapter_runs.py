"""A run's saved peft adapter: its files and config, several runs' adapters on one base model
(`AdapterSet`), and the logits probe the merge and combine checks compare."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from engine.inference import Classifier, Prediction
from engine.rebuild import load_base, quiet_loading, run_info
from kernel.errors import PeftlabError
from kernel.runs import RunFolder

#: sentences used when a run's validation split cannot be loaded again
PROBE_TEXTS = (
    "a warm, funny and moving film",
    "dull, slow and far too long",
    "the plot is thin but the cast is superb",
    "I would not watch it again",
)
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
PEFT_PREFIX = "base_model.model."


class AdapterError(PeftlabError):
    """An adapter that cannot be merged, switched or combined; the message says why."""


def technique_of(run: RunFolder) -> str:
    return run.record().technique.id


def adapter_config(run: RunFolder) -> dict[str, Any]:
    """adapter/adapter_config.json of a run whose technique saved a peft adapter."""
    run_info(run)  # an unfinished run is refused first, with its state
    path = run.adapter_dir / ADAPTER_CONFIG
    if not path.is_file():
        technique = technique_of(run)
        why = (
            "its adapter/ folder is already a whole model"
            if technique == "full"
            else "it saves its own weights format, not a peft adapter"
        )
        raise AdapterError(
            f"run {run.id} (technique '{technique}') has no peft adapter: {why}", path=run.path
        )
    return json.loads(path.read_text(encoding="utf-8"))


def logits(classifier: Classifier, texts: Sequence[str]) -> Any:
    """Raw logits of the classifier's model for `texts` (one padded batch, no gradients)."""
    import torch

    batch = classifier.tokenizer(
        list(texts),
        truncation=True,
        max_length=classifier.max_length,
        padding=True,
        return_tensors="pt",
    )
    device = next(classifier.model.parameters()).device
    with torch.no_grad():
        return classifier.model.eval()(**batch.to(device)).logits.float().cpu()


def validation_texts(run: RunFolder, count: int = 8) -> list[str]:
    """The first `count` texts of the run's validation split; fixed sentences if it will not load."""
    from engine.examine import validation_split

    try:
        validation, _section = validation_split(run)
        texts = [str(t) for t in validation["text"][:count]]
    except Exception:  # noqa: BLE001 - the check still runs, on fixed sentences
        texts = []
    return texts or list(PROBE_TEXTS)


# several adapters on one base ------------------------------------------------------------


def adapter_name(run: RunFolder) -> str:
    """The run id as a peft adapter name (module dict keys may not contain dots)."""
    return run.id.replace(".", "_")


def _base_key(run: RunFolder) -> tuple[str, ...]:
    """What must be equal for two runs' adapters to sit on one base model."""
    info = run_info(run)
    record = run.record()
    quantized = record.technique.id == "qlora"
    return (
        record.model.id,
        json.dumps(record.model.params, sort_keys=True, default=str),
        str(info.get("task")),
        json.dumps(info.get("label_names")),
        "4-bit" if quantized else "full precision",
    )


def check_same_base(runs: Sequence[RunFolder]) -> list[dict[str, Any]]:
    """Each run's adapter config, after checking they share base, task, labels and peft type."""
    if len({r.path.resolve() for r in runs}) != len(runs):
        raise AdapterError("the same run is given twice")
    configs = [adapter_config(run) for run in runs]
    keys = [_base_key(run) for run in runs]
    fields = ("model", "model params", "task", "labels", "precision")
    for run, key in zip(runs[1:], keys[1:], strict=True):
        if key != keys[0]:
            differences = "; ".join(
                f"{name}: {theirs} vs {ours}"
                for name, theirs, ours in zip(fields, key, keys[0], strict=True)
                if theirs != ours
            )
            raise AdapterError(
                f"run {run.id} was trained on another base than run {runs[0].id} "
                f"({differences}); adapters can only share the base they were trained on",
                path=run.path,
            )
    types = {c.get("peft_type") for c in configs}
    if len(types) > 1:
        listing = ", ".join(
            f"{r.id}: {c.get('peft_type')}" for r, c in zip(runs, configs, strict=True)
        )
        raise AdapterError(
            f"adapters of different kinds cannot sit on one peft model ({listing}); "
            "pick runs of one technique family"
        )
    return configs


class AdapterSet:
    """One base model, several runs' adapters loaded under their run ids, switched by name."""

    def __init__(self, runs: Sequence[RunFolder]) -> None:
        if not runs:
            raise AdapterError("no runs given")
        self.runs = list(runs)
        check_same_base(self.runs)
        with quiet_loading():
            self._load()

    def _load(self) -> None:
        from peft import PeftModel

        first = self.runs[0]
        loaded, info = load_base(first)
        self.label_names = list(info["label_names"])
        self.names = [adapter_name(r) for r in self.runs]
        model = PeftModel.from_pretrained(
            loaded.model, str(first.adapter_dir), adapter_name=self.names[0]
        )
        for run, name in zip(self.runs[1:], self.names[1:], strict=True):
            model.load_adapter(str(run.adapter_dir), adapter_name=name)
        tokenizer = loaded.tokenizer
        if (first.adapter_dir / "tokenizer_config.json").is_file():
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(str(first.adapter_dir))
        self.classifier = Classifier(
            model, tokenizer, self.label_names, int(info.get("max_length") or 128)
        )

    @property
    def model(self) -> Any:
        return self.classifier.model

    def predict(self, name: str, texts: Sequence[str]) -> list[Prediction]:
        """Switch to adapter `name` (a run id) and classify `texts` with it."""
        if name not in self.names:
            raise AdapterError(f"no adapter '{name}'; loaded: {', '.join(self.names)}")
        self.model.set_adapter(name)
        return self.classifier.predict(texts)
