"""docs/sdk.md's quick start, followed by a new author in fresh processes.

plugin new -> plugin validate -> plugins list / graph / show with --plugins-dir
-> the same folder dropped into the user plugin folder -> the generated tests
(check_bundle and a one-step training run through the real engine) pass.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.sdk.common import listed, needs_engine, peftlab


def test_quick_start(tmp_path: Path, clean_env: dict[str, str]) -> None:
    work = tmp_path / "work"
    created = peftlab("plugin", "new", "technique", "mytech", "--dir", str(work), env=clean_env)
    assert created.returncode == 0, created.stderr
    bundle = work / "mytech"

    validated = peftlab("plugin", "validate", str(bundle), env=clean_env)
    assert validated.returncode == 0, validated.stderr
    assert validated.stdout.startswith("ok:")

    rows = listed(peftlab("--plugins-dir", str(work), "plugins", "list", "--json", env=clean_env))
    row = rows[("technique", "mytech")]
    assert (row["status"], row["origin"], row["version"]) == ("ok", "path", "0.1.0")

    graph = peftlab("--plugins-dir", str(work), "graph", "--format", "json", env=clean_env)
    assert graph.returncode == 0, graph.stderr
    data = json.loads(graph.stdout)
    assert {"kind": "technique", "id": "mytech"}.items() <= next(
        n for n in data["nodes"] if n["id"] == "mytech"
    ).items()
    edges = {e["target"]: e for e in data["edges"] if e["source"] == "technique/mytech"}
    assert edges["model/bert"]["ok"] and edges["model/distilbert"]["ok"]
    assert edges["dataset/demo"]["ok"]

    shown = peftlab("--plugins-dir", str(work), "plugins", "show", "mytech", env=clean_env)
    assert shown.returncode == 0, shown.stderr
    assert (
        "r: int = 8 [1..64]" in shown.stdout
        and "options_from=model.attention_modules" in shown.stdout
    )

    # or drop the folder into the user plugin folder: it appears without any option
    user_plugins = Path(clean_env["PEFTLAB_HOME"]) / "plugins"
    shutil.copytree(bundle, user_plugins / "mytech")
    rows = listed(peftlab("plugins", "list", "--json", env=clean_env))
    assert rows[("technique", "mytech")]["origin"] == "user"


@needs_engine
def test_generated_tests_pass_as_the_author_runs_them(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """`python -m pytest mytech`: pytest_plugins = ["sdk.testing"], check_bundle, smoke_train."""
    work = tmp_path / "work"
    assert (
        peftlab(
            "plugin", "new", "technique", "mytech", "--dir", str(work), env=clean_env
        ).returncode
        == 0
    )
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "mytech", "-q", "-p", "no:cacheprovider", "-W", "ignore"],
        capture_output=True,
        text=True,
        cwd=work,
        env={**clean_env, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"},
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "2 passed" in out.stdout
