"""Command-line options several commands share, declared once (same names, types and help)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def _all(*decorators: Decorator) -> Decorator:
    def apply(command: Callable[..., Any]) -> Callable[..., Any]:
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return apply


def recipe_option(help_text: str) -> Decorator:
    return click.option(
        "--recipe", "recipe_file", type=click.Path(path_type=Path, dir_okay=False), help=help_text
    )


def set_option(help_text: str) -> Decorator:
    return click.option("--set", "sets", multiple=True, metavar="KIND.PARAM=VALUE", help=help_text)


def out_option(help_text: str) -> Decorator:
    return click.option(
        "--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), help=help_text
    )


def parallel_options(unit: str) -> Decorator:
    """--parallel, --backend, --address and --cpus-per-<unit> of commands that start many runs."""
    return _all(
        click.option(
            "--parallel",
            type=click.IntRange(1, 64),
            default=1,
            show_default=True,
            help=f"{unit.capitalize()}s at once (each pinned to its share of the cores / GPUs; "
            "Ray: tasks in flight).",
        ),
        click.option(
            "--backend", type=click.Choice(["local", "ray"]), default="local", show_default=True
        ),
        click.option(
            "--address", help="Ray cluster: auto, ray://HOST:10001 (default: a local Ray)."
        ),
        click.option(
            f"--cpus-per-{unit}",
            type=click.FloatRange(min=0, min_open=True),
            default=1.0,
            show_default=True,
            help=f"Ray: CPUs each {unit} asks for.",
        ),
    )
