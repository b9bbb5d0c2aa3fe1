"""`peftlab train`: resolve a recipe, start the training process, follow it, show the results.

Everything that can be refused (unknown ids, bad params, plugins that do not fit
together) is refused before a model is loaded. Training runs in its own process
(engine.process.start_run); this command only reads the run folder it writes.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import click

from engine.process import stop_run
from kernel.config import RECIPES_DIR
from kernel.errors import PeftlabError, RunError
from kernel.runs import LOCKED_EXIT_CODE, STORAGE_EXIT_BASE, RunFolder
from ui.commands.results_text import format_duration, results_table
from ui.context import CliState, fail, pass_state
from ui.options import recipe_option, set_option

DEFAULT_RECIPE = RECIPES_DIR / "default.yaml"
POLL_S = 0.5
LOG_TAIL_LINES = 30


@click.command("train")
@recipe_option(
    "Recipe YAML (default: manifests/recipes/default.yaml). A run's recipe.yaml works too."
)
@click.option("--dataset", help="Dataset plugin id (replaces the recipe's, resetting its params).")
@click.option("--model", help="Model plugin id.")
@click.option("--technique", help="Technique plugin id.")
@click.option("--trainer", help="Trainer plugin id.")
@set_option("Set one param, e.g. --set technique.r=16 --set trainer.epochs=1 (repeatable).")
@click.option("--name", help="Run name (the run folder is <timestamp>-<name>).")
@click.option(
    "--resume", "resume_ref", metavar="RUN", help="Continue a stopped run from its last checkpoint."
)
@click.option(
    "--nproc",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Processes (torchrun).",
)
@click.option(
    "--detach", is_flag=True, help="Start the run and return; follow it with `peftlab runs`."
)
@click.option(
    "--prepare-only",
    is_flag=True,
    help="Write the run folder and print it without training; start it yourself with "
    "torchrun / accelerate launch -m engine.runner RUN_DIR.",
)
@click.option(
    "--verbose", is_flag=True, help="On failure, show the end of the run's log (tracebacks)."
)
@pass_state
def train_command(
    state: CliState,
    recipe_file: Path | None,
    dataset: str | None,
    model: str | None,
    technique: str | None,
    trainer: str | None,
    sets: tuple[str, ...],
    name: str | None,
    resume_ref: str | None,
    nproc: int,
    detach: bool,
    prepare_only: bool,
    verbose: bool,
) -> None:
    """Train a dataset x model x technique recipe; prints progress and a metrics table."""
    from engine.process import start_run

    kernel = state.kernel()
    runs_dir = kernel.config.resolved_runs_dir()
    if resume_ref:
        if prepare_only:
            fail("--prepare-only makes a new run folder; a stopped run already has one")
        if recipe_file or dataset or model or technique or trainer or sets or name:
            fail(
                "--resume continues a run exactly as it was recorded; drop --recipe/--set/--name and the ids"
            )
        run = _resumable(runs_dir, resume_ref)
        checkpoint = run.latest_checkpoint()
        where = (
            f"from {checkpoint.name}" if checkpoint else "from the start (no checkpoint was saved)"
        )
        click.echo(f"resuming run {run.id} {where}")
        resume = True
    else:
        ids = {"dataset": dataset, "model": model, "technique": technique, "trainer": trainer}
        run = _prepare(kernel, recipe_file, ids, sets, name, runs_dir)
        if prepare_only:
            # the folder alone on stdout, for scripts: RUN_DIR=$(peftlab train --prepare-only)
            click.echo(str(run.path))
            return
        click.echo(f"run {run.id}  ({run.path})")
        resume = False
    # from here on Ctrl-C, SIGTERM and SIGHUP ask to stop the run, even one that is starting
    stop = None if detach else StopRequest().install()
    try:
        process = start_run(run, resume=resume, nproc=nproc)
    except PeftlabError as exc:
        fail(exc)
    if detach:
        click.echo(f"started in the background (pid {process.pid}); log: {run.log_file}")
        return
    raise SystemExit(follow(run, process, verbose, stop))


def _prepare(
    kernel: Any,
    recipe_file: Path | None,
    ids: dict[str, str | None],
    sets: tuple[str, ...],
    name: str | None,
    runs_dir: Path,
) -> RunFolder:
    """Recipe + overrides, resolved against the registry; a run folder only when all is valid."""
    from engine.prepare import prepare_checked
    from kernel.recipe import load_recipe

    try:
        recipe = load_recipe(recipe_file or DEFAULT_RECIPE)
        recipe = recipe.with_overrides(ids, list(sets))
        if name:
            recipe = recipe.model_copy(update={"name": name})
        return prepare_checked(recipe, kernel, runs_dir)
    except PeftlabError as exc:
        fail(exc)
    raise AssertionError("unreachable")  # fail() exits


def _resumable(runs_dir: Path, ref: str) -> RunFolder:
    try:
        run = RunFolder.find(runs_dir, ref)
    except RunError as exc:
        fail(exc)
    status = run.status()
    state = status.get("state")
    if state == "completed":
        fail(f"run {run.id} already completed; nothing to resume")
    if state == "running":
        fail(f"run {run.id} is still running")
    if state == "failed" and not run.resumable():
        fail(
            f"run {run.id} failed: {status.get('error') or 'see its log'}; resuming would fail "
            "the same way: fix the recipe and start a new run"
        )
    return run


# following a run ------------------------------------------------------------------------


class MetricsTail:
    """Reads metrics.jsonl incrementally and keeps the latest training loss and eval accuracy."""

    def __init__(self, run: RunFolder) -> None:
        self.path = run.path / "metrics.jsonl"
        self.offset = 0
        self.loss: float | None = None
        self.eval_accuracy: float | None = None

    def update(self) -> None:
        import json

        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
        except FileNotFoundError:
            return
        end = chunk.rfind(b"\n")  # a line still being written waits for the next poll
        if end < 0:
            return
        self.offset += end + 1
        complete = chunk[: end + 1].decode("utf-8", errors="replace")
        for line in complete.splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record.get("loss"), int | float):
                self.loss = float(record["loss"])
            if isinstance(record.get("eval_accuracy"), int | float):
                self.eval_accuracy = float(record["eval_accuracy"])


def _describe(progress: dict[str, Any], tail: MetricsTail) -> str:
    parts = []
    if progress.get("epoch") is not None:
        parts.append(f"epoch {progress['epoch']:.2f}")
    if tail.loss is not None:
        parts.append(f"loss {tail.loss:.4f}")
    if tail.eval_accuracy is not None:
        parts.append(f"eval acc {tail.eval_accuracy:.3f}")
    if progress.get("eta_s") is not None and progress.get("phase") == "training":
        parts.append(f"eta {format_duration(progress['eta_s'])}")
    return "  ".join(parts)


def follow(
    run: RunFolder,
    process: subprocess.Popen,
    verbose: bool = False,
    stop: StopRequest | None = None,
) -> int:
    """Show the run's progress until its process ends (or a stop is asked for); returns the
    command's exit code."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console()
    tail = MetricsTail(run)
    stop = stop or StopRequest().install()
    columns = (
        TextColumn("[bold]{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
    )
    try:
        with Progress(*columns, console=console, transient=False) as bar:
            task = bar.add_task("starting", total=None, info="")
            while True:
                if stop.requested:
                    raise KeyboardInterrupt
                done = process.poll() is not None
                progress = run.progress()
                tail.update()
                total = progress.get("total_steps")
                bar.update(
                    task,
                    description=str(progress.get("phase") or "starting"),
                    completed=progress.get("step") or 0,
                    total=total or None,
                    info=_describe(progress, tail),
                )
                if done:
                    break
                try:  # wakes as soon as the process ends, not at the next tick
                    process.wait(timeout=POLL_S)
                except subprocess.TimeoutExpired:
                    pass
    except KeyboardInterrupt:
        _stop_followed_run(run, process, console)
        return 130
    finally:
        stop.restore()
    if process.returncode == LOCKED_EXIT_CODE:  # lost a race with another `--resume`
        console.print(f"[red]error:[/red] run {run.id}: another process is training this run")
        return 2
    return report(run, console, process.returncode, verbose)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopRequest:
    """Ctrl-C, SIGTERM and SIGHUP (a timeout, a cancelled CI job, a closed terminal) ask the
    command to stop its run the way Ctrl-C does; the training process has its own session
    and would live on otherwise. The handler only notes the signal: raising from it could
    land between starting the process and following it, and leave the run orphaned."""

    def __init__(self) -> None:
        self.requested: int | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> StopRequest:
        self._previous = {sig: signal.signal(sig, self._note) for sig in STOP_SIGNALS}
        return self

    def _note(self, signum: int, _frame: Any) -> None:
        self.requested = signum

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


def _stop_followed_run(run: RunFolder, process: subprocess.Popen, console: Any) -> None:
    """Stop the run; a second signal must not cut this short and leave the run orphaned."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    _say(console, "[yellow]stopping the training process...[/yellow]")
    stop_run(run, process)
    _say(
        console,
        f"run {run.id} stopped; continue it with: [bold]peftlab train --resume {run.id}[/bold]",
    )


def _say(console: Any, text: str) -> None:
    try:
        console.print(text)
    except OSError:  # the terminal is gone (SIGHUP): the run is stopped all the same
        pass


def report(
    run: RunFolder, console: Any, returncode: int | None = None, verbose: bool = False
) -> int:
    """The metrics table of a completed run, or the one-line reason it failed (the end of its
    log with `verbose`: tracebacks belong to log.txt)."""
    from rich.markup import escape

    status = run.status()
    results = run.results()
    if status.get("state") == "completed" and results is not None:
        console.print(results_table(results, title=f"run {run.id}"))
        console.print(f"adapter: {run.adapter_dir}")
        return 0
    reason = status.get("error") or exit_reason(returncode)
    console.print(
        f"[red]run {run.id} {status.get('state', 'failed')}[/red]: {escape(str(reason))}",
        highlight=False,
    )
    if verbose:
        console.print(f"[dim]last lines of {run.log_file}:[/dim]")
        console.print(escape(log_tail(run)), highlight=False)
    else:
        console.print(f"[dim]full log: {run.log_file} (or rerun with --verbose)[/dim]")
    if run.resumable():
        console.print(f"continue it with: [bold]peftlab train --resume {run.id}[/bold]")
    return 1


def exit_reason(returncode: int | None) -> str:
    """Why a training process ended when its run folder could not say (a full disk)."""
    if returncode is not None and returncode > STORAGE_EXIT_BASE:
        strerror = os.strerror(returncode - STORAGE_EXIT_BASE).lower()
        return f"the run folder could not be written: {strerror}"
    if returncode is not None and returncode < 0:
        return f"the training process was killed by signal {-returncode}"
    return f"the training process ended without recording why (exit code {returncode})"


def log_tail(run: RunFolder, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = run.log_file.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.rstrip().splitlines()[-lines:])


def register(cli: click.Group) -> None:
    cli.add_command(train_command)
