"""`peftlab runs --best METRIC`: the ranking, the Pareto front and the recommendation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from kernel.errors import PeftlabError
from kernel.runs import RunFolder
from ui.context import fail


def data_hashes(runs: list[RunFolder], data: str | None) -> str | dict[str, str] | None:
    """The evaluation each run is scored on: a file's content hash per run task, or a hash."""
    if not data:
        return None
    path = Path(data).expanduser()
    if not path.is_file():
        return data  # a data hash (or its prefix) as `peftlab evaluate` printed it
    from engine.evaluate_data import DataSource, load_eval_data
    from engine.rebuild import run_task

    hashes, by_task = {}, {}
    for run in runs:
        try:
            task = run_task(run)
        except PeftlabError:
            continue  # unfinished: not ranked anyway
        if task not in by_task:
            by_task[task] = load_eval_data(DataSource(file=path), task, run).content_hash
        hashes[run.id] = by_task[task]
    return hashes


def print_best(
    runs: list[RunFolder], metric: str, limits: Any, data: str | None, as_json: bool
) -> None:
    from engine.choose import candidates_from_runs, choose

    try:
        hashes = data_hashes(runs, data)
        source = "validation split" if data is None else f"held-out data {data}"
        choice = choose(candidates_from_runs(runs, metric, hashes), metric, limits, source=source)
    except PeftlabError as exc:
        fail(exc)
    if as_json:
        click.echo(json.dumps(choice.to_dict(), indent=2, default=str))
        return
    _table(choice)
    click.echo(choice.sentence)


def _table(choice: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    from engine.choose import COSTS

    table = Table(title=f"runs by {choice.metric} ({choice.source}); * = Pareto front of quality vs cost")  # fmt: skip
    for column in ("rank", "run", "technique", f"{choice.metric} ± s.e.", *COSTS.values(), "front", "note"):  # fmt: skip
        table.add_column(column, overflow="fold")
    for c in choice.candidates:
        score = "-" if c.score is None else f"{c.score.value:.4f} ± {c.score.stderr:.4f}"
        note = c.excluded or ("tie with the best" if c.tied_with_best and c.rank != 1 else "")
        if choice.recommended is c:
            note = "recommended" + (f"; {note}" if note else "")
        costs = ["-" if c.costs.get(k) is None else f"{c.costs[k]:,.4g}" for k in COSTS]
        table.add_row(
            str(c.rank or "-"), c.run_id, c.label, score, *costs, "*" if c.on_front else "", note
        )
    Console(width=max(Console().width, 140)).print(table)
