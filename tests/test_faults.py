"""ASR and TTS failing mid-call, for real: each killed (SIGKILL of its process group) and each hung
(SIGSTOP: it accepts connections and answers nothing) before turn 2 (tests/faults.py). The caller
hears a prerendered fallback within 2 s of the end of the turn, the session outlives LiveKit's
unrecoverable-error count, and the first turn after the service is back is answered normally.

ASR and TTS of their own, under one Supervisor, on free ports (started once for the module); the
LLM is the session's. A kill is mended by the supervisor's restart (held back 8 s, so the outage
covers the turn); a hang by SIGCONT."""

import pytest

from configs import Settings
from services.supervisor import Supervisor, service_specs
from services.tts.client import TtsClient
from tests.conftest import _running
from tests.faults import SLOW_RESTARTS, Fault, check_outage_call, faulty_call
from tests.ports import free_port


@pytest.fixture(scope="module")
async def llm_service(settings: Settings):
    """vLLM alone (reused if already answering): these tests need no shared ASR or TTS."""
    async for sup in _running(settings, ("llm",)):
        yield sup


@pytest.fixture(scope="module")
async def own(settings: Settings, llm_service, tmp_path_factory: pytest.TempPathFactory):
    ports = {name: getattr(settings, name).model_copy(update={"port": free_port()}) for name in ("asr", "tts")}
    mine = settings.model_copy(update=ports)
    specs = service_specs(mine, "cpu", ("asr", "tts"))
    for spec in specs:  # the services read their port from the profile and the environment
        spec.env[f"HALFSEC_{spec.name.upper()}__PORT"] = str(ports[spec.name].port)
    sup = Supervisor(specs, tmp_path_factory.mktemp("faults-logs"), watch=SLOW_RESTARTS)
    await sup.start()
    try:
        await _warm(mine)
        yield mine, {s.name: s for s in specs}, sup
    finally:
        await sup.stop()


async def _warm(settings: Settings) -> None:
    """A fresh Kokoro's first synthesis takes seconds: not in turn 1, whose answer the test needs."""
    tts = TtsClient(settings.tts.client_url)
    try:
        async for _ in tts.stream("Hello there, how are you?"):
            pass
    finally:
        await tts.aclose()


def wavs(speech):
    return [wav for wav, _ in speech[3:5]]


async def test_asr_hung_mid_call(own, speech, tmp_path):
    settings, specs, sup = own
    fault = Fault(sup, specs["asr"], "hang")
    call = await faulty_call(settings, wavs(speech), tmp_path, fault)
    check_outage_call(call, fault, settings.asr.fallback_text, stage="ASR hang")


async def test_asr_killed_mid_call(own, speech, tmp_path):
    settings, specs, sup = own
    fault = Fault(sup, specs["asr"], "kill")
    call = await faulty_call(settings, wavs(speech), tmp_path, fault)
    check_outage_call(call, fault, settings.asr.fallback_text, stage="ASR kill")


async def test_tts_hung_mid_call_over_more_turns_than_livekit_forgives(own, speech, tmp_path):
    # four failing turns in a row: LiveKit closes a session after 3 unrecoverable TTS errors
    # (SessionConnectOptions.max_unrecoverable_errors), and none is raised
    settings, specs, sup = own
    fault = Fault(sup, specs["tts"], "hang", mend_at=6)
    call = await faulty_call(settings, wavs(speech), tmp_path, fault, turns=6)
    # the record keeps the reply's text (what the LLM said); the caller heard tts.fallback_text
    check_outage_call(call, fault, None, outage_turns=4, stage="TTS hang")


async def test_tts_killed_mid_call(own, speech, tmp_path):
    settings, specs, sup = own
    fault = Fault(sup, specs["tts"], "kill")
    call = await faulty_call(settings, wavs(speech), tmp_path, fault)
    check_outage_call(call, fault, None, stage="TTS kill")
