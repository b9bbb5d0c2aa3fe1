"""`peftlab plugin new`: tools for plugin authors (validate lives beside list and show)."""

from __future__ import annotations

from pathlib import Path

import click

from ui.commands.plugins import plugins_group
from ui.context import fail


@click.command("new")
@click.argument("kind", metavar="KIND")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("."),
    show_default=True,
    help="Folder to create the bundle folder NAME in.",
)
def new_plugin(kind: str, name: str, directory: Path) -> None:
    """Write a working bundle folder DIR/NAME for KIND (technique, model, dataset or trainer).

    It holds plugin.yaml with example params, the module, a small test and a
    README, and passes `peftlab plugin validate` as generated.
    """
    from authoring.scaffold import MODULE_FILES, ScaffoldError, new_bundle

    try:
        target = new_bundle(kind, name, directory)
    except ScaffoldError as exc:
        fail(exc)
        return
    click.secho(f"created {kind} bundle '{name}' in {target}", fg="green")
    for path in sorted(p for p in target.rglob("*") if p.is_file()):
        click.echo(f"  {path.relative_to(target)}")
    module = MODULE_FILES[kind]
    click.echo(
        "\nnext:\n"
        f"  peftlab plugin validate {target}\n"
        f"  python -m pytest {target}\n"
        f"  peftlab --plugins-dir {target.parent} plugins list\n"
        f"edit {target / 'plugin.yaml'} (params) and {target / module} (behaviour); "
        "see docs/sdk.md."
    )


def register(cli: click.Group) -> None:
    plugins_group.add_command(new_plugin)  # `peftlab plugin new` and `peftlab plugins new`


__all__ = ["register"]
