"""vLLM dying mid-call, for real: its process tree SIGKILLed between two turns. The caller hears
the spoken fallback within 2 s of the end of the turn, the call goes on, and once the supervisor
has restarted vLLM the next turn gets a real answer.

It runs its own vLLM, under its own Supervisor, on a free port: the session's shared one (which
the `services` fixture may only be reusing) is left alone. Slow here: two vLLM starts (~30-70 s
each on two busy cores)."""

import asyncio
import os
import signal
import time

from agent.sim.call import run_call
from services.supervisor import Supervisor, Watch, is_healthy, service_specs
from tests.ports import free_port


async def test_vllm_killed_mid_call_fallback_within_2s_then_recovery(services, settings, speech, tmp_path):
    own = settings.model_copy(update={"llm": settings.llm.model_copy(update={"port": free_port()})})
    (spec,) = [s for s in service_specs(own, "cpu") if s.name == "llm"]
    sup = Supervisor([spec], tmp_path / "logs", watch=Watch(max_backoff_s=1.0))
    await sup.start()
    killed: list[int] = []
    restarted_after_s: list[float] = []

    async def before_turn(n: int) -> None:
        if n == 2:  # after a real answer: the whole vLLM tree (API server, engine core) at once
            proc = sup.procs["llm"]
            os.killpg(proc.pid, signal.SIGKILL)
            killed.append(proc.pid)
        elif n == 3:  # the supervisor brings it back; the caller just calls again
            t0 = time.monotonic()
            deadline = t0 + spec.startup_timeout_s
            while not (sup.restarts.get("llm") and await is_healthy(spec.health_url)):
                assert time.monotonic() < deadline, (
                    f"vLLM not back after {spec.startup_timeout_s:.0f}s:\n{sup.tail('llm')}"
                )
                await asyncio.sleep(0.5)
            restarted_after_s.append(time.monotonic() - t0)

    wavs = [wav for wav, _ in speech[3:5]]
    try:
        call = await run_call(own, [wavs[0], wavs[1], wavs[0]], tmp_path, before_turn=before_turn)
    finally:
        await sup.stop()
    assert killed and restarted_after_s and len(call.turns) == 3
    before, during, after = call.turns
    fallback = settings.llm.fallback_text
    assert not before["fallback"] and before["agent_text"] and before["agent_text"] != fallback
    # the turn while vLLM is down: the apology, spoken, within 2 s of the end of the turn
    assert during["fallback"] is True and during["agent_text"] == fallback
    marks = during["marks_ms"]
    heard_ms = marks["first_frame_out"] - marks["end_of_turn"]
    assert heard_ms < 2000, marks
    # vLLM back under the same supervisor: a real answer again, in the same call
    assert not after["fallback"] and after["agent_text"] and after["agent_text"] != fallback, after
    print(
        f"fallback heard {heard_ms:.0f} ms after the end of the turn; vLLM back "
        f"{restarted_after_s[0]:.0f} s after turn 2; turn 3: {after['agent_text']!r}"
    )
