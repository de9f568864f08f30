"""Requests per client per minute, in a sliding window, for POST /api/token."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

WINDOW_S = 60.0


def retry_after(wait_s: float) -> str:
    """Retry-After's whole seconds, never 0 (that would invite an immediate retry)."""
    return str(max(1, math.ceil(wait_s)))


class RateLimiter:
    """At most `per_minute` requests per key in any 60 s. Keys that went quiet are forgotten, so
    many one-off clients cost memory only for a minute."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._seen: dict[str, deque[float]] = {}
        self._next_sweep = 0.0

    def check(self, key: str) -> float:
        """Take one request for `key`: 0.0 if allowed, else the seconds until one would be."""
        now = self._clock()
        self._sweep(now)
        times = self._seen.setdefault(key, deque())
        while times and times[0] <= now - WINDOW_S:
            times.popleft()
        if len(times) >= self.per_minute:
            return times[0] + WINDOW_S - now
        times.append(now)
        return 0.0

    def _sweep(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + WINDOW_S
        for key in [k for k, times in self._seen.items() if not times or times[-1] <= now - WINDOW_S]:
            del self._seen[key]
