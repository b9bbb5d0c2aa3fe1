"""QLoRA (4-bit NF4 base) against LoRA on a 16-bit base, on a CUDA GPU: a few steps each, peak memory.

The model is BERT-base-sized, built from BertConfig() (12 layers, hidden 768,
random weights: nothing is downloaded) and saved once to a temporary folder so
that both variants load it with from_pretrained, as a real checkpoint is loaded.
Each variant trains in its own process (LoRA r 8, alpha 16 on query/value, AdamW,
bf16 autocast - fp16 where the GPU has no bf16), so the CUDA allocator's peak
(torch.cuda.max_memory_allocated) belongs to one variant only. Called by
bench/gpu_smoke.sh, which checks for a GPU first.

    python bench/gpu_smoke.py [--steps 5] [--batch 8] [--length 128] [--output DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def worker(variant: str, folder: str, steps: int, batch: int, length: int) -> dict[str, Any]:
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForSequenceClassification, BitsAndBytesConfig

    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    torch.manual_seed(0)
    if variant == "qlora":
        quantization = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype,
            llm_int8_skip_modules=["classifier", "pooler"],  # the new head stays trainable
        )
        model = AutoModelForSequenceClassification.from_pretrained(
            folder,
            num_labels=2,
            quantization_config=quantization,
            device_map={"": 0},
            use_safetensors=True,
        )
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(
            folder, num_labels=2, dtype=dtype, use_safetensors=True
        ).cuda()
    lora = LoraConfig(
        task_type="SEQ_CLS", r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["query", "value"]
    )
    model = get_peft_model(model, lora)
    model.train()
    loaded_mib = torch.cuda.memory_allocated() / 2**20
    torch.cuda.reset_peak_memory_stats()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=2e-4)
    vocab = model.config.vocab_size
    losses = []
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        inputs = {
            "input_ids": torch.randint(1000, vocab, (batch, length), device="cuda"),
            "attention_mask": torch.ones(batch, length, dtype=torch.long, device="cuda"),
            "labels": torch.randint(0, 2, (batch,), device="cuda"),
        }
        with torch.autocast("cuda", dtype=dtype):
            loss = model(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss))
    torch.cuda.synchronize()
    return {
        "variant": variant,
        "dtype": str(dtype).replace("torch.", ""),
        "weights_loaded_mib": loaded_mib,
        "peak_training_mib": torch.cuda.max_memory_allocated() / 2**20,
        "trainable": sum(p.numel() for p in params),
        "losses": losses,
        "finite": all(math.isfinite(x) for x in losses),
        "step_s": (time.perf_counter() - start) / steps,
        "gpu": torch.cuda.get_device_name(0),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--worker", choices=["qlora", "lora16"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.folder, args.steps, args.batch, args.length)))
        return 0

    import torch
    from transformers import BertConfig, BertForSequenceClassification

    with tempfile.TemporaryDirectory(prefix="gpu-smoke-") as folder:
        torch.manual_seed(0)
        BertForSequenceClassification(BertConfig(num_labels=2)).save_pretrained(folder)
        found = {}
        for variant in ("lora16", "qlora"):
            done = subprocess.run(
                [sys.executable, __file__, "--worker", variant, "--folder", folder,
                 "--steps", str(args.steps), "--batch", str(args.batch), "--length", str(args.length)],
                capture_output=True, text=True,
            )  # fmt: skip
            if done.returncode != 0:
                print(f"{variant} failed:\n{done.stderr[-4000:]}", file=sys.stderr)
                return 1
            found[variant] = json.loads(done.stdout.strip().splitlines()[-1])
    lora, qlora = found["lora16"], found["qlora"]
    ratio = qlora["peak_training_mib"] / lora["peak_training_mib"]
    for r in (lora, qlora):
        print(
            f"{r['variant']:7s} weights {r['weights_loaded_mib']:7.1f} MiB  peak in training "
            f"{r['peak_training_mib']:7.1f} MiB  step {r['step_s'] * 1000:6.1f} ms  "
            f"losses {[round(x, 3) for x in r['losses']]}"
        )
    weights = qlora["weights_loaded_mib"] / lora["weights_loaded_mib"]
    print(
        f"QLoRA / LoRA ({lora['dtype']}) peak CUDA memory in training: {ratio:.3f}, weights alone: "
        f"{weights:.3f} (BERT-base, batch {args.batch} x {args.length}, {args.steps} steps, "
        f"{lora['gpu']})"
    )
    args.output.mkdir(parents=True, exist_ok=True)
    payload = {
        "ratio_peak": ratio,
        "ratio_weights": weights,
        "batch": [args.batch, args.length],
        "runs": found,
    }
    (args.output / "gpu_smoke.json").write_text(json.dumps(payload, indent=2) + "\n")
    return 0 if lora["finite"] and qlora["finite"] else 1


if __name__ == "__main__":
    sys.exit(main())
