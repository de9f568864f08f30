"""Mid-call faults on the real stack: a service's process group killed (SIGKILL) or hung (SIGSTOP:
the kernel still accepts its connections, nothing answers) before turn 2 of a three-turn call,
then mended before turn 3. Shared by tests/test_llm_recovery.py and tests/test_faults.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.sim.call import CallResult, run_call
from configs import Settings
from services.supervisor import ServiceSpec, Supervisor, Watch, is_healthy

# Hung services are mended with SIGCONT, not by the supervisor's restart after failed /health
# probes: a restart costs a model load (a vLLM start is 30-70 s here), SIGCONT nothing.
NO_PROBE_RESTARTS = Watch(max_backoff_s=1.0, unhealthy_probes=10**6)
# ASR and TTS come back within seconds of a kill: the restart waits until the outage turn is over.
SLOW_RESTARTS = Watch(first_backoff_s=8.0, max_backoff_s=8.0, unhealthy_probes=10**6)


@dataclass
class Fault:
    """`kind` ("kill" | "hang") of service `name` under `sup`, from turn 2 (the first outage
    turn) to turn `mend_at` (then the service is healthy again before the caller speaks)."""

    sup: Supervisor
    spec: ServiceSpec
    kind: str
    mend_at: int = 3
    pgid: int | None = None
    made_at: float = 0.0
    recovered_s: list[float] = field(default_factory=list)  # healthy again, after the fault was made
    mended_s: list[float] = field(default_factory=list)  # healthy again, after the mending began

    async def before_turn(self, n: int) -> None:
        name = self.spec.name
        if n == 2:
            self.pgid = self.sup.procs[name].pid  # start_new_session: the group id is the leader's pid
            self.made_at = time.monotonic()
            os.killpg(self.pgid, signal.SIGKILL if self.kind == "kill" else signal.SIGSTOP)
        elif n == self.mend_at:
            t0 = time.monotonic()
            if self.kind == "hang":
                self.resume()
            deadline = t0 + self.spec.startup_timeout_s
            while not ((self.kind == "hang" or self.sup.restarts.get(name)) and await is_healthy(self.spec.health_url)):
                assert time.monotonic() < deadline, f"{name} not back:\n{self.sup.tail(name)}"
                await asyncio.sleep(0.2)
            self.recovered_s.append(time.monotonic() - self.made_at)
            self.mended_s.append(time.monotonic() - t0)

    def resume(self) -> None:
        if self.kind == "hang" and self.pgid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pgid, signal.SIGCONT)


async def faulty_call(settings: Settings, wavs: list[Path], out: Path, fault: Fault, turns: int = 3) -> CallResult:
    """A call of `turns` turns (cycling through `wavs`) with `fault` from turn 2 to `fault.mend_at`."""
    before: Callable[[int], Awaitable[None]] = fault.before_turn
    try:
        # 60 s: turn 1's reply on two cores shared with other calls' services took 30 s once
        files = [wavs[i % len(wavs)] for i in range(turns)]
        return await run_call(settings, files, out, before_turn=before, reply_timeout_s=60.0)
    finally:
        fault.resume()  # a failed test leaves no stopped service behind


def heard_ms(turn: dict[str, Any]) -> float:
    marks = turn["marks_ms"]
    return marks["first_frame_out"] - marks["end_of_turn"]


def check_outage_call(
    call: CallResult, fault: Fault, fallback: str | None, *, outage_turns: int = 1, stage: str = ""
) -> list[float]:
    """Turn 1 a real answer; each outage turn the fallback, heard within 2 s of the end of the
    turn; the turn after recovery a real answer again. `fallback`: the text the record shows
    (None: the reply's own text, when only its audio is replaced). Returns the outage turns' ms."""
    assert fault.pgid is not None and fault.recovered_s, "the fault was never made or mended"
    assert len(call.turns) == outage_turns + 2, [t.get("agent_text") for t in call.turns]
    first, *during, after = call.turns
    texts = {fallback} if fallback else set()
    assert not first["fallback"] and first["agent_text"] and first["agent_text"] not in texts, first
    heard = []
    for turn in during:
        assert turn["fallback"] is True, turn
        if fallback:
            assert turn["agent_text"] == fallback, turn
        assert not turn["invalid"], turn["invalid"]  # the record still adds up
        heard.append(heard_ms(turn))
        assert heard[-1] < 2000, turn["marks_ms"]
    assert not after["fallback"] and after["agent_text"] and after["agent_text"] not in texts, after
    print(
        f"{stage}: fallback heard {', '.join(f'{h:.0f}' for h in heard)} ms after the end of the turn; "
        f"healthy again {fault.recovered_s[0]:.1f} s after the fault, {fault.mended_s[0]:.1f} s after "
        f"{'SIGCONT' if fault.kind == 'hang' else 'turn 3 began to wait'}; "
        f"turn 1 TTFT {_gap(first, 'llm_request', 'llm_first_token')} ms, "
        f"TTS first audio {_gap(first, 'tts_request', 'tts_first_audio')} ms; "
        f"after: {after['agent_text']!r}"
    )
    return heard


def _gap(turn: dict[str, Any], a: str, b: str) -> str:
    marks = turn["marks_ms"]
    return f"{marks[b] - marks[a]:.0f}" if a in marks and b in marks else "-"
