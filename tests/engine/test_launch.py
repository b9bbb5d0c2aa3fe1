"""Parallel runs on one machine: slots share the cores, run_many keeps to its limit."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from engine.sweep_launch import run_many, slots
from kernel.runs import RunFolder


def test_slots_split_the_cores_and_set_thread_counts(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3, 4, 5, 6, 7})
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    four = slots(4)
    assert [s.cores for s in four] == [(0, 1), (2, 3), (4, 5), (6, 7)]
    assert [s.gpu for s in four] == ["0", "1", "0", "1"]
    env = four[1].env()
    assert env["OMP_NUM_THREADS"] == "2" and env["MKL_NUM_THREADS"] == "2"
    assert env["CUDA_VISIBLE_DEVICES"] == "1"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    three = slots(3)  # 8 cores over 3: two each, none shared
    assert [s.cores for s in three] == [(0, 1), (2, 3), (4, 5)]
    assert "CUDA_VISIBLE_DEVICES" not in three[0].env()


def test_more_slots_than_cores_share_single_cores(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1})
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert [s.cores for s in slots(3)] == [(0,), (1,), (0,)]


class CountingLauncher:
    """Holds each run for a moment and records how many were in flight at once."""

    def __init__(self) -> None:
        self.now = self.most = 0
        self.lock = threading.Lock()

    def run(self, run: RunFolder) -> int:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(0.05)
        with self.lock:
            self.now -= 1
        return int(run.path.name)


@pytest.mark.parametrize("parallel", [1, 2, 3])
def test_run_many_keeps_to_its_limit_and_the_order(tmp_path: Path, parallel: int):
    launcher = CountingLauncher()
    runs = [RunFolder(tmp_path / str(i)) for i in range(6)]
    seen: list[str] = []
    codes = run_many(runs, launcher, parallel, on_done=lambda run, code: seen.append(run.id))
    assert codes == [0, 1, 2, 3, 4, 5]
    assert launcher.most == parallel
    assert sorted(seen) == [str(i) for i in range(6)]
