"""Plugin code that misbehaves at import never takes down the app: the first import of
untrusted code runs in a child process with a time limit, and each case is a broken bundle."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from kernel.errors import PluginLoadError
from kernel.trialimport import guard_imports, trial_import
from tests.reliability.builders import cli_env, kernel_for, technique_bundle

BODY = "from sdk import Technique\n{bad}\n\nclass T(Technique):\n    def apply(self, model, ctx):\n        return model\n"
CASES = {
    "exits": ("import os\nos._exit(3)", "ended the process (exit code 3)"),
    "sleeps": ("import time\ntime.sleep(60)", "did not finish within 3 s"),
    "interrupts": ("raise KeyboardInterrupt('at import')", "import raised KeyboardInterrupt"),
    "exits-quietly": ("import sys\nsys.exit(0)", "import raised SystemExit"),
}


@pytest.fixture(autouse=True)
def short_limit(monkeypatch) -> None:
    monkeypatch.setattr("kernel.trialimport.TRIAL_TIMEOUT_S", 3.0)


@pytest.mark.parametrize("name", sorted(CASES))
def test_trial_import_reports_each_case(tmp_path: Path, name: str) -> None:
    bad, reason = CASES[name]
    folder = technique_bundle(tmp_path, name, BODY.format(bad=bad))
    started = time.monotonic()
    failure = trial_import(folder)
    assert isinstance(failure, PluginLoadError) and reason in failure.message
    assert time.monotonic() - started < 20


def test_a_good_bundle_passes_its_trial(tmp_path: Path) -> None:
    assert trial_import(technique_bundle(tmp_path, "good", BODY.format(bad=""))) is None


def test_a_watching_process_survives_each_case(tmp_path: Path) -> None:
    for name, (bad, _reason) in CASES.items():
        technique_bundle(tmp_path / "plugins", name, BODY.format(bad=bad))
    kernel = kernel_for(tmp_path / "plugins")
    guard_imports(True)  # what `peftlab ui` and `plugins watch` switch on
    try:
        for name, (_bad, reason) in CASES.items():
            with pytest.raises(
                PluginLoadError, match=reason.replace("(", r"\(").replace(")", r"\)")
            ):
                kernel.get("technique", name).load()
    finally:
        guard_imports(False)
    assert os.getpid()  # still here


def test_validate_reports_each_case_and_finishes(tmp_path: Path) -> None:
    import subprocess
    import sys

    for name, (bad, reason) in CASES.items():
        folder = technique_bundle(tmp_path / "plugins", name, BODY.format(bad=bad))
        result = subprocess.run(
            [sys.executable, "-m", "ui.cli", "--no-entry-points", "plugins", "validate", str(folder)],
            capture_output=True, text=True, timeout=60,
            env=cli_env(tmp_path, PEFTLAB_IMPORT_TIMEOUT_S="3"), cwd=str(tmp_path),
        )  # fmt: skip
        out = result.stdout + result.stderr
        assert result.returncode != 0 and "Traceback" not in out, out
        assert reason in out and "problem" in out, out
