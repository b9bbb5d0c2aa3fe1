"""Builders shared by the reliability tests: throwaway technique bundles, kernels, CLI calls."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]


def technique_bundle(
    root: Path, bundle_id: str, module: str, *, entry: str = "technique:T", **extra: Any
) -> Path:
    """A technique bundle that fits the bert model and sequence classification."""
    folder = root / bundle_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "technique.py").write_text(module, encoding="utf-8")
    manifest = {
        "id": bundle_id,
        "kind": "technique",
        "name": bundle_id,
        "version": "1.0.0",
        "api": 1,
        "entry": entry,
        "summary": "reliability test technique",
        "requires": {"tasks": ["sequence-classification"], "architectures": ["bert"]},
        **extra,
    }
    (folder / "plugin.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    return folder


def kernel_for(*plugin_dirs: Path, builtin: bool = True) -> Any:
    """A kernel over the built-in bundles plus `plugin_dirs`, and nothing from this machine."""
    from kernel import Kernel, KernelConfig

    kernel = Kernel(
        KernelConfig(
            plugin_dirs=list(plugin_dirs),
            builtin_dir=KernelConfig().builtin_dir if builtin else None,
            user_dir=Path("/nonexistent-peftlab-user-dir"),
            use_env_path=False,
            use_entry_points=False,
        )
    )
    kernel.discover()
    return kernel


def tiny_recipe(
    model_dir: Path,
    data_dir: Path,
    technique: str = "lora",
    trainer: dict[str, Any] | None = None,
    name: str = "rel",
) -> Any:
    """rotten_tomatoes from a local folder x tiny bert x `technique`, a few steps, no baseline."""
    from kernel.recipe import PluginChoice, Recipe

    trainer_params = {
        "batch_size": 4,
        "eval_batch_size": 8,
        "logging_steps": 1,
        "max_steps": 2,
        "measure_baseline": False,
        **(trainer or {}),
    }
    return Recipe(
        name=name,
        dataset=PluginChoice(
            id="rotten_tomatoes", params={"path": str(data_dir), "max_length": 16}
        ),
        model=PluginChoice(id="bert", params={"name_or_path": str(model_dir)}),
        technique=PluginChoice(id=technique),
        trainer=PluginChoice(id="hf_trainer", params=trainer_params),
    )


def cli_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The environment of a person running `peftlab` with nothing configured but `tmp`."""
    env = dict(os.environ)
    env.update(
        PEFTLAB_HOME=str(tmp / "home"),
        XDG_CACHE_HOME=str(tmp / "cache"),
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        COLUMNS="160",
        OMP_NUM_THREADS="1",  # tiny models: one thread each is faster on a shared machine
    )
    env.pop("PEFTLAB_PLUGIN_PATH", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def peftlab(tmp: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """`peftlab --no-entry-points ARGS` in its own process, from `tmp`."""
    return subprocess.run(
        [sys.executable, "-m", "ui.cli", "--no-entry-points", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(tmp),
        cwd=str(tmp),
    )
