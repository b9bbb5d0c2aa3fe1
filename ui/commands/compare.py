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
`techniques: [lora, {id: ia3, params: {...}}, ...]`.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kernel.errors import PeftlabError, RecipeError, RunError
from kernel.recipe import RECIPE_KINDS, PluginChoice, Recipe
from kernel.runs import RunFolder
from ui.context import CliState, fail, pass_state
from ui.options import out_option, parallel_options, recipe_option, set_option


class CompareRecipe(BaseModel):
    """A recipe whose technique is a list: the file format of a compare recipe."""

    model_config = ConfigDict(extra="forbid")

    name: str = "compare"
    description: str = ""
    dataset: PluginChoice
    model: PluginChoice
    trainer: PluginChoice = Field(default_factory=lambda: PluginChoice(id="hf_trainer"))
    techniques: list[PluginChoice] = Field(default_factory=list)

    @field_validator("techniques", mode="before")
    @classmethod
    def _ids_as_choices(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        if isinstance(value, list):
            return [{"id": v.strip()} if isinstance(v, str) else v for v in value]
        return value

    def recipe_for(self, technique: PluginChoice) -> Recipe:
        return Recipe(
            name=f"{self.name}-{technique.id}",
            description=self.description,
            dataset=self.dataset,
            model=self.model,
            technique=technique,
            trainer=self.trainer,
        )


def load_compare_recipe(path: Path | None) -> CompareRecipe:
    """A compare recipe file, or a plain recipe (its technique is dropped), or the default recipe."""
    from kernel.recipe import load_recipe
    from ui.commands.train import DEFAULT_RECIPE

    path = Path(path or DEFAULT_RECIPE)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecipeError("recipe file not found", path=path) from None
    except yaml.YAMLError as exc:
        raise RecipeError(f"not valid YAML: {exc}", path=path) from None
    if isinstance(data, dict) and "techniques" in data:
        try:
            return CompareRecipe.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise RecipeError(err["msg"], path=path, field=".".join(map(str, err["loc"]))) from None
    plain = load_recipe(path)
    return CompareRecipe(
        name=plain.name if path != DEFAULT_RECIPE else "compare",
        description=plain.description,
        dataset=plain.dataset,
        model=plain.model,
        trainer=plain.trainer,
    )


def split_sets(
    sets: list[str], techniques: list[str], declared: dict[str, set[str]]
) -> dict[str, list[str]]:
    """Each technique's own list of KIND.PARAM=VALUE overrides (see the module's docstring)."""
    per_technique: dict[str, list[str]] = {t: [] for t in techniques}
    for item in sets:
        key, sep, raw = item.partition("=")
        kind, dot, param = key.strip().partition(".")
        if not sep or not dot or not param:
            raise RecipeError(f"--set expects KIND.PARAM=VALUE; got '{item}'", field="--set")
        if kind in RECIPE_KINDS and kind != "technique":
            for t in techniques:
                per_technique[t].append(item)
        elif kind == "technique":
            takers = [t for t in techniques if param in declared[t]]
            if not takers:
                raise RecipeError(
                    f"no compared technique has a param '{param}' ({', '.join(techniques)})",
                    field="--set",
                )
            for t in takers:
                per_technique[t].append(item)
        elif kind in per_technique:
            sub, dot2, rest = param.partition(".")
            if dot2 and sub in RECIPE_KINDS:  # lora.trainer.learning_rate=...: one run's trainer
                per_technique[kind].append(f"{sub}.{rest}={raw}")
            else:
                per_technique[kind].append(f"technique.{param}={raw}")
        else:
            raise RecipeError(
                f"--set {item}: KIND must be dataset, model, trainer, technique or one of the "
                f"compared techniques ({', '.join(techniques)})",
                field="--set",
            )
    return per_technique


@dataclass
class Planned:
    """A technique's run folder once its recipe resolved, or why it did not."""

    technique: str
    run: RunFolder | None = None
    error: str | None = None
    recipe: dict[str, Any] = field(default_factory=dict)


def plan_runs(
    kernel: Any,
    base: CompareRecipe,
    technique_ids: list[str],
    sets: list[str],
    dataset: str | None,
    model: str | None,
    runs_dir: Path,
) -> list[Planned]:
    """Resolve and check each technique's recipe; a run folder for those that pass.

    Mistakes that concern every run (an unknown id, a malformed --set, a pre-flight
    problem every technique shares) raise before any run folder exists; a technique
    that does not fit the dataset and model, or refuses a param, is kept as a failed
    plan so the others still run.
    """
    from engine.prepare import check_each
    from kernel.jobs import prepare_run

    recipes = technique_recipes(kernel.snapshot, base, technique_ids, sets, dataset, model)
    checked = check_each(recipes, kernel)  # every check before the first run folder
    return [
        Planned(technique=tid, error=found.render(), recipe=recipe.model_dump())
        if isinstance(found, PeftlabError)
        else Planned(technique=tid, run=prepare_run(found, runs_dir), recipe=found.as_record())
        for tid, recipe, found in zip(technique_ids, recipes, checked, strict=True)
    ]


def technique_recipes(
    snapshot: Any,
    base: CompareRecipe,
    technique_ids: list[str],
    sets: list[str],
    dataset: str | None,
    model: str | None,
) -> list[Recipe]:
    """One ordinary recipe per compared technique, its share of --set applied."""
    for tid in technique_ids:
        snapshot.get("technique", tid)  # unknown ids are refused before anything runs
    for kind, bundle_id in (
        ("dataset", dataset or base.dataset.id),
        ("model", model or base.model.id),
    ):
        snapshot.get(kind, bundle_id)
    declared = {t: set(snapshot.get("technique", t).manifest.params) for t in technique_ids}
    per_technique = split_sets(sets, technique_ids, declared)
    choices = {c.id: c for c in base.techniques}
    return [
        base.recipe_for(choices.get(tid, PluginChoice(id=tid))).with_overrides(
            {"dataset": dataset, "model": model}, per_technique[tid]
        )
        for tid in technique_ids
    ]


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

    from ui.commands.train import format_duration

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
    from rich.console import Console

    from engine.report import rows_from_runs, write_report
    from kernel.config import KernelConfig

    console = Console(width=max(Console().width, 120))
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    if from_runs:
        if recipe_file or dataset or model or techniques or sets or name:
            fail(
                "--from-runs only reads runs: drop --recipe, --dataset, --model, --techniques, --set, --name"
            )
        if not run_refs:
            fail("--from-runs needs at least one RUN")
        runs_dir = KernelConfig(runs_dir=state.runs_dir).resolved_runs_dir()
        try:
            runs = [RunFolder.find(runs_dir, ref) for ref in run_refs]
        except RunError as exc:
            fail(exc)
        rows = rows_from_runs(runs)
        files = write_report(
            rows,
            out_dir or runs_dir / f"compare-{stamp}",
            title=title or "Technique comparison",
            command=command_line(click.get_current_context()),
        )
        console.print(summary_table(rows, f"{len(rows)} run(s)"))
        console.print(f"report: {files.markdown}")
        return
    if run_refs:
        fail("RUN arguments go with --from-runs")

    kernel = state.kernel()
    runs_dir = kernel.config.resolved_runs_dir()
    try:
        base = load_compare_recipe(recipe_file)
        if techniques:
            base = CompareRecipe.model_validate({**base.model_dump(), "techniques": techniques})
        if name:
            base = base.model_copy(update={"name": name})
        technique_ids = list(dict.fromkeys(c.id for c in base.techniques))
        if not technique_ids:
            raise RecipeError(
                "no techniques to compare: pass --techniques a,b,... or a compare recipe"
            )
        plans = plan_runs(kernel, base, technique_ids, list(sets), dataset, model, runs_dir)
    except PeftlabError as exc:
        fail(exc)
    if all(p.run is None for p in plans):
        fail("no technique could run:\n" + "\n".join(f"  {p.technique}: {p.error}" for p in plans))
    console.print(
        f"comparing {len(plans)} technique(s): {', '.join(technique_ids)}  (runs in {runs_dir})"
    )
    if parallel > 1 or backend == "ray":
        try:
            launcher = make_launcher(parallel, backend, address, cpus_per_run)
        except PeftlabError as exc:
            fail(exc)
        rows, interrupted = run_plans_together(plans, launcher, parallel)
    else:
        rows, interrupted = run_plans(plans)
    report_dir = out_dir or runs_dir / f"compare-{stamp}"
    files = write_report(
        rows,
        report_dir,
        title=title or f"Technique comparison: {base.name}",
        command=command_line(click.get_current_context()),
    )
    console.print(summary_table(rows, f"comparison {base.name}"))
    console.print(f"report: {files.markdown}")
    if interrupted:
        raise SystemExit(130)
    raise SystemExit(0 if all(r.completed for r in rows) else 1)


def register(cli: click.Group) -> None:
    cli.add_command(compare_command)
