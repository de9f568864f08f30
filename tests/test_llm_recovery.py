"""vLLM failing mid-call, for real: its process tree SIGKILLed, or SIGSTOPped (it takes the request
and never answers), between two turns. The caller hears the spoken fallback within 2 s of the end
of the turn, the call goes on, and once vLLM is back the next turn gets a real answer.

One vLLM of its own, under its own Supervisor, on a free port, shared by both tests: the session's
shared one (which the `services` fixture may only be reusing) is left alone. Slow here: two vLLM
starts (~30-70 s each on two busy cores): the module's, and the supervisor's after the kill. The
hung one is mended with SIGCONT (tests/faults.py)."""

import pytest

from configs import Settings
from services.supervisor import Supervisor, service_specs
from tests.faults import NO_PROBE_RESTARTS, Fault, check_outage_call, faulty_call
from tests.ports import free_port


@pytest.fixture(scope="module")
async def own_llm(settings: Settings, tmp_path_factory: pytest.TempPathFactory):
    own = settings.model_copy(update={"llm": settings.llm.model_copy(update={"port": free_port()})})
    (spec,) = [s for s in service_specs(own, "cpu") if s.name == "llm"]
    sup = Supervisor([spec], tmp_path_factory.mktemp("llm-logs"), watch=NO_PROBE_RESTARTS)
    await sup.start()
    try:
        yield own, spec, sup
    finally:
        await sup.stop()


# the hang first: it leaves the same vLLM running; the kill's restart comes last
async def test_vllm_hung_mid_call_fallback_within_2s_then_recovery(services, own_llm, speech, tmp_path):
    own, spec, sup = own_llm
    fault = Fault(sup, spec, "hang")
    call = await faulty_call(own, [wav for wav, _ in speech[3:5]], tmp_path, fault)
    check_outage_call(call, fault, own.llm.fallback_text, stage="LLM hang")


async def test_vllm_killed_mid_call_fallback_within_2s_then_recovery(services, own_llm, speech, tmp_path):
    own, spec, sup = own_llm
    fault = Fault(sup, spec, "kill")
    call = await faulty_call(own, [wav for wav, _ in speech[3:5]], tmp_path, fault)
    check_outage_call(call, fault, own.llm.fallback_text, stage="LLM kill")
