"""`peftlab compare`: several techniques on the same data, model, trainer settings and seed.

Each technique is one ordinary run (resolved, prepared and started exactly as
`peftlab train` does it, then followed with its progress bar), one after the
other. A technique that is refused or whose run fails becomes a failed row of
the report; the others go on. The report (engine.report) is written to
runs/compare-<stamp>/ or --out. `--from-runs` rebuilds a report from runs
that already exist. `--parallel N` trains N runs at once (engine.sweep_launch),
`--backend ray` as Ray tasks (engine.sweep_ray).

--set applies dataset./model./trainer. params to every run; `technique.P=V`
to every compared technique that has a param P; `<technique id>.P=V` to that
technique only, and `<technique id>.<kind>.P=V` to that technique's run only
(e.g. `qlora.trainer.batch_size=16`). A compare recipe is a recipe without `technique` but with
`techniques: [lora, {id: ia3, params: {...}}, ...]`. What each technique runs is worked
out in ui.commands.compare_plan; this module trains the plans and writes the report.
"""

from __future__ import annotations

import shlex
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from kernel.errors import PeftlabError, RecipeError, RunError
from kernel.runs import RunFolder
from ui.commands.compare_plan import CompareRecipe, Planned, load_compare_recipe, plan_runs
from ui.context import CliState, fail, pass_state
from ui.options import out_option, parallel_options, recipe_option, set_option


def run_plans(plans: list[Planned]) -> tuple[list[Any], bool]:
    """Start and follow each planned run in turn; (report rows, interrupted)."""
    from rich.console import Console

    from engine.process import start_run
    from engine.report import failed_row, row_from_run
    from ui.commands.train import follow

    console = Console()
    rows = []
    for index, plan in enumerate(plans, start=1):
        head = f"[bold][{index}/{len(plans)}] {plan.technique}[/bold]"
        if plan.run is None:
            console.print(f"{head}  [red]refused[/red]: {plan.error}")
            rows.append(failed_row(plan.technique, plan.error or "refused", plan.recipe))
            continue
        console.print(f"{head}  run {plan.run.id}")
        try:
            process = start_run(plan.run)
        except PeftlabError as exc:
            plan.run.set_status("failed", error=str(exc), finished=time.time())
            rows.append(row_from_run(plan.run))
            continue
        code = follow(plan.run, process)
        rows.append(row_from_run(plan.run))
        if code == 130:  # Ctrl-C: the rest is not run
            for rest in plans[index:]:
                if rest.run is not None:
                    rest.run.set_status("failed", error="not run: the comparison was interrupted")
                    rows.append(row_from_run(rest.run))
                else:
                    rows.append(failed_row(rest.technique, rest.error or "refused", rest.recipe))
            return rows, True
    return rows, False


def make_launcher(parallel: int, backend: str, address: str | None, cpus: float) -> Any:
    """Where the runs of a --parallel or --backend ray comparison train."""
    if backend == "ray":
        from engine.sweep_ray import RayLauncher

        return RayLauncher(address, cpus)
    from engine.sweep_launch import LocalLauncher

    return LocalLauncher(parallel)


def run_plans_together(
    plans: list[Planned], launcher: Any, parallel: int
) -> tuple[list[Any], bool]:
    """Train the planned runs `parallel` at a time through `launcher`; (report rows, interrupted).

    A line per run as it ends replaces the progress bars; Ctrl-C interrupts every running run.
    """
    import signal

    from rich.console import Console

    from engine.report import failed_row, row_from_run
    from engine.sweep_launch import run_many

    console = Console()
    stopped: list[int] = []

    def stop(signum: int, _frame: Any) -> None:
        stopped.append(signum)
        launcher.stop()

    previous = signal.signal(signal.SIGINT, stop)
    runnable = [p.run for p in plans if p.run is not None]
    console.print(f"training {len(runnable)} run(s), {launcher.describe()}")

    def done(run: RunFolder, code: int) -> None:
        state = run.status().get("state")
        style = "green" if state == "completed" else "red"
        console.print(f"  {run.id}: [{style}]{state}[/{style}]")

    try:
        run_many(runnable, launcher, parallel, on_done=done)
    finally:
        signal.signal(signal.SIGINT, previous)
        launcher.close()
    rows = [
        row_from_run(p.run)
        if p.run is not None
        else failed_row(p.technique, p.error or "refused", p.recipe)
        for p in plans
    ]
    return rows, bool(stopped)


