"""`peftlab runs` (what was trained, how it went) and `peftlab predict` (use a trained model)."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from kernel.config import KernelConfig
from kernel.errors import PeftlabError
from kernel.runs import RunFolder, list_runs
from ui.context import CliState, fail, pass_state

STATE_STYLES = {
    "completed": "green",
    "failed": "red",
    "running": "cyan",
    "interrupted": "yellow",
    "pending": "dim",
    "damaged": "magenta",
}


def _runs_dir(state: CliState):  # noqa: ANN202 - a Path
    # listing runs needs no plugin scan
    return KernelConfig(runs_dir=state.runs_dir).resolved_runs_dir()


def run_row(run: RunFolder) -> dict[str, Any]:
    """One line of `peftlab runs`, as data (the table and --json share it); a damaged folder
    is a row with state 'damaged' and its reason as the error."""
    problem = run.damage()
    if problem:
        none = dict.fromkeys(("accuracy", "trainable_percent", "seconds", "step", "total_steps"))
        ids = dict.fromkeys(("dataset", "model", "technique"), "?")
        return {"id": run.id, "state": "damaged", **ids, **none, "error": problem, "held_out": None}
    status = run.status()
    try:
        recipe = run.recipe()
    except PeftlabError:
        recipe = {}
    results = run.results() or {}
    ids = {
        kind: (recipe.get(kind) or {}).get("id", "?") for kind in ("dataset", "model", "technique")
    }
    seconds = results.get("train_runtime_s")
    if seconds is None and status.get("started"):
        seconds = (status.get("finished") or time.time()) - status["started"]
    progress = run.progress() if status.get("state") == "running" else {}
    return {
        "id": run.id,
        "state": status.get("state", "pending"),
        **ids,
        "accuracy": results.get("accuracy"),
        "trainable_percent": results.get("trainable_percent"),
        "seconds": seconds,
        "step": progress.get("step"),
        "total_steps": progress.get("total_steps"),
        "error": status.get("error"),
        "held_out": _held_out(run),
    }


def _held_out(run: RunFolder) -> dict[str, Any] | None:
    """The newest evaluation on held-out data (`peftlab evaluate`), as its headline score."""
    from engine.evaluate_results import read_evaluations

    found = read_evaluations(run)
    if not found:
        return None
    latest = found[0]
    metric = "accuracy" if "accuracy" in latest.metrics else "rougeL"
    score = latest.score(metric)
    return {
        "metric": metric,
        "value": score.value if score else None,
        "stderr": score.stderr if score else None,
        "data": latest.data,
        "data_hash": latest.data_hash,
        "evaluations": len(found),
    }


def _held_out_text(held: dict[str, Any] | None) -> str:
    if not held or held["value"] is None:
        return "-"
    return f"{held['metric']} {held['value']:.4f} ± {held['stderr']:.4f} ({held['data_hash'][:8]})"


@click.command("runs")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--best", "best", metavar="METRIC", default=None, help="Rank completed runs by METRIC (accuracy, f1_macro, rougeL, ...), mark the Pareto front of quality against cost and recommend one.")  # fmt: skip
@click.option("--max-trainable-percent", type=float, default=None, help="With --best: only runs training at most this share of the weights.")  # fmt: skip
@click.option("--max-memory-mb", type=float, default=None, help="With --best: only runs whose peak memory stayed within this many MiB.")  # fmt: skip
@click.option("--max-train-time", type=float, default=None, metavar="S", help="With --best: only runs that trained within S seconds.")  # fmt: skip
@click.option("--data", default=None, help="With --best: score on the held-out evaluation of this file or data hash (peftlab evaluate), not the validation split.")  # fmt: skip
@pass_state
def runs_command(state: CliState, as_json: bool, best: str | None, max_trainable_percent: float | None, max_memory_mb: float | None, max_train_time: float | None, data: str | None) -> None:  # fmt: skip
    """Every run in the runs folder: state, recipe, accuracy, trainable share, time."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from ui.commands.results_text import format_duration

    runs_dir = _runs_dir(state)
    if best:
        from engine.choose import Constraints
        from ui.commands.choose import print_best

        limits = Constraints(max_trainable_percent, max_memory_mb, max_train_time)
        print_best(list_runs(runs_dir), best, limits, data, as_json)
        return
    rows = [run_row(run) for run in list_runs(runs_dir)]
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        click.echo(f"no runs in {runs_dir}; start one with `peftlab train`")
        return
    table = Table(title=f"{len(rows)} run(s) in {runs_dir}")
    columns = ("id", "state", "dataset / model / technique", "accuracy", "trainable %", "time", "held-out")  # fmt: skip
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        style = STATE_STYLES.get(row["state"], "")
        state_text = row["state"]
        if row["state"] == "running" and row["total_steps"]:
            state_text += f" {row['step'] or 0}/{row['total_steps']}"
        table.add_row(
            row["id"],
            f"[{style}]{state_text}[/{style}]" if style else state_text,
            f"{row['dataset']} / {row['model']} / {row['technique']}",
            "-" if row["accuracy"] is None else f"{row['accuracy']:.4f}",
            "-" if row["trainable_percent"] is None else f"{row['trainable_percent']:.3f}",
            format_duration(row["seconds"]),
            _held_out_text(row["held_out"]),
        )
    console = Console(width=max(Console().width, 120))
    console.print(table)
    for row in rows:
        if row["state"] == "damaged":  # the reason, whole: a table cell would fold it
            console.print(f"[magenta]{row['id']} is damaged:[/magenta] {escape(row['error'])}")


