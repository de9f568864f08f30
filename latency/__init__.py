"""Per-turn latency: what a turn's record says, its durable log, and summaries of it.

Imported by every other package; imports none of them.
"""

from .budget import BUDGET_STAGES, Budget
from .trace import MILESTONES, SCHEMA_VERSION, STAGES, TurnRecord, build_record, invariants
from .turnlog import TurnLog, read_turns

__all__ = [
    "BUDGET_STAGES",
    "Budget",
    "MILESTONES",
    "SCHEMA_VERSION",
    "STAGES",
    "TurnLog",
    "TurnRecord",
    "build_record",
    "invariants",
    "read_turns",
]
