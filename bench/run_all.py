"""Run every benchmark and write docs/benchmarks.md: figures against targets, the machine, plots.

    python bench/run_all.py            # the full suite on a quiet machine (about 25 minutes)
    python bench/run_all.py --quick    # a few minutes, to check that everything runs;
                                       # writes bench/results/benchmarks.md instead
    python bench/run_all.py --report-only   # rebuild the report from bench/results/*.json

Benchmarks run one after the other, each in its own process, after the machine is
quiet (1-minute load under 2.5, other processes under 10 % of the CPU); the
training benchmarks also wait before each measurement and record how much CPU
other processes used during it. A figure measured while others competed for the
CPU is marked "contended" in the report. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quiet  # noqa: E402
from lora_vs_full import describe  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
DOC = REPO / "docs" / "benchmarks.md"
PLOTS = REPO / "docs" / "images" / "benchmarks"
QUICK_DOC = quiet.RESULTS / "benchmarks.md"

FULL = {
    "kernel_scale": [],
    "hot_reload": [],
    "overhead": ["--pairs", "3"],
    "throughput": ["--naive"],
    "lora_vs_full": [],
    "qlora_memory": [],
}
QUICK = {
    "kernel_scale": ["--sizes", "10", "100", "--repeat", "2"],
    "hot_reload": ["--iterations", "6"],
    "overhead": ["--pairs", "1", "--max-steps", "5"],
    "throughput": ["--train-samples", "320", "--pairs", "1"],
    "lora_vs_full": [
        "--rounds", "1", "--steps", "3", "--warmup", "1", "--memory-setups", "2x128+checkpointing",
    ],
    "qlora_memory": ["--steps", "2", "--models", "minilm"],
}  # fmt: skip
WAITS = {
    "overhead",
    "throughput",
    "lora_vs_full",
    "qlora_memory",
}  # the ones that wait per measurement


@dataclass
class Row:
    figure: str
    target: str
    measured: str
    passed: bool | None
    quiet: bool = True

    def markdown(self) -> str:
        verdict = {True: "pass", False: "**miss**", None: "-"}[self.passed]
        if not self.quiet:
            verdict += " (contended)"
        return f"| {self.figure} | {self.target} | {self.measured} | {verdict} |"


def run_benchmarks(names: list[str], quick: bool, wait: bool) -> dict[str, dict[str, Any]]:
    runs = {}
    for name in names:
        args = (QUICK if quick else FULL)[name]
        if name in WAITS and not wait:
            args = [*args, "--no-wait"]
        cmd = [sys.executable, str(BENCH / f"{name}.py"), *args]
        print(f"\n=== {name}: {' '.join(cmd[1:])}", flush=True)
        seen = quiet.wait_for_quiet(wait)
        start = time.perf_counter()
        with quiet.OtherLoad() as load:
            done = subprocess.run(cmd, cwd=str(REPO))
        runs[name] = {
            "command": " ".join(["python", f"bench/{name}.py", *args]),
            "exit_code": done.returncode,
            "wall_s": round(time.perf_counter() - start, 1),
            "quiet_before": seen,
            **load.record(),
        }
        if done.returncode not in (0, 1):  # hot_reload exits 1 when its target is missed
            print(f"{name} failed with exit code {done.returncode}", file=sys.stderr)
    return runs


def load_results() -> dict[str, dict[str, Any]]:
    found = {}
    for name in FULL:
        path = quiet.RESULTS / f"{name}.json"
        if path.is_file():
            found[name] = json.loads(path.read_text())
    return found


def rows(results: dict[str, dict[str, Any]], suite: dict[str, dict[str, Any]]) -> list[Row]:
    out: list[Row] = []

    def calm(name: str) -> bool:
        # kernel_scale and hot_reload do not record contention themselves: use run_all's view
        return suite.get(name, {}).get("others_cpu_share", 0.0) <= quiet.MAX_OTHERS

    if k := results.get("kernel_scale"):
        for size, limit in (("100", 0.5), ("1000", 3.0)):
            if f"n={size}" in k:
                value = k[f"n={size}"]["median_s"]
                out.append(
                    Row(
                        f"cold `peftlab plugins list`, {size} bundles (median)",
                        f"< {limit} s",
                        f"{value:.2f} s",
                        value < limit,
                        calm("kernel_scale"),
                    )  # fmt: skip
                )
    if h := results.get("hot_reload"):
        out.append(
            Row(
                f"hot reload, file write to registry swap (median, debounce {h['debounce_ms']:.0f} ms)",
                f"< {h['target_median_ms']} ms",
                f"{h['median_ms']:.0f} ms (p95 {h['p95_ms']:.0f})",
                h["median_ms"] < h["target_median_ms"],
                calm("hot_reload"),
            )  # fmt: skip
        )
    if o := results.get("overhead"):
        out.append(
            Row(
                "`peftlab train` / hand-written Trainer script, whole command (median of pairs)",
                f"<= {o['target']}",
                f"{o['ratio']:.3f} ({o['peftlab_median_s']:.1f} s / "
                f"{o['handwritten_median_s']:.1f} s)",
                o["pass"],
                o["quiet"],
            )  # fmt: skip
        )
    if w := (results.get("throughput") or {}).get("whole_command"):
        p, h = w["peftlab"][0], w["hand_loop_runs"][0]
        out.append(
            Row(
                "whole `peftlab train` / hand-written loop (dynamic padding), LoRA epoch on rotten tomatoes",
                f"<= {w['target']} at equal or better accuracy",
                f"{w['ratio']:.3f} (median of pairs; {p['command_s']:.0f} s / {h['command_s']:.0f} s);"
                f" accuracy {p['accuracy']:.3f} vs {h['accuracy']:.3f}",
                w["pass"],
                w["quiet"],
            )  # fmt: skip
        )
    if t := (results.get("throughput") or {}).get("epoch"):
        p, n = t["peftlab"], t["naive"]
        out.append(
            Row(
                "LoRA epoch on rotten tomatoes: peftlab / naive padded loop (with validation)",
                f"<= {t['target']} at equal or better accuracy",
                f"{t['ratio']:.3f} ({p['epoch_s']:.0f} s / {n['epoch_s']:.0f} s); accuracy "
                f"{p['accuracy']:.3f} vs {n['accuracy']:.3f}",
                t["pass"],
                t["quiet"],
            )  # fmt: skip
        )
    if lf := results.get("lora_vs_full"):
        s, m = lf["step_time"], lf["memory"]
        out.append(
            Row(
                "step time LoRA / full fine-tuning, MiniLM, batch 32 x 64 (median)",
                f"<= {s['target']}",
                f"{s['ratio']:.3f} ({s['lora_step_s'] * 1000:.0f} ms / "
                f"{s['full_step_s'] * 1000:.0f} ms)",
                s["pass"],
                lf["quiet"],
            )  # fmt: skip
        )
        for batch, r in m["runs"].items():
            first = batch == next(iter(m["runs"]))
            out.append(
                Row(
                    f"peak RSS LoRA / full, BERT-base (BertConfig()), {describe(batch)}",
                    f"<= {m['target']}" if first else "(for comparison)",
                    f"{r['ratio']:.3f} ({r['lora']['peak_rss_mib']:.0f} MiB / "
                    f"{r['full']['peak_rss_mib']:.0f} MiB)",
                    r["ratio"] <= m["target"] if first else None,
                )  # fmt: skip
            )
    if q := results.get("qlora_memory"):
        for model, v in q["verdicts"].items():
            f = q["figures"][model]
            out.append(
                Row(
                    f"QLoRA / LoRA, {model}, each bundle's defaults: peak memory; model footprint",
                    "< 1; < 1",
                    f"{v['peak_ratio']:.3f} ({f['qlora']['peak_memory_mb']:.0f} / "
                    f"{f['lora']['peak_memory_mb']:.0f} MiB); {v['footprint_ratio']:.3f} "
                    f"({f['qlora']['model_footprint_mb']:.0f} / "
                    f"{f['lora']['model_footprint_mb']:.0f} MB)",
                    v["pass"],
                    q["quiet"],
                )  # fmt: skip
            )
    return out


def plots(results: dict[str, dict[str, Any]], folder: Path) -> dict[str, str]:
    """One PNG per benchmark; returns {name: file name}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    made: dict[str, str] = {}

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        fig.savefig(folder / f"{name}.png", dpi=110)
        plt.close(fig)
        made[name] = f"{name}.png"

    if k := results.get("kernel_scale"):
        sizes = sorted(int(key[2:]) for key in k if key.startswith("n="))
        fig, ax = plt.subplots(figsize=(5, 3.2))
        ax.plot(sizes, [k[f"n={n}"]["median_s"] for n in sizes], "o-", label="median")
        ax.axhline(k.get("interpreter_start_s", 0), color="grey", ls=":", label="bare interpreter")
        ax.set(
            xscale="log", xlabel="bundles", ylabel="seconds", title="cold `peftlab plugins list`"
        )
        ax.legend()
        save(fig, "kernel_scale")
    if h := results.get("hot_reload"):
        fig, ax = plt.subplots(figsize=(5, 3.2))
        ax.hist(h["samples_ms"], bins=20)
        ax.axvline(h["debounce_ms"], color="grey", ls=":", label="debounce")
        ax.set(xlabel="ms from file write to registry swap", ylabel="edits", title="hot reload")
        ax.legend()
        save(fig, "hot_reload")
    if o := results.get("overhead"):
        fig, ax = plt.subplots(figsize=(5, 3.2))
        for name in ("peftlab", "handwritten"):
            walls = [r["wall_s"] for r in o["runs"][name]]
            ax.plot(range(1, len(walls) + 1), walls, "o-", label=name)
        ax.set(
            xlabel="pair", ylabel="seconds, whole command", title="default job: peftlab vs by hand"
        )
        ax.set_ylim(bottom=0)
        ax.legend()
        save(fig, "overhead")
    if t := (results.get("throughput") or {}).get("epoch"):
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(7, 3.2))
        names = ["peftlab", "naive"]
        train = [t[n]["train_only_s"] for n in names]
        valid = [t[n]["validation_s"] for n in names]
        a1.bar(names, train, label="training")
        a1.bar(names, valid, bottom=train, label="validation")
        a1.set(ylabel="seconds", title="one epoch")
        a1.legend()
        a2.bar(names, [t[n]["real_tokens_per_s"] for n in names], color="tab:green")
        a2.set(ylabel="real tokens / s", title="training throughput")
        save(fig, "throughput")
    if lf := results.get("lora_vs_full"):
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(7, 3.2))
        s = lf["step_time"]
        a1.bar(["LoRA", "full"], [s["lora_step_s"] * 1000, s["full_step_s"] * 1000])
        a1.set(ylabel="ms per step", title="MiniLM, batch 32 x 64")
        batches = list(lf["memory"]["runs"])
        width = 0.38
        for i, tech in enumerate(("lora", "full")):
            a2.bar([j + (i - 0.5) * width for j in range(len(batches))],
                   [lf["memory"]["runs"][b][tech]["peak_rss_mib"] for b in batches],
                   width, label="LoRA" if tech == "lora" else "full")  # fmt: skip
        a2.set_xticks(
            range(len(batches)), [b.replace("+checkpointing", "\n+ckpt") for b in batches]
        )
        a2.set(ylabel="peak RSS, MiB", title="BERT-base")
        a2.legend()
        save(fig, "lora_vs_full")
    if q := results.get("qlora_memory"):
        models = list(q["figures"])
        setups = list(next(iter(q["figures"].values())))
        fig, ax = plt.subplots(figsize=(7, 3.4))
        width = 0.8 / len(setups)
        for i, setup in enumerate(setups):
            ax.bar([j + (i - (len(setups) - 1) / 2) * width for j in range(len(models))],
                   [q["figures"][m][setup]["peak_memory_mb"] for m in models],
                   width, label=setup)  # fmt: skip
        ax.set_xticks(range(len(models)), models)
        ax.set(ylabel="peak RSS, MiB", title="QLoRA vs LoRA, batch 32 x 64")
        ax.legend(fontsize=7)
        save(fig, "qlora_memory")
    return made


