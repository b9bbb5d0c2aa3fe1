"""Fixtures for the SDK tests: the author-facing fixtures of sdk.testing, a clean environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sdk.testing import (  # noqa: F401 - fixtures, registered by being imported here
    tiny_dataset_dir,
    tiny_distilbert_dir,
    tiny_model_dir,
    tiny_model_factory,
)


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """No user plugins, env plugin path or stevedore disk cache from this machine leaks in."""
    monkeypatch.setenv("PEFTLAB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("PEFTLAB_PLUGIN_PATH", raising=False)
    return dict(os.environ)
