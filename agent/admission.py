"""How many calls this box takes at once, decided in one place: a call beyond the capacity is
refused up front, never squeezed in. Squeezing in is what made four calls on two cores leave
half their turns unanswered; refused, the caller goes to another worker (LiveKit dispatches by
each worker's reported load) and the calls in progress keep their latency.

The worker (`agent/worker.py`) reports `load` to LiveKit and refuses job requests past capacity
(LiveKit may dispatch before it has seen the latest load); `halfsec bench calls` asks the same
question for its simulated callers.
"""

from __future__ import annotations

from configs import Settings


def call_capacity(settings: Settings) -> int:
    """`worker.max_calls`, else the VRAM plan's calls, else 1."""
    if settings.worker.max_calls is not None:
        return settings.worker.max_calls
    from services.plan import current_plan

    plan = current_plan(settings)
    return max(plan.calls, 1) if plan.gpu_gb is not None else 1


class Admission:
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"call capacity must be at least 1 (got {capacity})")
        self.capacity = capacity

    def refusal(self, active: int) -> str | None:
        """Why a new call is refused with `active` calls in progress; None: it is admitted."""
        if active >= self.capacity:
            return f"full: {active} of {self.capacity} calls in progress (worker.max_calls)"
        return None

    def load(self, active: int) -> float:
        """The load LiveKit sees: 1.0 when full."""
        return min(active / self.capacity, 1.0)

    @property
    def load_threshold(self) -> float:
        """LiveKit marks the worker unavailable at this load: reached at `capacity` calls, not
        one before or after, whether LiveKit compares with > or >=."""
        return (self.capacity - 0.5) / self.capacity
