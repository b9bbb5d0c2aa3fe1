"""`peftlab plugins ...` and `peftlab graph` as a person runs them (subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.kernel.bundles import technique_manifest, write_bundle


def peftlab(*args: str, env_extra: dict | None = None, tmp: Path) -> subprocess.CompletedProcess:
    env = dict(
        os.environ, PEFTLAB_HOME=str(tmp / "home"), XDG_CACHE_HOME=str(tmp / "cache"), COLUMNS="200"
    )
    env.pop("PEFTLAB_PLUGIN_PATH", None)
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "ui.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_plugins_list_imports_no_ml_library(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from ui.cli import cli\n"
        "try:\n    cli(['plugins', 'list', '--json'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'datasets', 'streamlit', 'bitsandbytes') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    env = dict(os.environ, PEFTLAB_HOME=str(tmp_path), XDG_CACHE_HOME=str(tmp_path / "cache"))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout[: out.stdout.rindex("HEAVY=")])
    assert any(r["id"] == "lora" for r in rows)
    assert out.stdout.strip().endswith("HEAVY="), out.stdout[-200:]


def test_list_show_and_graph(tmp_path: Path) -> None:
    write_bundle(tmp_path / "extra", "echo", technique_manifest("echo"))
    write_bundle(tmp_path / "extra", "broken", "id: [\n")
    listed = peftlab("--plugins-dir", str(tmp_path / "extra"), "plugins", "list", tmp=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert (
        "echo" in listed.stdout and "broken" in listed.stdout and "not valid YAML" in listed.stdout
    )
    shown = peftlab(
        "--plugins-dir", str(tmp_path / "extra"), "plugins", "show", "echo", tmp=tmp_path
    )
    assert "r: int = 4 [1..64]" in shown.stdout
    assert "model: bert, minilm" in shown.stdout
    assert "not distilbert: echo: architecture distilbert not supported" in shown.stdout
    graph = peftlab(
        "--plugins-dir", str(tmp_path / "extra"), "graph", "--format", "json", tmp=tmp_path
    )
    edges = json.loads(graph.stdout)["edges"]
    bad = [e for e in edges if e["source"] == "technique/echo" and e["target"] == "model/roberta"]
    assert bad and not bad[0]["ok"] and bad[0]["reasons"]
    missing = peftlab("plugins", "show", "nope", tmp=tmp_path)
    assert missing.returncode == 2 and "available:" in missing.stderr


def test_env_plugin_path_is_used(tmp_path: Path) -> None:
    write_bundle(tmp_path / "envdir", "echo", technique_manifest("from_env"))
    listed = peftlab(
        "plugins",
        "list",
        "--json",
        env_extra={"PEFTLAB_PLUGIN_PATH": str(tmp_path / "envdir")},
        tmp=tmp_path,
    )
    rows = {r["id"]: r for r in json.loads(listed.stdout)}
    assert rows["from_env"]["origin"] == "env"


def test_validate_reports_problems(tmp_path: Path) -> None:
    good = write_bundle(tmp_path, "good", technique_manifest("good"))
    ok = peftlab("plugins", "validate", str(good), tmp=tmp_path)
    assert ok.returncode == 0 and "ok:" in ok.stdout
    bad_manifest = technique_manifest("bad", api="x", colour=1)
    bad = write_bundle(tmp_path, "bad", bad_manifest)
    out = peftlab("plugins", "validate", str(bad), tmp=tmp_path)
    assert out.returncode == 1
    assert "[api]" in out.stderr and "[colour]" in out.stderr