def throughput_details(throughput: dict[str, Any]) -> list[str]:
    """The throughput notes: the whole commands, and the epoch against the naive loop if run."""
    if not throughput:
        return []
    lines = ["### Throughput (`bench/throughput.py`)", ""]
    if w := throughput.get("whole_command"):
        ours = [round(r["command_s"], 1) for r in w["peftlab"]]
        theirs = [round(r["command_s"], 1) for r in w["hand_loop_runs"]]
        lines += [
            f"Whole commands, alternated: `peftlab train` {ours} s, the hand-written loop "
            f"({w['hand_loop']}) {theirs} s; per-pair ratios "
            f"{[round(x, 3) for x in w['ratios']]}.",
            "",
        ]
    if t := throughput.get("epoch"):
        p, n = t["peftlab"], t["naive"]
        lines += [
            f"The naive loop is {t['naive_loop']}. Training alone: peftlab {p['train_only_s']:.0f} s, "
            f"naive {n['train_only_s']:.0f} s (ratio {t['ratio_training_only']:.3f}); real "
            f"(non-padding) tokens per second {p['real_tokens_per_s']:.0f} vs "
            f"{n['real_tokens_per_s']:.0f}; validation pass {p['validation_s']:.0f} s vs "
            f"{n['validation_s']:.0f} s. The naive loop computes on {n['padded_tokens']:,} tokens "
            f"for {n['real_tokens']:,} real ones. Whole `peftlab train` command: "
            f"{p['command_s']:.0f} s. Accuracy {p['accuracy']:.4f} vs {n['accuracy']:.4f}"
            + (
                f" (difference {t['accuracy_difference']:+.4f}; one standard error of a "
                f"difference between two single-seed accuracies on these sentences: "
                f"{t['accuracy_difference_se']:.4f}, the tolerance of 'equal')."
                if "accuracy_difference" in t
                else "."
            ),
            "",
        ]
    return lines


