"""Rebuild a trained model from a run folder: label text with a classifier, or generate
text with a language model (`generate`, `load_generator`).

Used by `peftlab predict` and the app's playground. The model is rebuilt the
way training built it: the run's model bundle loads the base model (with the
technique's load kwargs), then the technique restores its saved weights from
`adapter/`.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kernel.errors import RunError
from kernel.runs import RunFolder

INFO_FILE = "peftlab.json"


@dataclass(frozen=True)
class Prediction:
    text: str
    label: str
    probabilities: dict[str, float]

    @property
    def confidence(self) -> float:
        return self.probabilities[self.label]


class Classifier:
    """A trained model with its tokenizer and label names, ready for `predict`."""

    def __init__(self, model: Any, tokenizer: Any, label_names: list[str], max_length: int) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.label_names = list(label_names)
        self.max_length = max_length

    def predict(self, texts: Sequence[str], batch_size: int = 32) -> list[Prediction]:
        import torch

        texts = [str(t) for t in texts]
        results: list[Prediction] = []
        device = next(self.model.parameters()).device
        for start in range(0, len(texts), batch_size):
            chunk = texts[start : start + batch_size]
            batch = self.tokenizer(
                chunk,
                truncation=True,
                max_length=self.max_length,
                padding=True,
                return_tensors="pt",
            ).to(device)
            with torch.no_grad():
                logits = self.model(**batch).logits
            probs = torch.softmax(logits.float(), dim=-1).cpu().tolist()
            for text, row in zip(chunk, probs, strict=True):
                scores = {name: float(p) for name, p in zip(self.label_names, row, strict=False)}
                label = max(scores, key=scores.__getitem__)
                results.append(Prediction(text, label, scores))
        return results


def run_info(run: RunFolder) -> dict[str, Any]:
    """adapter/peftlab.json of a finished run, or a RunError saying why there is none."""
    path = run.adapter_dir / INFO_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        state = run.status().get("state", "unknown")
        raise RunError(
            f"run has no trained model to load (state: {state}; {path.name} missing)", path=run.path
        ) from None


@contextmanager
def _quiet() -> Iterator[None]:
    """No load reports or progress bars: the base model's missing head is restored right after."""
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


def load_classifier(run_dir: Path | RunFolder) -> Classifier:
    """The trained model of a run, rebuilt from its recorded bundles and adapter/ folder."""
    with _quiet():
        return _load_classifier(run_dir)


def _load_classifier(run_dir: Path | RunFolder) -> Classifier:
    from kernel.runner import load_plugin
    from sdk.hf import load_base_model

    run = run_dir if isinstance(run_dir, RunFolder) else RunFolder(Path(run_dir))
    info = run_info(run)
    record = run.recipe()
    model_handle = load_plugin("model", record["model"], run.path)
    technique_handle = load_plugin("technique", record["technique"], run.path)
    label_names = list(info["label_names"])
    loaded, tctx = load_base_model(model_handle, technique_handle, info["task"], label_names)
    model = technique_handle.instance.load(loaded.model, run.adapter_dir, tctx)
    tokenizer = loaded.tokenizer
    if (run.adapter_dir / "tokenizer_config.json").is_file():
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(run.adapter_dir))
    return Classifier(model, tokenizer, label_names, int(info.get("max_length") or 128))


# --- generation runs (causal-lm, seq2seq) ---

GENERATION_TASKS = ("causal-lm", "seq2seq")


def is_generation_run(run_dir: Path | RunFolder) -> bool:
    """True when the run trained a causal LM or a seq2seq model (it generates text)."""
    run = run_dir if isinstance(run_dir, RunFolder) else RunFolder(Path(run_dir))
    return run_info(run).get("task") in GENERATION_TASKS


class Generator:
    """A trained language model with its tokenizer, ready for `generate`.

    Prompts are wrapped in the dataset's template and generated greedily, as the
    run's ROUGE evaluation did (`sdk.textgen.generate_texts`).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        task: str,
        *,
        template: str | None,
        max_length: int,
        max_new_tokens: int,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.task = task
        self.template = template
        self.max_length = max_length
        self.max_new_tokens = max_new_tokens

    def generate(
        self, prompts: Sequence[str], max_new_tokens: int | None = None, batch_size: int = 8
    ) -> list[str]:
        """The generated text (without the prompt) for each prompt."""
        from sdk.textgen import generate_texts

        return generate_texts(
            self.model,
            self.tokenizer,
            [str(p) for p in prompts],
            self.task,
            template=self.template,
            max_new_tokens=int(max_new_tokens or self.max_new_tokens),
            max_length=self.max_length,
            batch_size=batch_size,
        )


def load_generator(run_dir: Path | RunFolder) -> Generator:
    """The trained language model of a generation run, rebuilt from its bundles and adapter/."""
    with _quiet():
        return _load_generator(run_dir)


def _load_generator(run_dir: Path | RunFolder) -> Generator:
    from kernel.runner import load_plugin
    from sdk.hf import load_base_model

    run = run_dir if isinstance(run_dir, RunFolder) else RunFolder(Path(run_dir))
    info = run_info(run)
    task = info.get("task")
    if task not in GENERATION_TASKS:
        raise RunError(f"run trained a {task} model, which does not generate text", path=run.path)
    record = run.recipe()
    model_handle = load_plugin("model", record["model"], run.path)
    technique_handle = load_plugin("technique", record["technique"], run.path)
    # the model plugin adds the same tokens again (add_tokens), so the adapter fits the base
    loaded, tctx = load_base_model(model_handle, technique_handle, task, [])
    model = technique_handle.instance.load(loaded.model, run.adapter_dir, tctx)
    tokenizer = loaded.tokenizer
    if (run.adapter_dir / "tokenizer_config.json").is_file():
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(run.adapter_dir))
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return Generator(
        model,
        tokenizer,
        task,
        template=info.get("input_template"),
        max_length=int(info.get("max_length") or 512),
        max_new_tokens=int(info.get("max_new_tokens") or 64),
    )


def generate(run_dir: Path | RunFolder, prompt: str, max_new_tokens: int | None = None) -> str:
    """The text a generation run's model writes after `prompt` (the playground's entry point)."""
    return load_generator(run_dir).generate([prompt], max_new_tokens=max_new_tokens)[0]
