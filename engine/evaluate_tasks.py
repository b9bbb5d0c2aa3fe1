"""Scoring one loaded run on held-out rows: a classifier's predictions, or a language
model's generations, with speed measured on the way.

Speed: `samples_per_s` is the rows scored over the wall time of the batched pass
(batch `batch_size`); `latency_ms` is the median time of one row alone, over the
first `latency_samples` rows after one warm-up call.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.evaluate_data import EvalData
from engine.evaluate_models import LoadedRun
from engine.evaluate_results import GeneratedOutput, RunEvaluation, WrongExample
from engine.metrics import (
    classification_scores,
    confidently_wrong,
    exact_matches,
    mean_interval,
    rouge_per_example,
)


@dataclass(frozen=True)
class EvaluateOptions:
    """How `evaluate_runs` scores: batch size, how many wrong examples and timings to keep,
    generation length and BERTScore's scorer (None: the shipped MiniLM)."""

    batch_size: int = 32
    wrong_examples: int = 10
    latency_samples: int = 8
    max_new_tokens: int | None = None
    bertscore_model: str | None = None
    bertscore_layer: int | None = None
    bertscore: bool = True


def _latency_ms(call: Callable[[str], Any], inputs: Sequence[str], count: int) -> float | None:
    sample = list(inputs[:count])
    if not sample:
        return None
    call(sample[0])  # the first call pays for lazy set-up
    times = []
    for text in sample:
        started = time.perf_counter()
        call(text)
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def score_classification(
    loaded: LoadedRun, data: EvalData, options: EvaluateOptions
) -> RunEvaluation:
    from engine.inference import Classifier

    names = [str(n) for n in loaded.info["label_names"]]
    labels = data.label_ids(names)
    max_length = int(loaded.info.get("max_length") or 128)
    classifier = Classifier(loaded.model, loaded.tokenizer, names, max_length)
    started = time.perf_counter()
    predictions = classifier.predict(data.inputs, batch_size=options.batch_size)
    elapsed = time.perf_counter() - started
    probabilities = np.array([[p.probabilities[n] for n in names] for p in predictions])
    latency = _latency_ms(lambda t: classifier.predict([t]), data.inputs, options.latency_samples)
    scores = classification_scores(labels, probabilities, names)
    wrong = [
        WrongExample(data.inputs[row], names[labels[row]], names[predicted], confidence)
        for row, predicted, confidence in confidently_wrong(
            labels, probabilities, options.wrong_examples
        )
    ]
    accuracy = scores.accuracy
    metrics = {
        "accuracy": accuracy.value,
        "accuracy_stderr": accuracy.stderr,
        "accuracy_low": accuracy.low,
        "accuracy_high": accuracy.high,
        "f1_macro": scores.f1_macro,
        "ece": scores.ece,
        **_speed(len(labels), elapsed, latency),
    }
    return _evaluation(
        loaded,
        data,
        metrics,
        intervals={"accuracy": accuracy},
        labels=scores.labels,
        per_class=scores.per_class,
        confusion=scores.confusion,
        wrong=wrong,
    )


def _evaluation(
    loaded: LoadedRun, data: EvalData, metrics: dict[str, Any], **scores: Any
) -> RunEvaluation:
    """What every evaluation records besides its task's scores: the run, the data, when."""
    return RunEvaluation(
        run_id=loaded.run.id,
        task=loaded.task,
        data=data.description,
        data_hash=data.content_hash,
        examples=metrics["examples"],
        metrics=metrics,
        notes=list(data.notes),
        shared_base=loaded.shared_base,
        created=time.time(),
        **scores,
    )


def _speed(rows: int, elapsed: float, latency: float | None) -> dict[str, Any]:
    return {
        "examples": rows,
        "samples_per_s": rows / elapsed if elapsed > 0 else None,
        "latency_ms": latency,
    }


def score_generation(
    loaded: LoadedRun, data: EvalData, options: EvaluateOptions, scorer: Any | None
) -> RunEvaluation:
    from engine.inference import generator_for

    generator = generator_for(loaded.model, loaded.tokenizer, loaded.info)
    references = [str(r) for r in data.references]

    def generate(texts: Sequence[str]) -> list[str]:
        return generator.generate(
            texts, max_new_tokens=options.max_new_tokens, batch_size=options.batch_size
        )

    started = time.perf_counter()
    outputs = generate(data.inputs)
    elapsed = time.perf_counter() - started
    latency = _latency_ms(lambda t: generate([t]), data.inputs, options.latency_samples)
    rouge = rouge_per_example(outputs, references)
    exact = exact_matches(outputs, references)
    intervals = {key: mean_interval(values) for key, values in rouge.items()}
    intervals["exact_match"] = mean_interval(exact)
    metrics: dict[str, Any] = {key: interval.value for key, interval in intervals.items()}
    bert = scorer.score(outputs, references) if scorer is not None else None
    if bert is not None:
        intervals["bertscore_f1"] = mean_interval(bert.f1_per_example)
        metrics |= {
            k: v for k, v in bert.as_metrics().items() if k.endswith(("precision", "recall", "f1"))
        }
    metrics["perplexity"] = reference_perplexity(
        loaded, data.inputs, references, options.batch_size
    )
    metrics |= _speed(len(references), elapsed, latency)
    rows = zip(data.inputs, references, outputs, strict=True)
    return _evaluation(
        loaded,
        data,
        metrics,
        intervals=intervals,
        outputs=[
            GeneratedOutput(
                source,
                reference,
                output,
                rouge["rougeL"][i],
                bool(exact[i]),
                bert.f1_per_example[i] if bert is not None else None,
            )
            for i, (source, reference, output) in enumerate(rows)
        ],  # fmt: skip
        scorer={"model": bert.model, "layer": bert.layer} if bert is not None else None,
    )


def reference_perplexity(
    loaded: LoadedRun, inputs: Sequence[str], references: Sequence[str], batch_size: int
) -> float | None:
    """exp of the mean loss per reference token, the inputs encoded as training encoded them."""
    import torch
    from datasets import Dataset
    from transformers import DataCollatorForSeq2Seq

    from sdk.textgen import encode_pairs, pair_columns

    task, info = loaded.task, loaded.info
    source, target = pair_columns(task)
    results = loaded.run.results() or {}
    encoded = encode_pairs(
        Dataset.from_dict({source: list(inputs), target: list(references)}),
        loaded.tokenizer,
        task,
        template=info.get("input_template"),
        max_length=int(info.get("max_length") or 512),
        max_target_length=int(results.get("max_target_length") or 64),
    ).remove_columns(["length"])
    collator = DataCollatorForSeq2Seq(loaded.tokenizer, label_pad_token_id=-100, padding=True)
    device = next(loaded.model.parameters()).device
    total, tokens = 0.0, 0
    loaded.model.eval()
    for start in range(0, len(encoded), batch_size):
        batch = collator([encoded[i] for i in range(start, min(start + batch_size, len(encoded)))])
        labels = batch["labels"]
        # causal LMs predict each token from the ones before it: the first label is never scored
        counted = int((labels[:, 1:] if task == "causal-lm" else labels).ne(-100).sum())
        with torch.no_grad():
            loss = loaded.model(**{k: v.to(device) for k, v in batch.items()}).loss
        total += float(loss) * counted
        tokens += counted
    if not tokens:
        return None
    mean = total / tokens
    return float(np.exp(mean)) if mean < 700 else float("inf")
