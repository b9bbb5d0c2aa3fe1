"""Many clients polling a service at once: counts, errors and latency percentiles."""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass, field

import requests


@dataclass
class LoadStats:
    requests: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def p95_ms(self) -> float:
        return statistics.quantiles(self.latencies_ms, n=20)[-1] if self.latencies_ms else 0.0

    @property
    def max_ms(self) -> float:
        return max(self.latencies_ms, default=0.0)


def poll_for(url: str, run_id: str, *, clients: int, seconds: float) -> LoadStats:
    """Each client reads the run's progress, then its results or summary, until time is up."""
    stats = LoadStats()
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    paths = [f"/runs/{run_id}/progress", f"/runs/{run_id}", "/runs"]

    def client(index: int) -> None:
        session = requests.Session()
        count = 0
        while time.monotonic() < stop_at:
            path = paths[(index + count) % len(paths)]
            count += 1
            start = time.perf_counter()
            try:
                ok = session.get(url + path, timeout=30).status_code == 200
            except requests.RequestException:
                ok = False
            elapsed = (time.perf_counter() - start) * 1000
            with lock:
                stats.requests += 1
                stats.errors += 0 if ok else 1
                stats.latencies_ms.append(elapsed)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return stats
