"""How a run's results read in a terminal: the metrics table `peftlab train` prints when a
run completes, and durations as people read them (train, compare and runs use both)."""

from __future__ import annotations

from typing import Any


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _num(value: Any, fmt: str = "{:,.1f}") -> str:
    return "-" if value is None else fmt.format(value)


def results_rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    """(metric, value) pairs in reading order, formatted for people."""
    accuracy = _num(r.get("accuracy"), "{:.4f}")
    if r.get("baseline_accuracy") is not None:
        accuracy += f"  (before training {r['baseline_accuracy']:.4f})"
    f1 = _num(r.get("f1_macro"), "{:.4f}")
    if r.get("baseline_f1_macro") is not None:
        f1 += f"  (before training {r['baseline_f1_macro']:.4f})"
    trainable = "-"
    if r.get("trainable_params") is not None:
        trainable = (
            f"{r['trainable_params']:,} of {r.get('total_params', 0):,} "
            f"({_num(r.get('trainable_percent'), '{:.3f}')} %)"
        )
    memory = _num(r.get("peak_memory_mb"), "{:,.0f} MiB")
    if r.get("peak_memory_kind"):
        memory += f" ({r['peak_memory_kind']})"
    scores = [("accuracy", accuracy), ("macro F1", f1)]
    if r.get("task") in ("causal-lm", "seq2seq"):
        scores = generation_rows(r)
    return [
        ("run", f"{r.get('dataset', '?')} x {r.get('model', '?')} x {r.get('technique', '?')}"),
        *scores,
        ("eval loss", _num(r.get("eval_loss"), "{:.4f}")),
        ("train loss", _num(r.get("train_loss"), "{:.4f}")),
        ("trainable params", trainable),
        ("train time", format_duration(r.get("train_runtime_s"))),
        (
            "train throughput",
            f"{_num(r.get('train_samples_per_s'))} samples/s, "
            f"{_num(r.get('train_tokens_per_s'), '{:,.0f}')} tokens/s",
        ),
        ("inference", f"{_num(r.get('inference_samples_per_s'))} samples/s"),
        ("peak memory", memory),
        ("model in memory", _num(r.get("model_footprint_mb"), "{:,.1f} MiB")),
        ("saved weights", _num(r.get("adapter_size_mb"), "{:,.2f} MiB")),
        ("steps / epochs", f"{r.get('global_step', '-')} / {_num(r.get('epochs'), '{:.2f}')}"),
        (
            "examples",
            f"{r.get('num_train_samples', '-')} train, {r.get('num_eval_samples', '-')} validation",
        ),
        ("learning rate", _num(r.get("learning_rate"), "{:g}")),
    ]


def generation_rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    """ROUGE and perplexity of a causal-lm / seq2seq run, with the values before training."""
    rows = []
    for key, label, fmt in (
        ("rouge1", "ROUGE-1", "{:.4f}"),
        ("rouge2", "ROUGE-2", "{:.4f}"),
        ("rougeL", "ROUGE-L", "{:.4f}"),
        ("perplexity", "perplexity", "{:,.2f}"),
    ):
        value = _num(r.get(key), fmt)
        if r.get(f"baseline_{key}") is not None:
            value += f"  (before training {fmt.format(r[f'baseline_{key}'])})"
        rows.append((label, value))
    return rows


def results_table(results: dict[str, Any], title: str = "results") -> Any:
    from rich.table import Table

    table = Table(title=title, show_header=True)
    table.add_column("metric", style="bold")
    table.add_column("value")
    for metric, value in results_rows(results):
        table.add_row(metric, value)
    return table
