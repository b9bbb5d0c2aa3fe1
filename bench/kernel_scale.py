"""Time a cold `peftlab plugins list` with N generated bundles (N = 10, 100, 1000).

Each timing is a fresh process (interpreter start, imports, discovery, table),
repeated `--repeat` times; the median is reported. Targets on a 2-core machine:
under 0.5 s for 100 bundles and under 3 s for 1000.

    python bench/kernel_scale.py [--sizes 10 100 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

RESULTS = Path(__file__).resolve().parent / "results"
MODULE = "from sdk import Technique\n\n\nclass Gen(Technique):\n    def apply(self, model, ctx):\n        return model\n"


def generate(root: Path, count: int) -> None:
    for i in range(count):
        folder = root / f"gen_{i:04d}"
        folder.mkdir(parents=True)
        manifest = {
            "id": f"gen_{i:04d}",
            "kind": "technique",
            "name": f"Generated {i}",
            "version": "1.0.0",
            "api": 1,
            "entry": "technique:Gen",
            "summary": "generated for the scale benchmark",
            "requires": {
                "tasks": ["sequence-classification"],
                "architectures": ["bert", "roberta"],
            },
            "params": {
                "r": {"type": "int", "default": 8, "min": 1, "max": 256, "help": "rank"},
                "dropout": {"type": "float", "default": 0.1, "min": 0.0, "max": 0.9},
                "mode": {"type": "choice", "default": "a", "options": ["a", "b"]},
            },
        }
        (folder / "plugin.yaml").write_text(yaml.safe_dump(manifest))
        (folder / "technique.py").write_text(MODULE)


def time_list(plugins: Path, home: Path) -> float:
    env = dict(os.environ, PEFTLAB_HOME=str(home), XDG_CACHE_HOME=str(home / "cache"))
    env.pop("PEFTLAB_PLUGIN_PATH", None)
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "ui.cli", "--plugins-dir", str(plugins), "plugins", "list"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    elapsed = time.perf_counter() - start
    assert (
        f"gen_{int(plugins.name.split('_')[1]) - 1:04d}" in out.stdout
    )  # the table lists them all
    return elapsed


def baseline_interpreter() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    results = {"interpreter_start_s": statistics.median(baseline_interpreter() for _ in range(3))}
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            plugins = Path(tmp) / f"n_{size}"
            generate(plugins, size)
            time_list(plugins, Path(tmp) / "home")  # warm the OS file cache once
            times = [time_list(plugins, Path(tmp) / "home") for _ in range(args.repeat)]
            results[f"n={size}"] = {"median_s": statistics.median(times), "max_s": max(times)}
            print(
                f"N={size:5d}  cold `peftlab plugins list`: median {statistics.median(times):.3f} s  "
                f"max {max(times):.3f} s  ({args.repeat} runs)"
            )
    print(f"(bare interpreter start: {results['interpreter_start_s']:.3f} s)")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "kernel_scale.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
