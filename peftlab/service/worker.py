"""The service's run queue: prepared runs start in order, N at a time (one by default)."""

from __future__ import annotations

import queue
import threading
import time

from engine.process import start_run
from kernel.runs import RunFolder


class RunQueue:
    """Worker threads that each start a queued run and wait for its process to end."""

    def __init__(self, workers: int = 1) -> None:
        self._queue: queue.Queue[RunFolder] = queue.Queue()
        self._waiting: list[str] = []
        self._lock = threading.Lock()
        for index in range(workers):
            threading.Thread(target=self._work, name=f"run-worker-{index}", daemon=True).start()

    def submit(self, run: RunFolder) -> int:
        """Queue a prepared run; its position (0 = next to start)."""
        with self._lock:
            self._waiting.append(run.id)
            position = len(self._waiting) - 1
        run.set_status("pending", queued=time.time())
        self._queue.put(run)
        return position

    def position(self, run_id: str) -> int | None:
        with self._lock:
            return self._waiting.index(run_id) if run_id in self._waiting else None

    def withdraw(self, run_id: str) -> bool:
        """Take a queued run off the queue (it will not start); False when not queued."""
        with self._lock:
            if run_id not in self._waiting:
                return False
            self._waiting.remove(run_id)
            return True

    def _work(self) -> None:
        while True:
            run = self._queue.get()
            with self._lock:
                if run.id not in self._waiting:
                    continue  # cancelled or deleted while it waited
                self._waiting.remove(run.id)
            try:
                process = start_run(run)
                process.wait()
            except Exception as exc:  # noqa: BLE001 - one run's failure must not stop the queue
                run.set_status("failed", error=f"could not start: {exc}", finished=time.time())
