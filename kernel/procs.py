"""Which process a run folder's status names, beyond its pid.

A pid alone is not an identity: after a reboot, or in a run folder copied from
another machine, the same number belongs to some other process. A run records
its process's pid together with that process's start time (psutil's
`create_time`), and a process counts as the run's only when both match.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psutil

#: seconds of slack when comparing start times (psutil rounds them from clock ticks)
START_TIME_SLACK_S = 1.0


@dataclass(frozen=True)
class ProcessIdentity:
    pid: int
    started: float

    @classmethod
    def of(cls, pid: int) -> ProcessIdentity | None:
        """The identity of the live process `pid`, or None when there is none."""
        try:
            return cls(pid, psutil.Process(pid).create_time())
        except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError, OverflowError):
            return None

    @classmethod
    def from_status(cls, status: dict[str, Any]) -> ProcessIdentity | None:
        """The identity a status.json records (None when it records none or garbage)."""
        pid, started = status.get("pid"), status.get("pid_started")
        if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
            return None
        if isinstance(started, bool) or not isinstance(started, int | float):
            return None
        return cls(pid, float(started))

    def process(self) -> psutil.Process | None:
        """The live, non-zombie process with this identity, or None."""
        try:
            process = psutil.Process(self.pid)
            if abs(process.create_time() - self.started) > START_TIME_SLACK_S:
                return None  # the pid was reused by another process
            if process.status() == psutil.STATUS_ZOMBIE:
                return None
            return process
        except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError, OverflowError):
            return None

    def alive(self) -> bool:
        return self.process() is not None
