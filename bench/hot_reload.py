"""Hot reload latency: from a file write in a plugin folder to the registry swap.

Creates a temporary plugin folder with one small technique bundle, starts a
Kernel that watches it, then edits the bundle N times (alternating the module
and the manifest) and times each edit until the subscriber sees the change.
The latency includes the debounce (the quiet time a reload waits for).

    python bench/hot_reload.py [--iterations 50] [--debounce 0.3]

Prints median and p95 and writes bench/results/hot_reload.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from kernel import Kernel, KernelConfig  # noqa: E402
from kernel.registry import Change  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "hot_reload.json"
MANIFEST = """id: bench_echo
kind: technique
name: Bench echo
version: 1.0.{step}
api: 1
entry: technique:Echo
params:
  r: {{type: int, default: {step}, min: 0}}
"""
MODULE = """from sdk import Technique


class Echo(Technique):
    STEP = {step}

    def apply(self, model, ctx):
        return model
"""


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(samples)
    rank = max(1, round(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def run(iterations: int, debounce: float) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="peftlab-bench-"))
    plugins, user = workdir / "plugins", workdir / "user"
    bundle = plugins / "bench_echo"
    bundle.mkdir(parents=True)
    user.mkdir()
    (bundle / "technique.py").write_text(MODULE.format(step=0), encoding="utf-8")
    (bundle / "plugin.yaml").write_text(MANIFEST.format(step=0), encoding="utf-8")

    config = KernelConfig(
        builtin_dir=None,
        plugin_dirs=[plugins],
        use_entry_points=False,
        use_env_path=False,
        user_dir=user,
    )
    kernel = Kernel(config)
    kernel.discover()
    seen = threading.Event()
    arrivals: list[tuple[float, Change]] = []

    def on_change(change: Change) -> None:
        arrivals.append((time.perf_counter(), change))
        seen.set()

    unsubscribe = kernel.events.subscribe(on_change)
    kernel.start_watching(debounce)
    latencies: list[float] = []
    try:
        for step in range(1, iterations + 1):
            edit_module = step % 2 == 1
            seen.clear()
            arrivals.clear()
            start = time.perf_counter()
            if edit_module:
                (bundle / "technique.py").write_text(MODULE.format(step=step), encoding="utf-8")
            else:
                (bundle / "plugin.yaml").write_text(MANIFEST.format(step=step), encoding="utf-8")
            if not seen.wait(10.0):
                raise SystemExit(f"edit {step}: no registry change within 10 s")
            arrived, change = arrivals[0]
            if change.action != "reloaded":
                raise SystemExit(f"edit {step}: expected a reload, got {change.describe()}")
            current = kernel.get("technique", "bench_echo")
            if edit_module and current.load().STEP != step:
                raise SystemExit(f"edit {step}: the reloaded module is not the edited one")
            if not edit_module and current.manifest.params["r"].default != step:
                raise SystemExit(f"edit {step}: the reloaded manifest is not the edited one")
            latencies.append(arrived - start)
    finally:
        kernel.stop_watching()
        unsubscribe()
        shutil.rmtree(workdir, ignore_errors=True)

    ms = [value * 1000 for value in latencies]
    import watchdog.version
    from watchdog.observers import Observer

    return {
        "benchmark": "hot_reload",
        "iterations": iterations,
        "debounce_ms": debounce * 1000,
        "median_ms": round(statistics.median(ms), 1),
        "p95_ms": round(percentile(ms, 95), 1),
        "min_ms": round(min(ms), 1),
        "max_ms": round(max(ms), 1),
        "median_minus_debounce_ms": round(statistics.median(ms) - debounce * 1000, 1),
        "target_median_ms": 1000,
        "samples_ms": [round(value, 2) for value in ms],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "watchdog": watchdog.version.VERSION_STRING,
        "observer": Observer.__name__,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--debounce", type=float, default=0.3, help="seconds (default 0.3)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = run(args.iterations, args.debounce)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        f"hot reload, {result['iterations']} edits, debounce {result['debounce_ms']:.0f} ms "
        f"({result['observer']}): median {result['median_ms']:.1f} ms, "
        f"p95 {result['p95_ms']:.1f} ms (min {result['min_ms']:.1f}, max {result['max_ms']:.1f})"
    )
    print(f"wrote {args.output}")
    return 0 if result["median_ms"] < result["target_median_ms"] else 1


if __name__ == "__main__":
    sys.exit(main())
