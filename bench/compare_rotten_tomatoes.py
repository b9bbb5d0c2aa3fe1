"""Every technique on rotten tomatoes with all-MiniLM-L6-v2, same budget, one report.

    python bench/compare_rotten_tomatoes.py                       # all techniques, full train split
    python bench/compare_rotten_tomatoes.py --techniques lora,ia3 --train-samples 2000
    python bench/compare_rotten_tomatoes.py --reuse               # train only what is missing
    python bench/compare_rotten_tomatoes.py --reuse --evaluate    # + held-out intervals

Budget for every technique: 1 epoch, max length 64, batch 32, seed 42, full
precision, each technique's own default learning rate. Training goes through `peftlab compare`
(one subprocess run per technique, runs kept in runs/bench-rotten-tomatoes/);
the report (report.md, report.csv, PNGs) is written to
docs/results/rotten_tomatoes/. A hand-written `notes.md` in that folder (the
analysis of the numbers) is copied into report.md each time it is rebuilt.

With --reuse, a technique that already has a completed run with the same
dataset, model and trainer settings in the runs folder is not trained again:
its run goes into the report as it is.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "rotten_tomatoes"
RUNS_DIR = REPO / "runs" / "bench-rotten-tomatoes"
OUT_DIR = REPO / "docs" / "results" / "rotten_tomatoes"
# the order of the report: LoRA family, other adapters, prompt learning, baselines
ORDER = (
    "lora", "qlora", "adalora", "loha", "lokr", "vera", "ia3", "adapter",
    "prompt_tuning", "p_tuning", "prefix_tuning", "head_only", "full",
)  # fmt: skip
# Per-technique exceptions, passed to `peftlab compare` as <technique>.<kind>.PARAM=VALUE.
# qlora: bitsandbytes 0.50.2 repacks 4-bit weights for a faster CPU kernel at the first
# forward pass in eval mode and keeps using that kernel afterwards, where it fails in
# training ("a view of a leaf Variable that requires grad is being used in an in-place
# operation"). The before-training evaluation is such a pass, so QLoRA runs without it:
# its "accuracy before training" is missing; its training is unchanged.
WORKAROUNDS = ("qlora.trainer.measure_baseline=false",)
BUDGET = {
    "dataset.max_length": 64,
    "trainer.epochs": 1,
    "trainer.batch_size": 32,
    "trainer.seed": 42,
    # full precision: the comparison does not depend on whether the CPU computes bf16
    "trainer.mixed_precision": "no",
}


def all_techniques() -> list[str]:
    """Every registered technique that fits rotten_tomatoes x minilm, in report order."""
    from kernel import Kernel

    kernel = Kernel()
    kernel.discover()
    graph = kernel.graph()
    found = [
        tid
        for tid in kernel.snapshot.ids("technique")
        if not graph.check(
            {
                "dataset": "rotten_tomatoes",
                "model": "minilm",
                "technique": tid,
                "trainer": "hf_trainer",
            }
        )
    ]
    return sorted(found, key=lambda t: (ORDER.index(t) if t in ORDER else len(ORDER), t))


def settings(train_samples: int, extra: list[str]) -> list[str]:
    sets = [f"dataset.path={DATA}", f"dataset.train_samples={train_samples}"]
    sets += [f"{k}={v}" for k, v in BUDGET.items()]
    return sets + list(extra)


def _params_match(recipe: dict[str, Any], results: dict[str, Any], sets: list[str]) -> bool:
    """True when a run's recipe has every dataset./trainer./model. value that `sets` asks for.

    The learning rate is compared with the rate the run used (results.json), so a
    run at a technique's default rate also counts for a sweep point at that rate.
    """
    from kernel.params import parse_cli_value

    if not any(item.startswith("trainer.learning_rate=") for item in sets):
        # without a rate asked for, only runs at their technique's own rate count
        rate = ((recipe.get("trainer") or {}).get("params") or {}).get("learning_rate")
        if rate not in (None, 0, 0.0):
            return False
    for item in sets:
        key, _, raw = item.partition("=")
        kind, _, param = key.partition(".")
        if kind not in ("dataset", "model", "trainer"):
            continue
        have = ((recipe.get(kind) or {}).get("params") or {}).get(param)
        if key == "trainer.learning_rate":
            have = results.get("learning_rate")
        if isinstance(have, str) and have == raw:  # e.g. `no`, which YAML would read as false
            continue
        want = parse_cli_value(raw)
        if isinstance(want, int | float) and isinstance(have, int | float):
            if float(want) != float(have):
                return False
        elif str(have) != str(want):
            return False
    return True


def reusable_runs(runs_dir: Path, techniques: list[str], sets: list[str]) -> dict[str, Path]:
    """The newest completed run per technique whose settings match; nothing for the others."""
    from kernel.runs import list_runs

    found: dict[str, Path] = {}
    for run in list_runs(runs_dir):  # sorted by name = by start time, newest last
        try:
            record = run.record()
        except Exception:  # noqa: BLE001 - a broken folder is simply not reused
            continue
        technique = record.technique.id
        if (
            technique in techniques
            and record.dataset.id == "rotten_tomatoes"
            and record.model.id == "minilm"
            and run.status().get("state") == "completed"
            and not any(k.startswith("technique.") for k in sets)
            and _params_match(run.recipe(), run.results() or {}, sets)
        ):
            found[technique] = run.path
    return found


LOAD_FILE = "loadavg.jsonl"


class LoadSampler(threading.Thread):
    """Appends the machine's 1-minute load average to runs_dir/loadavg.jsonl every 30 s.

    The machine is shared: train times mean little without the load they ran under.
    """

    def __init__(self, runs_dir: Path, every_s: float = 30.0) -> None:
        super().__init__(daemon=True)
        self.path = runs_dir / LOAD_FILE
        self.every_s = every_s
        self.stopped = threading.Event()

    def run(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while not self.stopped.is_set():
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"time": time.time(), "load1": os.getloadavg()[0]}) + "\n")
            self.stopped.wait(self.every_s)


def load_notes(runs_dir: Path, rows: list[Any]) -> str:
    """A table of the mean load average while each run trained, from loadavg.jsonl."""
    from kernel.runs import RunFolder

    try:
        lines = (runs_dir / LOAD_FILE).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return ""
    samples = []
    for line in lines:
        try:
            record = json.loads(line)
            samples.append((float(record["time"]), float(record["load1"])))
        except (ValueError, KeyError):
            continue
    table = []
    for row in rows:
        if not row.run_id:
            continue
        status = RunFolder(runs_dir / row.run_id).status()
        start, end = status.get("started"), status.get("finished")
        inside = [load for t, load in samples if start and end and start <= t <= end]
        if inside:
            speed = row.results.get("train_samples_per_s")
            table.append(
                f"| {row.label} | {sum(inside) / len(inside):.1f} | {max(inside):.1f} | "
                + ("-" if speed is None else f"{speed:.1f}")
                + " |"
            )
    if not table:
        return ""
    cores = os.cpu_count() or 0
    return "\n".join(
        [
            "## Machine load",
            "",
            f"The runs shared a {cores}-core machine with other work. 1-minute load average "
            "while each run was in progress (sampled every 30 s); train time and samples/s "
            "depend on it as much as on the technique.",
            "",
            "| technique | mean load | max load | train samples/s |",
            "|---|---:|---:|---:|",
            *table,
            "",
        ]
    )


def invocation() -> str:
    """This script's command line, as run from the repository root."""
    script = Path(sys.argv[0]).resolve()
    shown = script.relative_to(REPO) if script.is_relative_to(REPO) else script
    return "python " + shlex.join([str(shown), *sys.argv[1:]])


