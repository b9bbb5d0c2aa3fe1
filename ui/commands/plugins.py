"""`peftlab plugins ...` and `peftlab graph`: what is installed and what fits with what."""

from __future__ import annotations

import json
from pathlib import Path

import click
import yaml

from kernel.errors import PeftlabError
from kernel.registry import describe_status
from ui.context import CliState, fail, pass_state


@click.group("plugins")
def plugins_group() -> None:
    """List, inspect, validate and watch plugin bundles."""


@plugins_group.command("list")
@click.option("--kind", type=click.Choice(["technique", "model", "dataset", "trainer"]))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_state
def list_plugins(state: CliState, kind: str | None, as_json: bool) -> None:
    """Table of every bundle: kind, id, version, where it came from, status."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    rows = describe_status(state.kernel().snapshot)
    if kind:
        rows = [r for r in rows if r["kind"] == kind]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"{len(rows)} plugin bundle(s)")
    for column in ("kind", "id", "version", "origin", "status", "path"):
        table.add_column(column, overflow="fold")
    for row in rows:
        status = str(row["status"])
        style = (
            "green"
            if status == "ok"
            else "red"
            if "broken" in status or "failed" in status
            else "yellow"
        )
        table.add_row(
            str(row["kind"]),
            str(row["id"]),
            str(row["version"]),
            str(row["origin"]),
            f"[{style}]{status}[/{style}]",
            str(row["path"]),
        )
    console = Console(width=max(Console().width, 140))
    console.print(table)
    for row in rows:
        if row["error"]:
            console.print(
                f"[red]{row['kind']}/{row['id']}[/red]: {escape(str(row['error']))}",
                highlight=False,
            )


@plugins_group.command("show")
@click.argument("plugin_id")
@click.option("--kind", type=click.Choice(["technique", "model", "dataset", "trainer"]))
@pass_state
def show_plugin(state: CliState, plugin_id: str, kind: str | None) -> None:
    """Manifest, params with defaults, and compatible peers of one bundle."""
    kernel = state.kernel()
    matches = [b for b in kernel.snapshot.bundles.values() if b.manifest.id == plugin_id]
    if kind:
        matches = [b for b in matches if b.manifest.kind == kind]
    if not matches:
        all_ids = sorted({b.manifest.id for b in kernel.snapshot.bundles.values()})
        fail(f"no plugin '{plugin_id}'; available: {', '.join(all_ids)}")
    if len(matches) > 1:
        fail(f"'{plugin_id}' exists as several kinds; pass --kind")
    bundle = matches[0]
    m = bundle.manifest
    click.secho(f"{m.name} ({m.kind} '{m.id}', version {m.version})", bold=True)
    click.echo(f"  from: {bundle.path} ({bundle.origin})")
    if m.summary:
        click.echo(f"  {m.summary}")
    if m.paper:
        click.echo(f"  paper: {m.paper}")
    if m.params:
        click.secho("params:", bold=True)
        for name, spec in m.params.items():
            bounds = ""
            if spec.min is not None or spec.max is not None:
                bounds = f" [{'' if spec.min is None else f'{spec.min:g}'}..{'' if spec.max is None else f'{spec.max:g}'}]"
            options = f" options={spec.options}" if spec.options else ""
            options += f" options_from={spec.options_from}" if spec.options_from else ""
            click.echo(f"  {name}: {spec.type} = {spec.default!r}{bounds}{options}  {spec.help}")
    click.secho("compatible:", bold=True)
    for peer_kind, peers in kernel.graph().compatible_peers(bundle.key).items():
        fits = [i for i, reasons in peers.items() if not reasons]
        click.echo(f"  {peer_kind}: {', '.join(fits) or '(none)'}")
        for peer_id, reasons in peers.items():
            if reasons:
                click.echo(f"    not {peer_id}: {'; '.join(reasons)}")
    click.secho("manifest:", bold=True)
    click.echo(yaml.safe_dump(m.model_dump(mode="json", exclude_defaults=True), sort_keys=False))


@plugins_group.command("validate")
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--no-import", is_flag=True, help="Check the manifest only; do not import the module."
)
@click.option("--strict", is_flag=True, help="Fail on warnings too (e.g. an unknown architecture).")
@pass_state
def validate_plugin(state: CliState, path: Path, no_import: bool, strict: bool) -> None:
    """Check a bundle folder: schema, entry import and the kind's contract; list every problem."""
    from authoring.validate import architectures_of, errors_only, severity, validate_bundle

    known = architectures_of(state.kernel().snapshot)  # --plugins-dir models count too
    problems = validate_bundle(path, import_entry_module=not no_import, architectures=known)
    failing = problems if strict else errors_only(problems)
    if not failing:
        click.secho(f"ok: {path} is a valid bundle", fg="green")
    else:
        click.secho(f"{len(failing)} problem(s) in {path}:", fg="red", err=True)
    for problem in problems:
        click.echo(f"  - {severity(problem)}: {problem}", err=True)
    if failing:
        raise SystemExit(1)


@plugins_group.command("watch")
@click.option(
    "--debounce",
    type=click.FloatRange(min=0.0),
    default=0.3,
    show_default=True,
    help="Seconds without further changes before a bundle reloads.",
)
@pass_state
def watch_plugins(state: CliState, debounce: float) -> None:
    """Reload bundles as their files change; print one line per change until Ctrl-C."""
    import signal
    import sys
    import time

    from kernel.registry import Change

    def show(change: Change) -> None:
        color = {"failed": "red", "removed": "yellow"}.get(change.action, "green")
        click.secho(change.describe(), fg=color)
        sys.stdout.flush()

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    kernel = state.kernel()
    unsubscribe = kernel.events.subscribe(show)
    reloader = kernel.start_watching(debounce)
    snap = kernel.snapshot
    folders = ", ".join(str(root) for root in reloader.roots) or "(no plugin folder exists yet)"
    click.echo(f"watching {len(snap.bundles)} bundle(s) in {folders}; Ctrl-C to stop")
    for path, problem in snap.problems.items():
        name = f"{problem.key[0]} '{problem.key[1]}'" if problem.key else str(path)
        click.secho(f"broken   {name}: {problem.error}", fg="red")
    sys.stdout.flush()
    try:
        previous = signal.signal(signal.SIGTERM, interrupt)  # stop cleanly when killed, too
    except ValueError:  # not the main thread
        previous = None
    try:
        while True:
            time.sleep(1.0)  # the reloader itself notices plugin folders coming and going
    except KeyboardInterrupt:
        click.echo("stopped watching")
    finally:
        kernel.stop_watching()
        unsubscribe()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


@click.command("graph")
@click.option("--format", "fmt", type=click.Choice(["text", "dot", "json"]), default="text")
@pass_state
def graph_command(state: CliState, fmt: str) -> None:
    """The capability graph: which plugins work together, and why not."""
    graph = state.kernel().graph()
    if fmt == "json":
        click.echo(json.dumps(graph.to_json(), indent=2))
    elif fmt == "dot":
        click.echo(graph.to_dot())
    else:
        click.echo(graph.to_text())


def register(cli: click.Group) -> None:
    cli.add_command(plugins_group)
    cli.add_command(plugins_group, name="plugin")  # `peftlab plugin new|validate` for authors
    cli.add_command(graph_command)


__all__ = ["PeftlabError", "register"]
