"""The kernel and the runs folder a Python session works with (built once, on first use)."""

from __future__ import annotations

import os
from pathlib import Path

from kernel import Kernel, KernelConfig

_kernel: Kernel | None = None
_settings: dict[str, object] = {}


def configure(
    *,
    plugins_dirs: list[str | Path] | None = None,
    runs_dir: str | Path | None = None,
    use_entry_points: bool = True,
) -> None:
    """Where plugins and runs live for this session (as the CLI's global options do).

    Relative paths are read against the current directory, like the CLI's.
    """
    global _kernel
    _settings.update(
        plugin_dirs=[Path(p).expanduser().resolve() for p in plugins_dirs or []],
        runs_dir=Path(runs_dir).expanduser().resolve() if runs_dir else None,
        use_entry_points=use_entry_points,
    )
    _kernel = None


def kernel() -> Kernel:
    """The session's kernel, with every plugin discovered."""
    global _kernel
    if _kernel is None:
        config = KernelConfig(
            plugin_dirs=list(_settings.get("plugin_dirs") or []),  # type: ignore[call-overload]
            use_entry_points=bool(_settings.get("use_entry_points", True)),
            runs_dir=_settings.get("runs_dir"),  # type: ignore[arg-type]
        )
        _kernel = Kernel(config)
        _kernel.discover()
    return _kernel


def runs_dir() -> Path:
    return kernel().config.resolved_runs_dir()


def in_notebook() -> bool:
    """True inside a Jupyter kernel (progress bars then render as widgets or text)."""
    return "JPY_PARENT_PID" in os.environ or "ipykernel" in os.environ.get("_", "")