def summary_table(rows: list[Any], title: str) -> Any:
    from rich.table import Table

    from ui.commands.results_text import format_duration

    table = Table(title=title)
    for column in (
        "technique",
        "status",
        "accuracy",
        "trainable %",
        "train time",
        "peak MiB",
        "run / error",
    ):
        table.add_column(column, overflow="fold")
    for row in rows:
        r = row.results

        def fmt(key: str, spec: str, r: dict[str, Any] = r) -> str:
            return "-" if r.get(key) is None else spec.format(r[key])

        style = "green" if row.completed else "red"
        table.add_row(
            row.label,
            f"[{style}]{row.status}[/{style}]",
            fmt("accuracy", "{:.4f}"),
            fmt("trainable_percent", "{:.4f}"),
            format_duration(r.get("train_runtime_s")) if r else "-",
            fmt("peak_memory_mb", "{:,.0f}"),
            row.run_id if row.completed else (row.error or ""),
        )
    return table


def command_line(ctx: click.Context) -> str:
    """The command that reproduces this comparison, rebuilt from the parsed options."""
    words = ["peftlab"]
    root = ctx.find_root().params
    for folder in root.get("plugins_dir") or ():
        words += ["--plugins-dir", str(folder)]
    if root.get("no_entry_points"):
        words.append("--no-entry-points")
    if root.get("runs_dir"):
        words += ["--runs-dir", str(root["runs_dir"])]
    words.append(ctx.info_name or "compare")
    p = ctx.params
    if p.get("from_runs"):
        words += ["--from-runs", *p["run_refs"]]
    for option, key in (
        ("--recipe", "recipe_file"),
        ("--dataset", "dataset"),
        ("--model", "model"),
        ("--techniques", "techniques"),
    ):
        if p.get(key):
            words += [option, str(p[key])]
    for item in p.get("sets") or ():
        words += ["--set", item]
    for option, key in (("--name", "name"), ("--title", "title"), ("--out", "out_dir")):
        if p.get(key):
            words += [option, str(p[key])]
    if (p.get("parallel") or 1) > 1:
        words += ["--parallel", str(p["parallel"])]
    if p.get("backend") == "ray":
        words += ["--backend", "ray"] + (["--address", p["address"]] if p.get("address") else [])
    return shlex.join(words)


