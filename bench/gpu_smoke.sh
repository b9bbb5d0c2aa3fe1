#!/usr/bin/env bash
# QLoRA against 16-bit LoRA on a BERT-base-sized model, a few training steps each on a CUDA
# GPU, reporting peak CUDA memory (bench/gpu_smoke.py does the work). Without a GPU it says
# so and exits 0, so it can run anywhere.
#
#   bench/gpu_smoke.sh [--steps 5] [--batch 8] [--length 128] [--output DIR]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-$(command -v python3 || command -v python)}"

if ! "$python" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    echo "gpu_smoke: no CUDA GPU present (torch.cuda.is_available() is false); nothing to measure"
    exit 0
fi
if ! "$python" -c 'import bitsandbytes' 2>/dev/null; then
    echo "gpu_smoke: a CUDA GPU is present but bitsandbytes is not installed (pip install bitsandbytes)" >&2
    exit 1
fi
exec "$python" "$here/gpu_smoke.py" "$@"
