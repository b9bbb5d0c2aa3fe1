"""The `peftlab` console script: a thin face over the kernel.

Each topic lives in ui/commands/<topic>.py and registers its commands here;
none imports torch at module level, so `peftlab plugins list` stays fast.
"""

from __future__ import annotations

import importlib
import signal
from pathlib import Path


def _quiet_interrupt(_signum: int, _frame: object) -> None:
    raise SystemExit(130)


# Ctrl-C while the commands are still loading ends quietly, not with an import traceback
signal.signal(signal.SIGINT, _quiet_interrupt)

import click  # noqa: E402 - after the handler above

from ui.context import CliState  # noqa: E402

COMMAND_MODULES = (
    "plugins",
    "train",
    "runs",
    "evaluate",
    "compare",
    "sweep",
    "export",
    "app",
    "authoring",
    "serve",
    "cache",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--plugins-dir",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Extra plugin folder (repeatable); wins over installed and built-in bundles.",
)
@click.option("--no-entry-points", is_flag=True, help="Ignore plugins from installed packages.")
@click.option(
    "--runs-dir",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="PEFTLAB_RUNS_DIR",
    help="Where runs are written (default ./runs).",
)
@click.version_option(package_name="peftlab", prog_name="peftlab")
@click.pass_context
def cli(
    ctx: click.Context, plugins_dir: tuple[Path, ...], no_entry_points: bool, runs_dir: Path | None
) -> None:
    """peftlab: parameter-efficient fine-tuning, technique by technique, side by side."""
    ctx.obj = CliState(list(plugins_dir), not no_entry_points, runs_dir)


for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(f"ui.commands.{_name}")
    except ModuleNotFoundError as _exc:
        if _exc.name != f"ui.commands.{_name}":
            raise
        continue  # a topic not present in this build
    _module.register(cli)


signal.signal(signal.SIGINT, signal.default_int_handler)  # loaded: commands handle Ctrl-C


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