def cli_env() -> dict[str, str]:
    """The environment of the `peftlab` processes this script starts: offline, this checkout."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", COLUMNS="140")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def evaluate_held_out(args: argparse.Namespace, rows: list[Any]) -> str | None:
    """`peftlab evaluate` of every completed row on the validation split, in one process,
    for the rows that have no evaluation yet; the rows get their evaluations back."""
    from engine.evaluate_results import read_evaluations
    from kernel.runs import RunFolder

    missing = [r.run_id for r in rows if r.completed and r.run_id and not r.evaluations]
    if missing:
        command = [sys.executable, "-m", "ui.cli", "--runs-dir", str(args.runs_dir), "evaluate",
                   *missing, "--data", str(DATA / "validation.csv")]  # fmt: skip
        env = cli_env()
        print("peftlab " + shlex.join(command[3:]), flush=True)
        subprocess.run(command, cwd=str(REPO), env=env, check=False)
    for row in rows:
        if row.completed and row.run_id:
            row.evaluations = read_evaluations(RunFolder(args.runs_dir / row.run_id))
    return ("peftlab " + shlex.join(["evaluate", "RUN...", "--data", str(DATA / "validation.csv")])
            if any(r.evaluations for r in rows) else None)  # fmt: skip


def train_missing(
    args: argparse.Namespace, techniques: list[str], sets: list[str]
) -> tuple[list[Any], str | None, dict[str, Path]]:
    """Train what --reuse does not find; (report rows, compare command, reused runs)."""
    from engine.report import failed_row, row_from_run
    from kernel.runs import RunFolder

    reused = reusable_runs(args.runs_dir, techniques, sets) if args.reuse else {}
    to_train = [t for t in techniques if t not in reused]
    for technique, path in reused.items():
        print(f"reusing {technique}: {path.name}", flush=True)
    compare_line = None
    outcome: dict[str, dict[str, Any]] = {}
    if to_train:
        report_dir = args.runs_dir / f"compare-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        command = [
            sys.executable, "-m", "ui.cli", "--runs-dir", str(args.runs_dir), "compare",
            "--dataset", "rotten_tomatoes", "--model", "minilm",
            "--techniques", ",".join(to_train), "--name", "rt",
            "--out", str(report_dir),
        ]  # fmt: skip
        for item in sets + [w for w in WORKAROUNDS if w.split(".")[0] in to_train]:
            command += ["--set", item]
        compare_line = "peftlab " + shlex.join(command[3:])
        print(compare_line, flush=True)
        env = cli_env()
        sampler = LoadSampler(args.runs_dir)
        sampler.start()
        try:
            subprocess.run(command, cwd=str(REPO), env=env, check=False)
        finally:
            sampler.stopped.set()
        index = json.loads((report_dir / "compare.json").read_text())
        outcome = {row["technique"]: row for row in index["rows"]}
    rows = []
    for technique in techniques:
        if technique in reused:
            rows.append(row_from_run(RunFolder(reused[technique])))
        elif outcome.get(technique, {}).get("run_id"):
            rows.append(row_from_run(RunFolder(args.runs_dir / outcome[technique]["run_id"])))
        else:
            error = outcome.get(technique, {}).get("error") or "not run"
            rows.append(failed_row(technique, error))
    return rows, compare_line, reused


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--techniques", help="comma-separated ids (default: every technique that fits)"
    )
    parser.add_argument(
        "--train-samples", type=int, default=0, help="subsample the train split (0 = all 8,530)"
    )
    parser.add_argument(
        "--learning-rates",
        help="comma-separated rates: every technique runs once per rate (a sweep); "
        "default: each technique's own rate",
    )
    parser.add_argument(
        "--reuse", action="store_true", help="keep completed runs with the same settings"
    )
    parser.add_argument(
        "--set", dest="sets", action="append", default=[], metavar="KIND.PARAM=VALUE"
    )
    parser.add_argument(
        "--evaluate",
        action="store_true",
        help="score every run on the validation split with `peftlab evaluate` (held-out "
        "intervals in the report); runs already evaluated are not scored again",
    )
    parser.add_argument("--title", help="report title")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="report folder")
    parser.add_argument("--runs-dir", type=Path, default=RUNS_DIR, help="where the runs go")
    args = parser.parse_args(argv)
    if not (DATA / "train.csv").is_file():
        print(f"rotten tomatoes CSVs not found in {DATA}", file=sys.stderr)
        return 2

    from engine.report import write_report

    techniques = [t for t in (args.techniques or "").split(",") if t] or all_techniques()
    rates = [r for r in (args.learning_rates or "").split(",") if r.strip()] or [None]
    rows: list[Any] = []
    commands: list[str] = []
    reused: dict[str, Path] = {}
    for rate in rates:
        sets = settings(args.train_samples, args.sets)
        if rate is not None:
            sets.append(f"trainer.learning_rate={rate}")
        got, line, kept = train_missing(args, techniques, sets)
        rows += got
        commands += [line] if line else []
        reused.update({f"{t} (lr={rate})" if rate else t: p for t, p in kept.items()})
    if args.evaluate:
        line = evaluate_held_out(args, rows)
        commands += [line] if line else []
    if rates != [None]:  # a sweep: each technique's rates together
        rows.sort(key=lambda r: techniques.index(r.technique) if r.technique in techniques else 0)

    notes = []
    if commands:
        notes += ["## Underlying command" + ("s" if len(commands) > 1 else ""), "", "```"]
        notes += commands + ["```", ""]
    if reused:
        notes += [
            "Runs reused from an earlier invocation with the same settings: "
            + ", ".join(f"{t} ({p.name})" for t, p in reused.items()),
            "",
        ]
    applied = [w for w in WORKAROUNDS if w.split(".")[0] in techniques]
    if applied:
        notes += [
            "Per-technique exceptions to the budget: "
            + ", ".join(f"`{w}`" for w in applied)
            + " (see WORKAROUNDS in bench/compare_rotten_tomatoes.py for why).",
            "",
        ]
    load = load_notes(args.runs_dir, rows)
    if load:
        notes.append(load)
    hand_written = args.out / "notes.md"
    if hand_written.is_file():
        notes.append(hand_written.read_text(encoding="utf-8"))
    subsample = f", {args.train_samples} training examples" if args.train_samples else ""
    files = write_report(
        rows,
        args.out,
        title=args.title
        or f"rotten tomatoes x all-MiniLM-L6-v2: every technique, same budget{subsample}",
        command=invocation(),
        notes="\n".join(notes),
    )
    print(f"report: {files.markdown}")
    return 0 if all(r.completed for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