@click.command("compare")
@recipe_option(
    "A compare recipe (a recipe with `techniques:`) or a plain recipe (its technique is ignored)."
)
@click.option("--dataset", help="Dataset plugin id (replaces the recipe's).")
@click.option("--model", help="Model plugin id (replaces the recipe's).")
@click.option(
    "--techniques",
    help="Comma-separated technique ids, e.g. lora,qlora,ia3 (replaces the recipe's list).",
)
@set_option(
    "dataset./model./trainer.P=V for every run, technique.P=V for each technique "
    "that has P, <technique>.P=V for one technique, <technique>.<kind>.P=V for one "
    "technique's run (repeatable)."
)
@click.option("--name", help="Name of the comparison (runs are <stamp>-<name>-<technique>).")
@out_option("Report folder (default: <runs dir>/compare-<stamp>).")
@click.option(
    "--from-runs",
    "from_runs",
    is_flag=True,
    help="Build the report from existing runs given as arguments; nothing is trained.",
)
@click.option("--title", help="Title of report.md.")
@parallel_options("run")
@click.argument("run_refs", nargs=-1, metavar="[RUN]...")
@pass_state
def compare_command(
    state: CliState,
    recipe_file: Path | None,
    dataset: str | None,
    model: str | None,
    techniques: str | None,
    sets: tuple[str, ...],
    name: str | None,
    out_dir: Path | None,
    from_runs: bool,
    title: str | None,
    parallel: int,
    backend: str,
    address: str | None,
    cpus_per_run: float,
    run_refs: tuple[str, ...],
) -> None:
    """Train several techniques on the same data and seed, one run each, and write a report.

    \b
    peftlab compare --dataset demo --model minilm --techniques lora,ia3,full
    peftlab compare --recipe my-compare.yaml --set trainer.epochs=1
    peftlab compare --from-runs RUN1 RUN2 ...   (rebuild a report, train nothing)

    A compare recipe is a recipe whose `technique:` is replaced by
    `techniques: [lora, {id: ia3, params: {...}}, ...]`.
    """
    report = Report(out_dir, title, command_line(click.get_current_context()))
    if from_runs:
        if recipe_file or dataset or model or techniques or sets or name:
            fail(
                "--from-runs only reads runs: drop --recipe, --dataset, --model, --techniques, --set, --name"
            )
        report_from_runs(state, run_refs, report)
        return
    if run_refs:
        fail("RUN arguments go with --from-runs")
    kernel = state.kernel()
    runs_dir = kernel.config.resolved_runs_dir()
    try:
        base = compared_recipe(recipe_file, techniques, name)
        technique_ids = list(dict.fromkeys(c.id for c in base.techniques))
        plans = plan_runs(kernel, base, technique_ids, list(sets), dataset, model, runs_dir)
    except PeftlabError as exc:
        fail(exc)
    if all(p.run is None for p in plans):
        fail("no technique could run:\n" + "\n".join(f"  {p.technique}: {p.error}" for p in plans))
    report.console.print(
        f"comparing {len(plans)} technique(s): {', '.join(technique_ids)}  (runs in {runs_dir})"
    )
    rows, interrupted = train_plans(plans, parallel, backend, address, cpus_per_run)
    report.write(rows, runs_dir, f"Technique comparison: {base.name}", f"comparison {base.name}")
    if interrupted:
        raise SystemExit(130)
    raise SystemExit(0 if all(r.completed for r in rows) else 1)


def compared_recipe(recipe_file: Path | None, techniques: str | None, name: str | None) -> Any:
    """The compare recipe with --techniques and --name applied; refused with no technique."""
    base = load_compare_recipe(recipe_file)
    if techniques:
        base = CompareRecipe.model_validate({**base.model_dump(), "techniques": techniques})
    if name:
        base = base.model_copy(update={"name": name})
    if not base.techniques:
        raise RecipeError("no techniques to compare: pass --techniques a,b,... or a compare recipe")
    return base


def train_plans(
    plans: list[Planned], parallel: int, backend: str, address: str | None, cpus: float
) -> tuple[list[Any], bool]:
    """Train the planned runs in turn, or through a launcher with --parallel / --backend ray."""
    if parallel == 1 and backend != "ray":
        return run_plans(plans)
    try:
        launcher = make_launcher(parallel, backend, address, cpus)
    except PeftlabError as exc:
        fail(exc)
    return run_plans_together(plans, launcher, parallel)


def report_from_runs(state: CliState, run_refs: tuple[str, ...], report: Report) -> None:
    """--from-runs: the report of runs that exist; nothing trains."""
    from engine.report import rows_from_runs
    from kernel.config import KernelConfig

    if not run_refs:
        fail("--from-runs needs at least one RUN")
    runs_dir = KernelConfig(runs_dir=state.runs_dir).resolved_runs_dir()
    try:
        runs = [RunFolder.find(runs_dir, ref) for ref in run_refs]
    except RunError as exc:
        fail(exc)
    rows = rows_from_runs(runs)
    report.write(rows, runs_dir, "Technique comparison", f"{len(rows)} run(s)")


class Report:
    """Where the comparison's report goes and how it is titled; printed as it is written."""

    def __init__(self, out_dir: Path | None, title: str | None, command: str) -> None:
        from rich.console import Console

        self.out_dir = out_dir
        self.title = title
        self.command = command
        self.stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        self.console = Console(width=max(Console().width, 120))

    def write(self, rows: list[Any], runs_dir: Path, title: str, table_title: str) -> None:
        """report.md and its files (engine.report), then the summary table and its path."""
        from engine.report import write_report

        folder = self.out_dir or runs_dir / f"compare-{self.stamp}"
        files = write_report(rows, folder, title=self.title or title, command=self.command)
        self.console.print(summary_table(rows, table_title))
        self.console.print(f"report: {files.markdown}")


def register(cli: click.Group) -> None:
    cli.add_command(compare_command)