def details(results: dict[str, dict[str, Any]]) -> list[str]:
    """Per-benchmark notes with the raw medians, for reading beside the table."""
    lines: list[str] = []
    if o := results.get("overhead"):
        a = [round(r["wall_s"], 1) for r in o["runs"]["peftlab"]]
        b = [round(r["wall_s"], 1) for r in o["runs"]["handwritten"]]
        base = statistics.median(r["baseline_eval_s"] for r in o["runs"]["peftlab"])
        lines += [
            "### Overhead (`bench/overhead.py`)",
            "",
            f"Whole-command wall times, alternated: peftlab {a} s, hand-written {b} s; per-pair "
            f"ratios {[round(x, 3) for x in o['pair_ratios']]}. Both evaluate the untrained model "
            f"(peftlab: median {base:.1f} s), then evaluate and checkpoint after each epoch. "
            "Training loss and accuracy (the same work reaches the same figures): "
            f"peftlab {o['runs']['peftlab'][0]['train_loss']:.4f} / "
            f"{o['runs']['peftlab'][0]['accuracy']:.3f}, hand-written "
            f"{o['runs']['handwritten'][0]['train_loss']:.4f} / "
            f"{o['runs']['handwritten'][0]['accuracy']:.3f} "
            f"({o['runs']['peftlab'][0]['global_step']} steps each).",
            "",
        ]
    lines += throughput_details(results.get("throughput") or {})
    if lf := results.get("lora_vs_full"):
        s = lf["step_time"]
        lines += [
            "### LoRA against full fine-tuning (`bench/lora_vs_full.py`)",
            "",
            "Step times per process (median of 20 steps each): LoRA "
            f"{[round(r['step_s'] * 1000) for r in s['runs']['lora']]} ms, full "
            f"{[round(r['step_s'] * 1000) for r in s['runs']['full']]} ms. Where a step goes "
            "(first process of each, ms): "
            + "; ".join(
                f"{tech} "
                + ", ".join(
                    f"{phase} {s['runs'][tech][0].get('phases_s', {}).get(phase, 0) * 1000:.0f}"
                    for phase in ("forward", "backward", "optimizer")
                )
                for tech in ("lora", "full")
            )
            + ". Memory (peak RSS of "
            "the whole process, which includes about "
            f"{next(iter(lf['memory']['runs'].values()))['lora']['rss_after_imports_mib']:.0f} MiB "
            "for Python and torch):",
            "",
        ]
        for batch, r in lf["memory"]["runs"].items():
            lines.append(
                f"- {describe(batch)}: LoRA {r['lora']['peak_rss_mib']:.0f} MiB, full "
                f"{r['full']['peak_rss_mib']:.0f} MiB, ratio {r['ratio']:.3f} "
                f"({r['ratio_above_imports']:.3f} counting only what training adds after importing torch)"
            )
        lines.append("")
    if q := results.get("qlora_memory"):
        lines += [
            "### QLoRA against LoRA (`bench/qlora_memory.py`)",
            "",
            f"Each setup is one `peftlab train` process ({q['steps']} steps, batch 32 x 64, no "
            "evaluation before training); peak memory is the run's own figure (peak RSS on the "
            "CPU), footprint the bytes of the weights it holds.",
            "",
            "| model | setup | peak memory (MiB) | footprint (MB) | s / step |",
            "|---|---|---:|---:|---:|",
        ]
        for model, setups in q["figures"].items():
            for setup, f in setups.items():
                lines.append(
                    f"| {model} | {setup} | {f['peak_memory_mb']:,.0f} | "
                    f"{f['model_footprint_mb']:.1f} | "
                    f"{f['train_runtime_s'] / max(f['global_step'], 1):.2f} |"
                )
        lines.append("")
        for model, v in q["verdicts"].items():
            lines.append(
                f"- {model}: QLoRA / LoRA peak {v['peak_ratio']:.3f}, footprint "
                f"{v['footprint_ratio']:.3f}; with checkpointing on both "
                f"{v['peak_ratio_both_checkpointing']:.3f}, on neither "
                f"{v['peak_ratio_neither_checkpointing']:.3f}"
            )
        lines.append("")
    return lines


