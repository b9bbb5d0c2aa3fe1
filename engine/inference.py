"""Use a trained run: label text with a classifier, or generate text with a language model.

Used by `peftlab predict`, the app's playground and the Python API. The model is
rebuilt by engine.rebuild, the way training built it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.rebuild import as_run, load_trained, run_info
from kernel.errors import RunError
from kernel.runs import RunFolder
from sdk.textgen import GENERATION_TASKS

__all__ = [
    "GENERATION_TASKS",
    "Classifier",
    "Generator",
    "Prediction",
    "generate",
    "generator_for",
    "is_generation_run",
    "load_classifier",
    "load_generator",
    "run_info",
]


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


def load_classifier(run_dir: Path | RunFolder) -> Classifier:
    """The trained classifier of a run, rebuilt from its recorded bundles and adapter/ folder."""
    trained = load_trained(run_dir)
    label_names = list(trained.info["label_names"])
    max_length = int(trained.info.get("max_length") or 128)
    return Classifier(trained.model, trained.tokenizer, label_names, max_length)


# --- generation runs (causal-lm, seq2seq) ---


def is_generation_run(run_dir: Path | RunFolder) -> bool:
    """True when the run trained a causal LM or a seq2seq model (it generates text)."""
    return run_info(as_run(run_dir)).get("task") in GENERATION_TASKS


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
    run = as_run(run_dir)
    task = run_info(run).get("task")
    if task not in GENERATION_TASKS:
        raise RunError(f"run trained a {task} model, which does not generate text", path=run.path)
    trained = load_trained(run)
    return generator_for(trained.model, trained.tokenizer, trained.info)


def generator_for(model: Any, tokenizer: Any, info: dict[str, Any]) -> Generator:
    """A Generator over `model` with the generation settings a run recorded in its info."""
    return Generator(
        model,
        tokenizer,
        str(info.get("task")),
        template=info.get("input_template"),
        max_length=int(info.get("max_length") or 512),
        max_new_tokens=int(info.get("max_new_tokens") or 64),
    )


def generate(run_dir: Path | RunFolder, prompt: str, max_new_tokens: int | None = None) -> str:
    """The text a generation run's model writes after `prompt` (the playground's entry point)."""
    return load_generator(run_dir).generate([prompt], max_new_tokens=max_new_tokens)[0]
