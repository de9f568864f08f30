"""Prometheus metrics from turn records: stage histograms and turn counters.

The dashboard server feeds these from the turns.jsonl files it follows; an agent process can feed
them straight from its tracer and expose them itself:

    from latency.metrics import observe_turn, start_metrics_server
    start_metrics_server(9464)
    tracer = CallTracer(call_id, lambda r: (turn_log.write(r), observe_turn(r)), budget=...)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server

from .budget import BUDGET_STAGES

# Seconds. Dense around the sub-second budgets, then coarse up to the multi-second CPU turns.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


class TurnMetrics:
    """The metric families, registered on one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.stage_seconds = Histogram(
            "halfsec_turn_stage_seconds",
            "Time a turn waited on each budget stage (critical path of voice-to-voice)",
            ["stage"],
            buckets=BUCKETS,
            registry=registry,
        )
        self.v2v_seconds = Histogram(
            "halfsec_turn_v2v_seconds",
            "Voice to voice: last voiced input sample to first agent audio frame out",
            buckets=BUCKETS,
            registry=registry,
        )
        self.turns = Counter("halfsec_turns", "Turns finished", registry=registry)
        self.within_target = Counter(
            "halfsec_turns_within_target", "Turns whose v2v was within the total budget", registry=registry
        )
        self.over_budget = Counter(
            "halfsec_turn_stage_over_budget", "Turns in which a stage overran its budget", ["stage"], registry=registry
        )
        self.interruptions = Counter("halfsec_turn_interruptions", "Turns the caller interrupted", registry=registry)
        self.fallbacks = Counter(
            "halfsec_turn_fallbacks", "Turns answered with the fallback line (a component failed)", registry=registry
        )
        self.unheard = Counter(
            "halfsec_turn_unheard",
            "Turns the ASR heard speech in but no words, even decoded whole (the agent asked to repeat)",
            registry=registry,
        )
        self.errors = Counter(
            "halfsec_turn_errors",
            "Turns that ended with no agent audio and no interruption (the caller got no answer)",
            registry=registry,
        )
        self.invalid = Counter(
            "halfsec_turn_invalid_records",
            "Turn records that break an invariant (negative stage, stages not summing to v2v, ...)",
            registry=registry,
        )
        for stage in BUDGET_STAGES:  # every stage shows up at 0 before its first turn
            self.stage_seconds.labels(stage)
            self.over_budget.labels(stage)

    def observe(self, record: Any) -> None:
        """Count one turn: a TurnRecord or its JSON dict (of the current schema)."""
        r: Mapping[str, Any] = asdict(record) if is_dataclass(record) else record
        self.turns.inc()
        for stage, ms in (r.get("stages_ms") or {}).items():
            if stage in BUDGET_STAGES:
                self.stage_seconds.labels(stage).observe(ms / 1000.0)
        for stage in r.get("over_budget") or ():
            if stage in BUDGET_STAGES:
                self.over_budget.labels(stage).inc()
        if r.get("v2v_ms") is not None:
            self.v2v_seconds.observe(r["v2v_ms"] / 1000.0)
        if r.get("within_target"):
            self.within_target.inc()
        if r.get("interrupted"):
            self.interruptions.inc()
        if r.get("fallback"):
            self.fallbacks.inc()
        if r.get("unheard"):
            self.unheard.inc()
        if r.get("v2v_ms") is None and not r.get("interrupted"):
            self.errors.inc()
        if r.get("invalid"):
            self.invalid.inc()


_process_metrics: TurnMetrics | None = None


def process_metrics() -> TurnMetrics:
    """This process's metrics, on prometheus_client's default registry (created on first use)."""
    global _process_metrics
    if _process_metrics is None:
        _process_metrics = TurnMetrics(REGISTRY)
    return _process_metrics


def observe_turn(record: Any) -> None:
    """Update this process's metrics from a finished turn (usable as, or beside, a tracer sink)."""
    process_metrics().observe(record)


def start_metrics_server(port: int, addr: str = "127.0.0.1") -> TurnMetrics:
    """Expose this process's metrics on http://addr:port/metrics (a background thread)."""
    metrics = process_metrics()
    start_http_server(port, addr=addr, registry=metrics.registry)
    return metrics