@click.command("predict")
@click.argument("run_ref", metavar="RUN")
@click.argument("texts", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_state
def predict_command(state: CliState, run_ref: str, texts: tuple[str, ...], as_json: bool) -> None:
    """Classify TEXTS with the model a run trained, or generate text after each of them for a
    causal-lm / seq2seq run (RUN: id, unique prefix or folder)."""
    from engine.inference import GENERATION_TASKS, load_classifier, load_generator, run_info

    try:
        run = RunFolder.find(_runs_dir(state), run_ref)
        # refuse an unfinished run before loading anything heavy
        if run_info(run).get("task") in GENERATION_TASKS:
            _print_generations(run, load_generator(run), list(texts), as_json)
            return
        classifier = load_classifier(run)
    except PeftlabError as exc:
        fail(exc)
    except (OSError, ValueError, RuntimeError) as exc:  # a model or adapter that will not load
        fail(f"cannot rebuild the model of run {run_ref}: {exc}", code=1)
    predictions = classifier.predict(list(texts))
    if as_json:
        click.echo(
            json.dumps(
                [
                    {"text": p.text, "label": p.label, "probabilities": p.probabilities}
                    for p in predictions
                ],
                indent=2,
            )
        )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"run {run.id}")
    table.add_column("text", overflow="fold")
    table.add_column("label", style="bold")
    for name in classifier.label_names:
        table.add_column(f"p({name})", justify="right")
    for p in predictions:
        table.add_row(
            p.text, p.label, *(f"{p.probabilities.get(n, 0.0):.4f}" for n in classifier.label_names)
        )
    Console(width=max(Console().width, 100)).print(table)


def _print_generations(run: RunFolder, generator: Any, texts: list[str], as_json: bool) -> None:
    outputs = generator.generate(texts)
    if as_json:
        rows = [{"text": t, "generated": g} for t, g in zip(texts, outputs, strict=True)]
        click.echo(json.dumps(rows, indent=2))
        return
    if len(texts) == 1:  # one prompt: just the text, easy to pipe
        click.echo(outputs[0])
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"run {run.id}")
    table.add_column("prompt", overflow="fold")
    table.add_column("generated", overflow="fold", style="bold")
    for text, output in zip(texts, outputs, strict=True):
        table.add_row(text, output)
    Console(width=max(Console().width, 100)).print(table)


def register(cli: click.Group) -> None:
    cli.add_command(runs_command)
    cli.add_command(predict_command)
