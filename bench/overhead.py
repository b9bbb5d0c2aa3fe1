"""peftlab's overhead: `peftlab train` (the default recipe) against the same job written by hand.

A = `peftlab train` with the embedded default recipe (demo sentiment data x
all-MiniLM-L6-v2 x LoRA r 8, 3 epochs, batch 16, max length 64, seed 42);
B = bench/handwritten.py, the plain transformers Trainer + peft script for the
same model folder, data files, LoRA config, steps, batch and max length. Each is
timed as a whole command in a fresh process (interpreter start, imports, model
load, training, evaluation, saving), alternated A B A B ... after one untimed
warm-up of each. The figure is the median over pairs of A's time / B's time
(target <= 1.03). Both evaluate the untrained model first and checkpoint each epoch
(for resuming), so both do the same work and reach the same loss; the figure is
not valid when they do not.

    python bench/overhead.py [--pairs 3] [--max-steps N (quick check)] [--no-wait]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quiet  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TARGET = 1.03


def peftlab_executable() -> list[str]:
    """The `peftlab` console script of this interpreter (what a person types), else python -m ui.cli."""
    script = Path(sys.executable).parent / "peftlab"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "ui.cli"]


def commands(work: Path, max_steps: int) -> dict[str, list[str]]:
    """Both command lines; `work` is each run's own scratch folder (or a placeholder for it)."""
    steps = ["--set", f"trainer.max_steps={max_steps}"] if max_steps else []
    return {
        "peftlab": [
            *peftlab_executable(), "--runs-dir", str(work / "runs"), "train",
            "--set", "trainer.seed=42", *steps,
        ],
        "handwritten": [
            sys.executable, str(REPO / "bench" / "handwritten.py"), "--output", str(work / "hand"),
            *(["--max-steps", str(max_steps)] if max_steps else []),
        ],
    }  # fmt: skip


def outcome(name: str, work: Path) -> dict[str, float]:
    """Loss, accuracy and steps of the finished command, to show both did the same work."""
    if name == "handwritten":
        return json.loads((work / "hand" / "results.json").read_text())
    (run,) = sorted((work / "runs").iterdir())
    r = json.loads((run / "results.json").read_text())
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    baseline_s = sum(x.get("baseline_runtime", 0.0) for x in lines)
    return {k: r[k] for k in ("train_loss", "accuracy", "global_step")} | {
        "baseline_eval_s": baseline_s,  # the hand-written script evaluates first too
        "checkpoints": len(list((run / "checkpoints").glob("checkpoint-*"))),
    }


def time_once(name: str, cmd: list[str], env: dict[str, str]) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix=f"overhead-{name}-") as tmp:
        work = Path(tmp)
        run_env = dict(env, HF_DATASETS_CACHE=str(work / "hf-datasets"))  # no cache from last time
        cmd = [c.replace("@WORK@", str(work)) for c in cmd]
        with quiet.OtherLoad() as load:
            start = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True, env=run_env, cwd=str(work))
            wall = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"{name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        return {"wall_s": wall, **load.record(), **outcome(name, work)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--max-steps", type=int, default=0, help="quick check: stop both early")
    parser.add_argument("--no-wait", action="store_true", help="do not wait for a quiet machine")
    args = parser.parse_args()

    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    cmds = commands(Path("@WORK@"), args.max_steps)
    for name, cmd in cmds.items():  # warm the file cache and the datasets/transformers imports
        print(f"warm-up: {name}", flush=True)
        time_once(name, cmd, env)
    runs: dict[str, list[dict[str, object]]] = {"peftlab": [], "handwritten": []}
    for pair in range(args.pairs):
        for name in ("peftlab", "handwritten"):
            record = quiet.quiet_measurement(
                lambda name=name: time_once(name, cmds[name], env), not args.no_wait
            )
            runs[name].append(record)
            print(
                f"pair {pair + 1} {name:11s} {record['wall_s']:7.2f} s  "
                f"loss {record['train_loss']:.4f}  acc {record['accuracy']:.3f}  "
                f"steps {record['global_step']}  (others used {record['others_cpu_share']:.0%} CPU)",
                flush=True,
            )
    a = [r["wall_s"] for r in runs["peftlab"]]
    b = [r["wall_s"] for r in runs["handwritten"]]
    ratios = [x / y for x, y in zip(a, b, strict=True)]
    ratio = statistics.median(ratios)
    valid = not quiet.contended(runs["peftlab"] + runs["handwritten"])
    # the same work reaches the same loss after the same steps; a gap means the two scripts'
    # settings drifted apart (a changed default on one side) and the ratio compares other jobs
    loss_gap = abs(runs["peftlab"][0]["train_loss"] - runs["handwritten"][0]["train_loss"])
    same_work = (
        runs["peftlab"][0]["global_step"] == runs["handwritten"][0]["global_step"]
        and loss_gap <= 1e-3
    )
    if not same_work:
        print(f"\nthe two scripts did different work (loss gap {loss_gap:.4f}): not valid")
    print(
        f"\npeftlab train      median {statistics.median(a):.2f} s\n"
        f"hand-written       median {statistics.median(b):.2f} s\n"
        f"ratio (median of pairs) {ratio:.3f}  target <= {TARGET}  "
        f"{'PASS' if ratio <= TARGET and same_work else 'MISS'}\n"
        + ("" if valid else "  (other processes used the CPU during a measurement: not valid)")
    )
    quiet.write_results(
        "overhead",
        {
            "figure": "wall time of `peftlab train` / hand-written Trainer script (median of pairs)",
            "ratio": ratio,
            "target": TARGET,
            "pass": ratio <= TARGET and same_work,
            "quiet": valid,
            "same_work": same_work,
            "train_loss_gap": loss_gap,
            "peftlab_median_s": statistics.median(a),
            "handwritten_median_s": statistics.median(b),
            "pair_ratios": ratios,
            "runs": runs,
            "max_steps": args.max_steps or None,
            "commands": {k: " ".join(v) for k, v in cmds.items()},
            "machine": quiet.machine_dict(),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