def write_report(
    results: dict[str, dict[str, Any]], suite: dict[str, dict[str, Any]], doc: Path, quick: bool
) -> None:
    plot_dir = PLOTS if doc == DOC else doc.parent / "plots"
    made = plots(results, plot_dir)
    machine = quiet.machine()
    table = rows(results, suite)
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime())
    lines = [
        "# Benchmarks",
        "",
        f"Measured {when} with `python bench/run_all.py{' --quick' if quick else ''}` "
        "(each benchmark alone, after the machine was quiet; the training benchmarks also "
        "checked before each measurement). Medians and ratios; raw numbers in "
        "`bench/results/*.json`. A figure marked *contended* was measured while other "
        "processes used more than 10 % of the CPU and is not valid.",
        "",
        f"Machine: {machine.cpu}, {machine.cores} cores, {machine.ram_gib} GiB RAM, CPU only; "
        f"Python {machine.python}, torch {machine.torch}, transformers {machine.transformers}, "
        f"peft {machine.peft}, accelerate {machine.accelerate}.",
        "",
        "| figure | target | measured | result |",
        "|---|---|---|---|",
        *[row.markdown() for row in table],
        "",
        "## Commands",
        "",
    ]
    for name in FULL:
        if name in results:
            command = results[name].get("command") or suite.get(name, {}).get("command")
            command = command or f"python bench/{name}.py"
            lines.append(f"- {name}: `{command}`")
    lines += ["", "## Details", ""] + details(results)
    if made:
        rel = plot_dir.relative_to(doc.parent) if plot_dir.is_relative_to(doc.parent) else plot_dir
        lines += ["## Plots", ""] + [f"![{name}]({rel / file})" for name, file in made.items()]
        lines.append("")
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text("\n".join(lines))
    print(f"\nwrote {doc}")
    for row in table:
        print(row.markdown())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small versions of every benchmark")
    parser.add_argument("--no-wait", action="store_true", help="do not wait for a quiet machine")
    parser.add_argument("--only", nargs="+", choices=list(FULL), help="run only these")
    parser.add_argument("--report-only", action="store_true", help="only rebuild the report")
    args = parser.parse_args()
    suite_file = quiet.RESULTS / "run_all.json"
    suite = json.loads(suite_file.read_text()) if suite_file.is_file() else {}
    if not args.report_only:
        ran = run_benchmarks(args.only or list(FULL), args.quick, not args.no_wait)
        suite = {**suite, **ran}
        quiet.RESULTS.mkdir(exist_ok=True)
        suite_file.write_text(json.dumps(suite, indent=2) + "\n")
    write_report(load_results(), suite, QUICK_DOC if args.quick else DOC, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
