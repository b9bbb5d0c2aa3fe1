from __future__ import annotations

from pathlib import Path

import pytest

from kernel import Kernel, KernelConfig


@pytest.fixture
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No user folder, env path or stevedore disk cache from the real machine leaks in."""
    home = tmp_path / "home"
    monkeypatch.setenv("PEFTLAB_HOME", str(home))
    monkeypatch.delenv("PEFTLAB_PLUGIN_PATH", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return home


@pytest.fixture
def make_kernel(isolated_env: Path):
    def make(*dirs: Path, builtin: bool = False, entry_points: bool = False) -> Kernel:
        config = KernelConfig(
            plugin_dirs=list(dirs),
            builtin_dir=KernelConfig().builtin_dir if builtin else None,
            use_entry_points=entry_points,
        )
        kernel = Kernel(config)
        kernel.discover()
        return kernel

    return make
