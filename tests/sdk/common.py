"""Shared by the SDK tests: paths, and the CLI run as a person runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"
HF_TRAINER = REPO_ROOT / "plugins" / "trainers" / "hf_trainer" / "plugin.yaml"

needs_engine = pytest.mark.skipif(
    not HF_TRAINER.is_file(), reason="the hf_trainer bundle (the training engine) is absent"
)


def peftlab(
    *args: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a person would, in a fresh process."""
    return subprocess.run(
        [sys.executable, "-m", "ui.cli", *args],
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "200"},
        cwd=cwd or REPO_ROOT,
        timeout=timeout,
    )


def listed(result: subprocess.CompletedProcess[str]) -> dict[tuple[str, str], dict]:
    """`plugins list --json` output keyed by (kind, id)."""
    assert result.returncode == 0, result.stderr
    return {(row["kind"], row["id"]): row for row in json.loads(result.stdout)}
