"""The soak: seeded random cases from every reliability class, against the CLI.

Each case runs `peftlab` in its own process with a time limit. Whatever the case, the
command must end within its limit, print no traceback, and change no file outside the
runs folder nor any run folder other than the one the case made or aimed at (checksums
before and after). Kills during training must leave no training process behind.
Run with: python -m pytest -m slow tests/reliability/test_soak.py -s
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
import yaml

from tests.reliability.builders import cli_env, technique_bundle
from tests.reliability.test_runs import PACED_TECHNIQUE
from tests.reliability.test_yaml_bombs import alias_bomb

CASES = int(os.environ.get("PEFTLAB_SOAK_CASES") or 200)
SEED = int(os.environ.get("PEFTLAB_SOAK_SEED") or 17)
LIMIT_S = 90.0
GOOD_TECHNIQUE = "from sdk import Technique\n\n\nclass T(Technique):\n    def apply(self, model, ctx):\n        return model\n"


@dataclass
class World:
    root: Path
    data: Path
    model: Path
    counts: Counter = field(default_factory=Counter)

    @property
    def runs(self) -> Path:
        return self.root / "runs"


@dataclass
class Case:
    kind: str
    args: list[str]
    target: str | None = None  # the run folder the case may change
    kill: tuple[str, float] | None = None  # (what, after seconds)
    env: dict[str, str] = field(default_factory=dict)


# checksums ------------------------------------------------------------------------------


def checksums(root: Path) -> dict[str, str]:
    """sha256 of every regular file under root (links and special files by their kind)."""
    sums = {}
    for current, dirs, names in os.walk(root, followlinks=False):
        dirs[:] = [d for d in dirs if d not in ("home", "cache", "__pycache__")]
        for name in names:
            path = Path(current) / name
            mode = path.lstat().st_mode
            if name == ".train.lock" or name.endswith(".tmp"):
                continue
            if stat.S_ISREG(mode):
                sums[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                sums[str(path.relative_to(root))] = f"mode {stat.S_IFMT(mode)}"
    return sums


def changed(
    before: dict[str, str], after: dict[str, str], case: Case, new_runs: set[str]
) -> list[str]:
    allowed = set(new_runs) | ({case.target} if case.target else set())
    differ = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    return sorted(
        k for k in differ
        if not (k.startswith("runs/") and k.split("/")[1] in allowed)
        and not k.startswith("cases/")  # each case's own inputs
    )  # fmt: skip


# case builders --------------------------------------------------------------------------


def case_dir(world: World, n: int) -> Path:
    folder = world.root / "cases" / f"c{n:03d}"
    folder.mkdir(parents=True)
    return folder


def base_args(world: World) -> list[str]:
    return ["--dataset", "rotten_tomatoes", "--set", f"dataset.path={world.data}",
            "--set", "dataset.max_length=16", "--model", "bert",
            "--set", f"model.name_or_path={world.model}", "--set", "trainer.measure_baseline=false"]  # fmt: skip


def fuzzed_recipe(world: World, rng: random.Random, n: int) -> Case:
    good = {"name": f"fuzz{n}", "dataset": {"id": "rotten_tomatoes", "params": {"path": str(world.data)}},
            "model": {"id": "bert", "params": {"name_or_path": str(world.model)}},
            "technique": {"id": "lora"}, "trainer": {"id": "hf_trainer", "params": {"max_steps": 1}}}  # fmt: skip
    mutation = rng.choice(["bomb", "latin1", "list", "junk", "deep", "unknown", "types", "huge",
                           "nopath", "dupkey", "ok", "binary", "selfref", "column"])  # fmt: skip
    text: str | bytes = yaml.safe_dump(good)
    if mutation == "bomb":
        text = alias_bomb(rng.randint(6, 10), rng.randint(6, 12))
    elif mutation == "latin1":
        text = yaml.safe_dump(good).replace("fuzz", "caf\xe9").encode("latin-1")
    elif mutation == "list":
        text = yaml.safe_dump([good, good])
    elif mutation == "junk":
        text = "".join(rng.choice("{}[]:,&*!|>-'\"\n\t #abc") for _ in range(rng.randint(1, 300)))
    elif mutation == "deep":
        text = "a: " + "[" * rng.randint(50, 5000)
    elif mutation == "unknown":
        good["technique"]["params"] = {"nonsense": 1}
        text = yaml.safe_dump(good)
    elif mutation == "types":
        good["trainer"]["params"] = {"max_steps": rng.choice(["many", [1], {"a": 1}, True, None])}
        text = yaml.safe_dump(good)
    elif mutation == "huge":
        good["trainer"]["params"] = {"max_steps": 10 ** rng.randint(12, 30)}
        text = yaml.safe_dump(good)
    elif mutation == "nopath":
        good["dataset"]["params"]["path"] = f"missing/{n}"
        text = yaml.safe_dump(good)
    elif mutation == "dupkey":
        text = yaml.safe_dump(good) + "name: again\n"
    elif mutation == "binary":
        text = bytes(rng.randrange(256) for _ in range(rng.randint(1, 400)))
    elif mutation == "selfref":
        text = "name: &a [x, *a]\n"
    elif mutation == "column":
        bad = case_dir(world, n) / "data.csv"
        bad.write_text("review;stars\ngood;1\n", encoding="utf-8")
        good["dataset"] = {"id": "csv", "params": {"path": str(bad)}}
        text = yaml.safe_dump(good)
    folder = world.root / "cases" / f"c{n:03d}"
    folder.mkdir(parents=True, exist_ok=True)
    recipe = folder / "recipe.yaml"
    recipe.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return Case(f"recipe:{mutation}", ["train", "--recipe", str(recipe), "--prepare-only"])


def fuzzed_manifest(world: World, rng: random.Random, n: int) -> Case:
    folder = technique_bundle(case_dir(world, n), f"m{n}", GOOD_TECHNIQUE)
    manifest = folder / "plugin.yaml"
    mutation = rng.choice(["bomb", "latin1", "dup", "types", "truncate", "empty", "list", "ok"])
    text = manifest.read_text(encoding="utf-8")
    if mutation == "bomb":
        manifest.write_text(text + alias_bomb(), encoding="utf-8")
    elif mutation == "latin1":
        manifest.write_bytes(text.replace("reliability", "caf\xe9").encode("latin-1"))
    elif mutation == "dup":
        manifest.write_text(text + "id: again\n", encoding="utf-8")
    elif mutation == "types":
        manifest.write_text(text.replace("version: 1.0.0", "version: [1]"), encoding="utf-8")
    elif mutation == "truncate":
        manifest.write_text(text[: rng.randint(0, len(text))], encoding="utf-8")
    elif mutation == "empty":
        manifest.write_text("", encoding="utf-8")
    elif mutation == "list":
        manifest.write_text("- 1\n- 2\n", encoding="utf-8")
    command = rng.choice([["plugins", "validate", str(folder)],
                          ["--plugins-dir", str(folder.parent), "plugins", "list"]])  # fmt: skip
    return Case(f"manifest:{mutation}", command)


DAMAGES = {
    "results-latin1": ("results.json", b'{"accuracy": 0.5, "x": "\xe9"}'),
    "results-list": ("results.json", b"[0.5]"),
    "results-string": ("results.json", b'{"accuracy": "0.9", "train_runtime_s": "fast"}'),
    "status-pid": ("status.json", b'{"state": "running", "pid": "12", "pid_started": "x"}'),
    "status-junk": ("status.json", b"\x00\x01{"),
    "recipe-list": ("recipe.yaml", b"- 1\n"),
    "recipe-bomb": ("recipe.yaml", alias_bomb().encode()),
    "recipe-latin1": ("recipe.yaml", b"name: caf\xe9\n"),
    "ckpt-state": ("checkpoints/checkpoint-2/trainer_state.json", b"{broken"),
    "adapter-truncated": (
        "adapter/adapter_model.safetensors",
        b"\x10\x00\x00\x00\x00\x00\x00\x00{",
    ),
    "adapter-pickle": ("adapter/adapter_model.bin", b"\x80\x04K\x01."),
}


def damaged_run(world: World, rng: random.Random, n: int) -> Case:
    from kernel.runs import RunFolder

    damage = rng.choice(sorted(DAMAGES))
    run = RunFolder.create(world.runs, f"damaged{n}")
    run.write_recipe({"name": "d", "dataset": {"id": "rotten_tomatoes"}, "model": {"id": "bert"},
                      "technique": {"id": "lora", "path": "/nonexistent"}, "trainer": {"id": "hf_trainer"}})  # fmt: skip
    run.set_status(rng.choice(["completed", "failed", "running"]), pid=2**22 + n, pid_started=1.0)
    name, content = DAMAGES[damage]
    (run.path / name).parent.mkdir(parents=True, exist_ok=True)
    (run.path / name).write_bytes(content)
    command = rng.choice([["runs"], ["runs", "--json"], ["train", "--resume", run.id],
                          ["predict", run.id, "a fine film"], ["train", "--resume", f"runs/{run.id}/"]])  # fmt: skip
    return Case(f"run:{damage}:{command[0]}", command, target=run.id)


def linked_bundle(world: World, rng: random.Random, n: int) -> Case:
    folder = technique_bundle(case_dir(world, n), f"l{n}", GOOD_TECHNIQUE)
    kind = rng.choice(["devzero", "secret", "fifo", "module", "dirloop", "dangling"])
    if kind == "devzero":
        (folder / "weights.bin").symlink_to("/dev/zero")
    elif kind == "secret":
        (folder / "notes.txt").symlink_to(world.root / "outside" / "secret.txt")
    elif kind == "fifo":
        os.mkfifo(folder / "pipe")
    elif kind == "module":
        (folder / "technique.py").unlink()
        (folder / "technique.py").symlink_to(world.root / "outside" / "evil.py")
    elif kind == "dirloop":
        (folder / "loop").symlink_to(folder)
    else:
        (folder / "gone.py").symlink_to(folder / "nothing")
    if rng.random() < 0.5:
        return Case(f"links:{kind}:validate", ["plugins", "validate", str(folder)])
    args = ["--plugins-dir", str(folder.parent), "train", *base_args(world), "--technique", f"l{n}",
            "--prepare-only"]  # fmt: skip
    return Case(f"links:{kind}:train", args)


IMPORT_FAULTS = {
    "exit": "import os\nos._exit(7)",
    "sleep": "import time\ntime.sleep(600)",
    "interrupt": "raise KeyboardInterrupt",
    "sysexit": "raise SystemExit(3)",
    "raise": "raise RuntimeError('boom')",
}


def import_fault(world: World, rng: random.Random, n: int) -> Case:
    fault = rng.choice(sorted(IMPORT_FAULTS))
    body = f"from sdk import Technique\n{IMPORT_FAULTS[fault]}\n" + GOOD_TECHNIQUE.split("\n", 1)[1]
    folder = technique_bundle(case_dir(world, n), f"i{n}", body)
    return Case(f"import:{fault}", ["plugins", "validate", str(folder)],
                env={"PEFTLAB_IMPORT_TIMEOUT_S": "3"})  # fmt: skip


def kill_during_training(world: World, rng: random.Random, n: int) -> Case:
    what = rng.choice(["SIGINT", "SIGTERM", "SIGHUP", "runner-SIGKILL"])
    args = ["--plugins-dir", str(world.root / "plugins"), "train", *base_args(world),
            "--technique", "paced", "--set", "trainer.max_steps=60", "--set", "trainer.save_steps=5",
            "--set", "trainer.batch_size=4", "--name", f"kill{n}"]  # fmt: skip
    return Case(f"kill:{what}", args, kill=(what, rng.uniform(0.5, 25.0)))


BUILDERS: list[tuple[float, Callable[[World, random.Random, int], Case]]] = [
    (0.28, fuzzed_recipe),
    (0.16, fuzzed_manifest),
    (0.24, damaged_run),
    (0.14, linked_bundle),
    (0.10, import_fault),
    (0.08, kill_during_training),
]


# running --------------------------------------------------------------------------------


def run_case(world: World, case: Case) -> tuple[int, str]:
    command = [
        sys.executable,
        "-m",
        "ui.cli",
        "--no-entry-points",
        "--runs-dir",
        str(world.runs),
        *case.args,
    ]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             errors="replace", env=cli_env(world.root, **case.env), cwd=str(world.root))  # fmt: skip
    if case.kill is not None:
        _kill_later(world, child, *case.kill)
    try:
        out, err = child.communicate(timeout=LIMIT_S)
    except subprocess.TimeoutExpired:
        child.kill()
        out, err = child.communicate()
        raise AssertionError(f"{case.kind} {case.args}: no answer within {LIMIT_S} s") from None
    return child.returncode, out + err


def _kill_later(world: World, child: subprocess.Popen, what: str, after: float) -> None:
    deadline = time.monotonic() + after
    while time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.05)
    if child.poll() is not None:
        return
    if what == "runner-SIGKILL":
        for pid in _training_pids(world):
            os.killpg(pid, signal.SIGKILL)
        return
    child.send_signal(getattr(signal, what))


def _training_pids(world: World) -> list[int]:
    pids = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if "engine.runner" in cmdline and any(str(world.runs) in part for part in cmdline):
            pids.append(process.pid)
    return pids


def _orphans(world: World) -> list[int]:
    """Training processes still running 40 s after the command ended (killed, then named)."""
    deadline = time.monotonic() + 40
    while _training_pids(world) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = _training_pids(world)
    for pid in left:
        os.killpg(pid, signal.SIGKILL)
    return left


def make_world(tmp_path: Path, tiny_models, tiny_csv_dir) -> World:
    root = tmp_path / "world"
    (root / "outside").mkdir(parents=True)
    (root / "outside" / "secret.txt").write_text("password=hunter2\n", encoding="utf-8")
    (root / "outside" / "evil.py").write_text(
        "import os\nos.environ['PWNED'] = '1'\n", encoding="utf-8"
    )
    data = shutil.copytree(tiny_csv_dir, root / "outside" / "data")
    model = shutil.copytree(tiny_models["bert"], root / "outside" / "model")
    technique_bundle(root / "plugins", "paced", PACED_TECHNIQUE)
    world = World(root, data, model)
    world.runs.mkdir()
    from kernel.runs import RunFolder

    for n in range(3):  # finished runs of someone else: must never change
        run = RunFolder.create(world.runs, f"other{n}")
        run.write_recipe({"name": f"other{n}", "dataset": {"id": "rotten_tomatoes"}})
        run.set_status("completed", started=1.0, finished=2.0)
        run.write_results({"accuracy": 0.5 + n / 10})
    return world


def pick(rng: random.Random) -> Callable[[World, random.Random, int], Case]:
    roll, total = rng.random(), 0.0
    for weight, builder in BUILDERS:
        total += weight
        if roll < total:
            return builder
    return BUILDERS[-1][1]


@pytest.mark.slow
def test_soak(tmp_path: Path, tiny_models, tiny_csv_dir) -> None:
    world = make_world(tmp_path, tiny_models, tiny_csv_dir)
    rng = random.Random(SEED)
    failures: list[str] = []
    outcomes: Counter = Counter()
    started = time.monotonic()
    for n in range(CASES):
        case = pick(rng)(world, rng, n)
        before = checksums(world.root)
        runs_before = {p.name for p in world.runs.iterdir()}
        code, output = run_case(world, case)
        left = _orphans(world) if case.kill is not None else []
        if left:
            failures.append(f"{n} {case.kind} after {case.kill[1]:.1f} s: left running {left}")
        new_runs = {p.name for p in world.runs.iterdir()} - runs_before
        outcomes[(case.kind.split(":")[0], "ok" if code == 0 else "refused")] += 1
        if "Traceback" in output:
            failures.append(f"{n} {case.kind}: traceback\n{output[-1500:]}")
        moved = changed(before, checksums(world.root), case, new_runs)
        if moved:
            failures.append(f"{n} {case.kind}: changed {moved[:5]}")
        world.counts[case.kind] += 1
    print(f"\nsoak: {CASES} cases (seed {SEED}) in {time.monotonic() - started:.0f} s")
    for key, count in sorted(outcomes.items()):
        print(f"  {key[0]:<10} {key[1]:<8} {count}")
    for kind, count in sorted(world.counts.items()):
        print(f"    {kind:<40} {count}")
    assert not failures, "\n\n".join(failures[:10])
    listing = subprocess.run([sys.executable, "-m", "ui.cli", "--runs-dir", str(world.runs), "runs"],
                             capture_output=True, text=True, timeout=60, env=cli_env(world.root))  # fmt: skip
    assert listing.returncode == 0 and "Traceback" not in listing.stderr
