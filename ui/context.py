"""Shared CLI plumbing: the kernel built from global options, and error rendering."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import click

from kernel import Kernel, KernelConfig, PeftlabError


@dataclass
class CliState:
    plugin_dirs: list[Path] = field(default_factory=list)
    use_entry_points: bool = True
    runs_dir: Path | None = None
    _kernel: Kernel | None = None

    def kernel(self) -> Kernel:
        if self._kernel is None:
            config = KernelConfig(
                plugin_dirs=list(self.plugin_dirs),
                use_entry_points=self.use_entry_points,
                runs_dir=self.runs_dir,
            )
            self._kernel = Kernel(config)
            self._kernel.discover()
        return self._kernel


pass_state = click.make_pass_decorator(CliState, ensure=True)


def fail(error: PeftlabError | str, code: int = 2) -> None:
    """Print an error the way every command does, and exit."""
    click.secho(f"error: {error}", fg="red", err=True)
    problems = getattr(error, "problems", None)
    if problems and len(problems) > 1:
        for problem in problems[1:]:
            click.secho(f"       {problem}", fg="red", err=True)
    sys.exit(code)
