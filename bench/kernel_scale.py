"""Time a cold `peftlab plugins list` with N generated bundles, N copies of the built-in
lora bundle, and one bundle holding a 2 GB file.

Each timing is a fresh process (interpreter start, imports, discovery, table),
repeated `--repeat` times; the median is reported, with the process's peak RSS.
The first process of a case finds the manifest cache empty (`first_s`); the
others find it filled by the first. Targets on a 2-core machine: 100 copies of
the lora bundle under 0.5 s, 1,000 under 3 s; a 2 GB file in a bundle costs the
same time and memory as none (within 10 %). The 2 GB file is sparse (written
with truncate, no disk space used): a hash that reads files whole still reads
2 GB of zeros, so it shows up exactly as a real weights file would.

    python bench/kernel_scale.py [--sizes 10 100 1000] [--copies 100 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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


LORA = Path(__file__).resolve().parents[1] / "plugins" / "techniques" / "lora"


def copy_lora(root: Path, count: int) -> None:
    """`count` copies of the built-in lora bundle, each with its own id."""
    manifest = (LORA / "plugin.yaml").read_text()
    for i in range(count):
        folder = root / f"lora_{i:04d}"
        shutil.copytree(LORA, folder, ignore=shutil.ignore_patterns("__pycache__"))
        (folder / "plugin.yaml").write_text(
            manifest.replace("id: lora\n", f"id: lora_{i:04d}\n", 1)
        )


def bundle_with_big_file(root: Path, size: int) -> None:
    """One copy of the lora bundle plus a sparse `size`-byte weights file inside it."""
    copy_lora(root, 1)
    with open(root / "lora_0000" / "adapter_model.safetensors", "wb") as handle:
        handle.truncate(size)


def list_once(plugins: Path, home: Path, expect: str) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one `peftlab plugins list` process."""
    env = dict(os.environ, PEFTLAB_HOME=str(home), XDG_CACHE_HOME=str(home / "cache"))
    env.pop("PEFTLAB_PLUGIN_PATH", None)
    command = [sys.executable, "-m", "ui.cli", "--plugins-dir", str(plugins), "plugins", "list"]
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        _pid, status, usage = os.wait4(child.pid, 0)  # the child's own peak RSS
        elapsed = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode()
    assert child.returncode == 0, text[-2000:]
    assert expect in text, f"{expect} missing from the table"
    return elapsed, usage.ru_maxrss / 1024


def time_list(plugins: Path, home: Path) -> float:
    return list_once(plugins, home, f"gen_{int(plugins.name.split('_')[1]) - 1:04d}")[0]


def measure(plugins: Path, home: Path, expect: str, repeat: int) -> dict[str, float]:
    """First run (empty manifest cache), then `repeat` runs; medians of time and peak RSS."""
    first_s, _ = list_once(plugins, home, expect)
    runs = [list_once(plugins, home, expect) for _ in range(repeat)]
    return {
        "first_s": first_s,
        "median_s": statistics.median(t for t, _ in runs),
        "max_s": max(t for t, _ in runs),
        "peak_rss_mb": statistics.median(m for _, m in runs),
    }


def baseline_interpreter() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--copies", type=int, nargs="*", default=[100, 1000])
    parser.add_argument("--big-gb", type=float, default=2.0, help="size of the file in one bundle")
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
        run_copies_and_big_file(Path(tmp), args, results)
    print(f"(bare interpreter start: {results['interpreter_start_s']:.3f} s)")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "kernel_scale.json").write_text(json.dumps(results, indent=2))
    return 0


def run_copies_and_big_file(tmp: Path, args: argparse.Namespace, results: dict) -> None:
    """The copied-lora cases and the big-file case against the same bundle without the file."""
    for count in [0, *args.copies]:
        plugins = tmp / f"copies_{count}"
        plugins.mkdir()
        copy_lora(plugins, count)
        expect = f"lora_{count - 1:04d}" if count else "lora"
        row = measure(plugins, tmp / f"home_copies_{count}", expect, args.repeat)
        results[f"lora_copies={count}"] = row
        print(
            f"{count:5d} lora copies: first {row['first_s']:.3f} s, median {row['median_s']:.3f} s, "
            f"peak RSS {row['peak_rss_mb']:.0f} MB"
        )
    for label, size in (("without", 0), ("with", int(args.big_gb * 2**30))):
        plugins = tmp / f"big_{label}"
        plugins.mkdir()
        if size:
            bundle_with_big_file(plugins, size)
        else:
            copy_lora(plugins, 1)
        row = measure(plugins, tmp / f"home_big_{label}", "lora_0000", args.repeat)
        results[f"bundle_{label}_{args.big_gb:g}gb_file"] = row
        print(
            f"one bundle {label} a {args.big_gb:g} GB file: median {row['median_s']:.3f} s, "
            f"peak RSS {row['peak_rss_mb']:.0f} MB"
        )


if __name__ == "__main__":
    sys.exit(main())
