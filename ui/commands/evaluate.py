"""`peftlab evaluate RUN... --data FILE_OR_DATASET`: score finished runs on held-out data,
in one process, and say which run to keep."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from kernel.errors import PeftlabError, RecipeError
from kernel.runs import RunFolder
from ui.context import CliState, fail, pass_state

FILE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
GENERATION_METRIC = "rougeL"


def _dataset_record(
    state: CliState, bundle_id: str, sets: tuple[str, ...], first: RunFolder
) -> dict[str, Any]:
    """The bundle as a recipe record: the run's own copy and params when it trained on it."""
    from kernel.params import complete_params, parse_cli_value

    overrides: dict[str, Any] = {}
    for item in sets:
        key, sep, raw = item.partition("=")
        name = key.strip().removeprefix("dataset.")
        if not sep or not name:
            raise RecipeError(f"--set expects [dataset.]PARAM=VALUE, not '{item}'", field="--set")
        overrides[name] = parse_cli_value(raw)
    recorded = first.record().dataset
    if recorded.id == bundle_id:
        folder = first.path / recorded.snapshot if recorded.snapshot else Path(recorded.path)
        return {"id": bundle_id, "path": str(folder), "params": recorded.params | overrides}
    bundle = state.kernel().snapshot.get("dataset", bundle_id)
    params = complete_params(bundle.manifest, overrides)
    return {"id": bundle_id, "path": str(bundle.path), "origin": bundle.origin, "params": params}


def data_source(
    state: CliState, data: str, sets: tuple[str, ...], runs: list[RunFolder], **columns: Any
) -> Any:
    """A file when DATA looks like one, else a dataset bundle id with an optional :SPLIT."""
    from engine.evaluate import DataSource

    path = Path(data).expanduser()
    if path.is_file() or path.suffix.lower() in FILE_SUFFIXES:
        return DataSource(file=path, **columns)
    bundle_id, _, split = data.partition(":")
    record = _dataset_record(state, bundle_id, sets, runs[0])
    return DataSource(dataset=record, split=split or "test", limit=columns.get("limit", 0))


