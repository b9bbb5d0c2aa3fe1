"""A tiny publish/subscribe hub for registry changes (the UI and `plugins watch` listen)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from kernel.registry import Change

log = logging.getLogger(__name__)
Subscriber = Callable[[Change], None]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Register a callback; returns a function that unsubscribes it."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def publish(self, change: Change) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(change)
            except Exception:  # a faulty listener must not stop the others or the kernel
                log.exception("event subscriber %r failed", callback)
