"""`peftlab train --set` with bad values: refused with exit code 2 before anything heavy loads.

All cases run in one process (the CLI in-process through click's runner) so the test
can also check that no ML library was imported and no run folder was made.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.reliability.builders import cli_env

CASES = {
    "wrong type": (["--set", "technique.r=four"], "[technique.r]: expected an integer, got str 'four'"),
    "bool not a bool": (["--set", "trainer.group_by_length=maybe"], "expected true or false, got 'maybe'"),
    "below the minimum": (["--set", "technique.r=0"], "0 is below the minimum 1 (allowed: 1..256)"),
    "above the maximum": (["--set", "technique.dropout=2.5"], "2.5 is above the maximum 0.9 (allowed: 0..0.9)"),
    "unknown key": (
        ["--set", "trainer.epoch=3"],
        "[trainer.epoch]: unknown parameter(s) epoch; valid: batch_size, ",
    ),
    "choice not in options": (
        ["--set", "trainer.mixed_precision=fp8"],
        "[trainer.mixed_precision]: 'fp8' is not one of: auto, no, fp16, bf16",
    ),
    "choice of another plugin": (
        ["--technique", "lora", "--set", "technique.bias=some"],
        "'some' is not one of: none, all, lora_only",
    ),
}  # fmt: skip

SCRIPT = """
import json, sys
from click.testing import CliRunner
from ui.cli import cli

cases = json.loads(sys.argv[1])
runs_dir = sys.argv[2]
out = {}
for name, args in cases.items():
    result = CliRunner().invoke(
        cli, ["--no-entry-points", "--runs-dir", runs_dir, "train", *args]
    )
    out[name] = {"code": result.exit_code, "output": result.output}
heavy = ("torch", "transformers", "peft", "datasets", "accelerate", "sklearn")
out["__heavy__"] = [m for m in heavy if m in sys.modules]
print("RESULT=" + json.dumps(out))
"""


def test_bad_params_are_refused_before_any_model_loads(tmp_path: Path) -> None:
    runs_dir = tmp_path / "runs"
    cases = {name: args for name, (args, _message) in CASES.items()}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(cases), str(runs_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env=cli_env(tmp_path),
        cwd=str(tmp_path),
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.split("RESULT=", 1)[1])
    for name, (_args, message) in CASES.items():
        assert out[name]["code"] == 2, (name, out[name])
        assert message in out[name]["output"], (name, out[name]["output"])
        assert "error: " in out[name]["output"]
    assert ", epochs, " in out["unknown key"]["output"]  # the valid names are listed
    assert out["__heavy__"] == []  # nothing was loaded to find out
    assert not runs_dir.exists() or not any(runs_dir.iterdir())  # no run folder was made
    assert elapsed < 30, f"{len(CASES)} refusals took {elapsed:.1f} s"