@click.command("evaluate")
@click.argument("run_refs", nargs=-1, required=True, metavar="RUN...")
@click.option("--data", required=True, help="A .csv/.jsonl/.json/.parquet file, or a dataset bundle id with an optional :SPLIT (default test).")  # fmt: skip
@click.option("--set", "sets", multiple=True, metavar="PARAM=VALUE", help="A dataset bundle's param (repeatable).")  # fmt: skip
@click.option("--text-column", default="", help="File column with the input (default text, or the task's prompt/source).")  # fmt: skip
@click.option("--label-column", default="", help="File column with the label or reference (default label, or completion/target).")  # fmt: skip
@click.option("--limit", type=int, default=0, help="Score only the first N rows (0 = all).")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--wrong", "wrong_examples", type=int, default=10, show_default=True, help="Most confidently wrong rows to keep.")  # fmt: skip
@click.option("--max-new-tokens", type=int, default=None, help="Generation: tokens per output (default: the run's).")  # fmt: skip
@click.option("--bertscore-model", default=None, help="BERTScore's scorer: minilm (default, shipped), a bert-score model name or a folder.")  # fmt: skip
@click.option("--bertscore-layer", type=int, default=None, help="The scorer layer BERTScore reads.")  # fmt: skip
@click.option("--no-bertscore", is_flag=True, help="Generation: skip BERTScore.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_state
def evaluate_command(state: CliState, run_refs: tuple[str, ...], data: str, sets: tuple[str, ...], text_column: str, label_column: str, limit: int, batch_size: int, wrong_examples: int, max_new_tokens: int | None, bertscore_model: str | None, bertscore_layer: int | None, no_bertscore: bool, as_json: bool) -> None:  # fmt: skip
    """Score RUN(s) on held-out data; results go to each RUN/evaluations/<data-hash>.json."""
    from engine.evaluate import EvaluateOptions, evaluate_runs
    from ui.commands.runs import _runs_dir

    options = EvaluateOptions(
        batch_size=batch_size,
        wrong_examples=wrong_examples,
        max_new_tokens=max_new_tokens,
        bertscore_model=bertscore_model,
        bertscore_layer=bertscore_layer,
        bertscore=not no_bertscore,
    )
    try:
        runs = [RunFolder.find(_runs_dir(state), ref) for ref in run_refs]
        columns = {"input_column": text_column, "reference_column": label_column, "limit": limit}
        source = data_source(state, data, sets, runs, **columns)
        found = evaluate_runs(runs, source, options)
    except PeftlabError as exc:
        fail(exc)
    except (OSError, ValueError, RuntimeError) as exc:  # a model or adapter that will not load
        fail(f"cannot evaluate: {exc}", code=1)
    if as_json:
        click.echo(json.dumps([e.to_dict() for e in found], indent=2, default=str))
        return
    _print(found)


def _print(found: list[Any]) -> None:
    from rich.console import Console

    from engine.choose import candidate, choose

    console = Console(width=max(Console().width, 120))
    classification = [e for e in found if e.task == "sequence-classification"]
    generation = [e for e in found if e.task != "sequence-classification"]
    for group, metric, table in (
        (classification, "accuracy", _classification_table),
        (generation, GENERATION_METRIC, _generation_table),
    ):
        if not group:
            continue
        console.print(table(group))
        for evaluation in group:
            for line in _details(evaluation):
                console.print(line, highlight=False)
        runs = {e.run_id: RunFolder(e.path.parent.parent) for e in group if e.path}
        candidates = [
            candidate(e.run_id, _label(runs.get(e.run_id)), _results(runs.get(e.run_id)), e.score(metric))
            for e in group
        ]  # fmt: skip
        console.print(choose(candidates, metric, source=group[0].data).sentence, highlight=False)


def _label(run: RunFolder | None) -> str:
    return run.record().technique.id if run else "?"


def _results(run: RunFolder | None) -> dict[str, Any]:
    return (run.results() or {}) if run else {}


def _classification_table(group: list[Any]) -> Any:
    from rich.table import Table

    table = Table(title=f"{group[0].data} ({group[0].examples} rows, hash {group[0].data_hash})")
    for column in ("run", "accuracy ± s.e. [95 %]", "macro F1", "ECE", "samples/s", "latency ms", "base"):  # fmt: skip
        table.add_column(column, overflow="fold")
    for e in group:
        m = e.metrics
        table.add_row(
            e.run_id,
            str(e.intervals["accuracy"]),
            f"{m['f1_macro']:.4f}",
            f"{m['ece']:.4f}",
            _num(m.get("samples_per_s"), "{:,.1f}"),
            _num(m.get("latency_ms"), "{:,.1f}"),
            "shared" if e.shared_base else "own",
        )
    return table


def _generation_table(group: list[Any]) -> Any:
    from rich.table import Table

    scorer = group[0].scorer
    shown = f"; BERTScore: {scorer['model']} layer {scorer['layer']}" if scorer else ""
    table = Table(title=f"{group[0].data} ({group[0].examples} rows{shown})")
    for column in ("run", "ROUGE-1", "ROUGE-2", "ROUGE-L ± s.e.", "BERTScore F1 ± s.e.", "perplexity", "exact match", "samples/s"):  # fmt: skip
        table.add_column(column, overflow="fold")
    for e in group:
        m, i = e.metrics, e.intervals
        bert = i.get("bertscore_f1")
        table.add_row(
            e.run_id,
            f"{m['rouge1']:.4f}",
            f"{m['rouge2']:.4f}",
            f"{i['rougeL'].value:.4f} ± {i['rougeL'].stderr:.4f}",
            f"{bert.value:.4f} ± {bert.stderr:.4f}" if bert else "-",
            _num(m.get("perplexity"), "{:,.3f}"),
            f"{m['exact_match']:.4f}",
            _num(m.get("samples_per_s"), "{:,.1f}"),
        )
    return table


def _num(value: Any, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def _details(e: Any) -> list[str]:
    lines = [f"[bold]{e.run_id}[/bold] -> {e.path}"]
    if e.per_class:
        lines.append(
            "  per class (P/R/F1, n): "
            + "; ".join(
                f"{c.label} {c.precision:.3f}/{c.recall:.3f}/{c.f1:.3f}, {c.support}"
                for c in e.per_class
            )
        )
        lines.append(
            f"  confusion (rows true, columns predicted, {', '.join(e.labels)}): {e.confusion}"
        )
        for w in e.wrong[:3]:
            lines.append(
                f"  wrong, p={w.confidence:.3f}: {w.predicted} for {w.label}: {w.text[:80]!r}"
            )
    for o in e.outputs[:2]:
        lines.append(f"  {o.input[:50]!r} -> {o.output[:60]!r} (reference {o.reference[:40]!r})")
    lines += [f"  note: {n}" for n in e.notes]
    return lines


def register(cli: click.Group) -> None:
    cli.add_command(evaluate_command)
