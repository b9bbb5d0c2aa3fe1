"""What the benchmarks share: waiting for a quiet machine, measuring who else used the CPU, the machine.

A timing taken while other processes compete for the 2 cores says nothing about
peftlab. Each benchmark waits until the machine is quiet before a measurement
(`wait_for_quiet`) and records, for every measurement, the share of the machine's
CPU that other processes used meanwhile (`OtherLoad`): /proc/stat's busy time
minus the CPU time of this process and the children it waited for.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
MAX_LOAD = 2.5  # 1-minute load average on 2 cores
MAX_OTHERS = 0.10  # share of the machine's CPU other processes may use during a measurement


def _cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    with open("/proc/stat", encoding="ascii") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return total - idle, total


def _own_cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def others_share(seconds: float = 2.0) -> float:
    """Share of the machine's CPU used by other processes over `seconds` (0 = none, 1 = all cores)."""
    with OtherLoad() as load:
        time.sleep(seconds)
    return load.others


@dataclass
class OtherLoad:
    """Context manager: `others` = share of all cores busy with other processes during the block."""

    others: float = 0.0
    wall_s: float = 0.0
    load_before: float = field(default_factory=lambda: os.getloadavg()[0])

    def __enter__(self) -> OtherLoad:
        self._busy, self._total = _cpu_jiffies()
        self._own = _own_cpu_s()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        busy, total = _cpu_jiffies()
        self.wall_s = time.perf_counter() - self._start
        tick = os.sysconf("SC_CLK_TCK")
        busy_s = (busy - self._busy) / tick
        own_s = _own_cpu_s() - self._own
        span_s = max((total - self._total) / tick, 1e-9)  # all cores' time in the block
        self.others = min(1.0, max(0.0, busy_s - own_s) / span_s)

    def record(self) -> dict[str, float]:
        return {
            "others_cpu_share": round(self.others, 3),
            "load_before": round(self.load_before, 2),
        }


def wait_for_quiet(
    enabled: bool = True, max_load: float = MAX_LOAD, patience_s: float = 3600, say: Any = print
) -> dict[str, float]:
    """Block until the load average is under `max_load` and others use under MAX_OTHERS of the CPU.

    Gives up after `patience_s` (the measurement then goes ahead and is marked by its
    recorded others_cpu_share). Returns what it saw last.
    """
    waited = 0.0
    while True:
        load = os.getloadavg()[0]
        others = others_share(2.0)
        waited += 2.0
        if not enabled or (load < max_load and others < MAX_OTHERS) or waited >= patience_s:
            return {
                "load": round(load, 2),
                "others_cpu_share": round(others, 3),
                "waited_s": waited,
            }
        if int(waited) % 60 == 2:
            say(
                f"  waiting for a quiet machine: load {load:.1f}, others use {others:.0%} of the CPU"
            )
        time.sleep(8.0)
        waited += 8.0


def quiet_measurement(
    measure: Callable[[], dict[str, Any]], wait: bool = True, tries: int = 3, say: Any = print
) -> dict[str, Any]:
    """`measure()` on a quiet machine; when other processes still took more than MAX_OTHERS of
    the CPU while it ran, wait and measure again (at most `tries` times in all). The record
    says how many tries were discarded; the last one is kept whatever it saw."""
    for attempt in range(1, tries + 1):
        wait_for_quiet(wait, say=say)
        record = measure()
        busy = record.get("others_cpu_share", 0.0)
        if not wait or busy <= MAX_OTHERS or attempt == tries:
            record["discarded_tries"] = attempt - 1
            return record
        say(f"  other processes used {busy:.0%} of the CPU meanwhile: measuring again")
    raise AssertionError("unreachable")


def contended(records: list[dict[str, Any]]) -> bool:
    """True when any measurement ran while other processes used a noticeable share of the CPU."""
    return any(r.get("others_cpu_share", 0.0) > MAX_OTHERS for r in records)


@dataclass
class Machine:
    cpu: str
    cores: int
    ram_gib: float
    python: str
    torch: str
    transformers: str
    peft: str
    accelerate: str


def machine() -> Machine:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = {}
    for name in ("torch", "transformers", "peft", "accelerate"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = "-"
    return Machine(
        cpu=cpu,
        cores=os.cpu_count() or 0,
        ram_gib=round(ram, 1),
        python=platform.python_version(),
        **versions,
    )


def write_results(name: str, payload: dict[str, Any]) -> Path:
    """bench/results/<name>.json, with the command line that produced it."""
    RESULTS.mkdir(exist_ok=True)
    payload = {"command": " ".join(["python", *sys.argv]), **payload}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def machine_dict() -> dict[str, Any]:
    return asdict(machine())
