"""`peftlab sweep`: search a recipe's params with Optuna; every trial is an ordinary run.

The search space comes from --search (engine.space), bounded by the plugins' declared
params; a value outside them is refused before anything runs. Trials run one at a time,
--parallel N at once on this machine, or as Ray tasks (--backend ray). Everything lives in
the sweep folder (engine.sweep); `--resume FOLDER` continues a stopped or killed sweep.
"""

from __future__ import annotations

import signal
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from kernel.errors import PeftlabError
from ui.context import CliState, fail, pass_state
from ui.options import out_option, parallel_options, recipe_option, set_option


def _base_recipe(recipe_file: Path | None, ids: dict[str, str | None], sets: list[str]) -> Any:
    from kernel.recipe import load_recipe
    from ui.commands.train import DEFAULT_RECIPE

    return load_recipe(recipe_file or DEFAULT_RECIPE).with_overrides(ids, sets)


def _settings(options: dict[str, Any]) -> Any:
    from pydantic import ValidationError

    from engine.sweep import SweepSettings
    from kernel.errors import RecipeError

    recipe = _base_recipe(
        options.pop("recipe_file"),
        {k: options.pop(k) for k in ("dataset", "model", "technique")},
        list(options.pop("sets")),
    )
    name = options.pop("name") or f"sweep-{recipe.name}"
    if options["direction"] is None:
        options["direction"] = "minimize" if "loss" in options["metric"] else "maximize"
    try:
        return SweepSettings(
            name=name, recipe=recipe, search=list(options.pop("search")), **options
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        raise RecipeError(err["msg"], field=".".join(map(str, err["loc"]))) from None


#: what a resumed sweep may change: where and how widely it runs, not what it searches
WHERE_OPTIONS = ("parallel", "backend", "address", "cpus_per_trial", "gpus_per_trial")


def _resumed_settings(folder: Any, ctx: click.Context) -> Any:
    """The stored settings, with --parallel/--backend/--address/--*-per-trial given now."""
    from click.core import ParameterSource

    given = {
        name for name in ctx.params if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE
    } - {"resume_dir"}
    refused = sorted(given - set(WHERE_OPTIONS))
    if refused:
        fail("--resume continues the sweep as it was started; drop --" + ", --".join(
            r.replace("_", "-") for r in refused
        ))  # fmt: skip
    settings = folder.settings()
    if given:
        settings = settings.model_copy(update={k: ctx.params[k] for k in given})
        folder.write_settings(settings)
    return settings


def _interruptible(runner: Any) -> None:
    """Ctrl-C or SIGTERM: stop the running trials (they resume with --resume), then report."""

    def stop(signum: int, _frame: Any) -> None:
        click.echo("stopping the sweep: interrupting running trials", err=True)
        runner.stop()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


def _summary(report: Any, settings: Any, keys: list[str]) -> Any:
    from rich.table import Table

    table = Table(title=f"sweep {settings.name}")
    for column in ("trial", "state", settings.metric, *keys, "run"):
        table.add_column(column, overflow="fold")
    best = (report.best or {}).get("trial")
    for row in report.rows:
        cells = [row["trial"], row["state"], row["value"], *(row[k] for k in keys), row["run_id"]]
        text = ["-" if c is None else f"{c:.4g}" if isinstance(c, float) else str(c) for c in cells]
        table.add_row(*text, style="bold green" if row["trial"] == best else None)
    return table


@click.command("sweep")
@recipe_option("Base recipe (default: manifests/recipes/default.yaml).")
@click.option("--dataset", help="Dataset plugin id (replaces the recipe's).")
@click.option("--model", help="Model plugin id (replaces the recipe's).")
@click.option("--technique", help="Technique plugin id (replaces the recipe's).")
@set_option("Fixed param of every trial (repeatable).")
@click.option(
    "--search",
    multiple=True,
    metavar="KIND.PARAM=SPACE",
    help="Searched param: V1,V2,... or LOW..HIGH[:log] (repeatable).",
)
@click.option(
    "--trials", type=click.IntRange(1), help="Trials to run (default: the grid's size; 10)."
)
@click.option(
    "--sampler", type=click.Choice(["grid", "random", "tpe"]), default="tpe", show_default=True
)
@click.option(
    "--metric", default="accuracy", show_default=True, help="Key of results.json to optimise."
)
@click.option(
    "--direction",
    type=click.Choice(["maximize", "minimize"]),
    help="Default: minimize for a loss, else maximize.",
)
@click.option(
    "--prune",
    is_flag=True,
    help="Stop trials below the median at an evaluation "
    "(set trainer.eval_steps so there are several).",
)
@click.option(
    "--prune-startup",
    "prune_startup_trials",
    type=click.IntRange(0),
    default=2,
    show_default=True,
    help="Trials that run to the end before pruning starts.",
)
@click.option("--seed", type=int, default=42, show_default=True, help="Sampler seed.")
@parallel_options("trial")
@click.option(
    "--gpus-per-trial",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Ray: GPUs each trial asks for.",
)
@click.option(
    "--storage",
    help="Optuna storage URL for the study (default: study.db, SQLite, "
    "in the sweep folder), e.g. postgresql://HOST/DB for many nodes.",
)
@click.option(
    "--name", help="Sweep name (default: sweep-<recipe name>; trial runs are <stamp>-<name>-tNNN)."
)
@out_option("Sweep folder (default: <runs dir>/<stamp>-<name>).")
@click.option(
    "--resume",
    "resume_dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Continue the sweep in this folder as it was started.",
)
@pass_state
def sweep_command(state: CliState, resume_dir: Path | None, out_dir: Path | None, **options: Any) -> None:  # fmt: skip
    """Search params with Optuna, one ordinary run per trial, and report the best.

    \b
    peftlab sweep --search technique.r=4,8,16 --search trainer.learning_rate=1e-4..1e-2:log
    peftlab sweep --sampler grid --search technique.r=4,8 --search trainer.learning_rate=1e-3,2e-3
    peftlab sweep --resume runs/20261201-101500-sweep-default
    """
    from engine.sweep import SweepFolder, check, create_folder

    kernel = state.kernel()
    try:
        if resume_dir is not None:
            folder = SweepFolder(resume_dir)
            settings = _resumed_settings(folder, click.get_current_context())
        else:
            settings = _settings(options)
            check(kernel, settings)  # bounds, ids and params refused before a folder exists
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            runs_dir = kernel.config.resolved_runs_dir()
            folder = create_folder(out_dir or runs_dir / f"{stamp}-{settings.name}", settings)
    except PeftlabError as exc:
        fail(exc)
    click.echo(f"sweep folder: {folder.path}")
    _run_and_report(kernel, folder, settings)


def _run_and_report(kernel: Any, folder: Any, settings: Any) -> None:
    from rich.console import Console

    from engine.space import bind
    from engine.sweep import SweepInterrupted, run_sweep
    from engine.sweep_report import write_sweep_report

    interrupted = False
    try:
        study = run_sweep(kernel, folder, say=click.echo, on_runner=_interruptible)
    except SweepInterrupted:
        interrupted = True
        study = _reopen(folder, settings, kernel)
    except PeftlabError as exc:
        fail(exc)
    keys = bind(settings.search, settings.recipe, kernel.snapshot).keys
    report = write_sweep_report(study, folder.path, settings, keys)
    Console(width=120).print(_summary(report, settings, keys))
    if report.best:
        click.echo(
            f"best: trial {report.best['trial']} {settings.metric} {report.best['value']:.4f}"
        )
        click.echo(f"its recipe: {report.files['best_recipe']}")
    click.echo(f"report: {report.files['markdown']}")
    if interrupted:
        click.echo(f"stopped; continue with: peftlab sweep --resume {folder.path}")
        raise SystemExit(130)
    raise SystemExit(0 if report.best else 1)


def _reopen(folder: Any, settings: Any, kernel: Any) -> Any:
    from engine.sweep import check, open_study

    return open_study(folder, settings, check(kernel, settings))


def register(cli: click.Group) -> None:
    cli.add_command(sweep_command)
