"""Shared fixtures. The heavy ones (the three model services, vLLM included) start once per
test session; they need the offline models, which `make test` provisions first."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest
from jiwer import wer
from whisper_normalizer.english import EnglishTextNormalizer

from agent.sim.speech import LIBRIVOX_IDS
from agent.sim.speech import artifacts as speech_artifacts
from configs import Settings, load_settings
from services.provision import ProvisionError, require
from services.supervisor import supervisor

_normalize = EnglishTextNormalizer()

# vLLM eager in the suite (and in what it starts: the install test's demo inherits this): the
# suite starts vLLM four times (the shared services, the recovery tests' own and its restart, the
# installed demo), and compiling its model graph adds ~45-55 s to each start here. The tests
# measure no decode speed; the product's compiled default is `configs/cpu.yaml`'s.
os.environ.setdefault("HALFSEC_LLM__EAGER", "true")
# And float32 wherever the suite runs: the product runs bf16 on CPUs that compute in it (cpu.yaml),
# where greedy replies differ; in bf16 the 135M model never closed the tool test's forced call
# (vLLM 0.32's hermes parser, at the default --tool-strict-level, constrains a named call's
# envelope, not its arguments: it wrote an argument schema until max_tokens; docs/benchmarks.md).
# The replies the tests assert on stay the same on any CI box.
os.environ.setdefault("HALFSEC_LLM__DTYPE", "float32")


@pytest.fixture(autouse=True)
def _earlier_tests_out_of_the_collectors_way() -> None:
    """Many tests speak a call at real pace and bound its durations to ~100-200 ms. A full
    collection of this process's heap (~370k objects after half the suite) stops the event loop
    for 170-240 ms (gc callbacks over the first 51 test files): the likely cause of a scripted
    turn's endpoint reading 493 ms in CI, which measures 231-236 ms here, alone or beside three
    busy loops. What earlier tests left is frozen, so a collection during a test walks only that
    test's own objects. (O(1); cycles among the frozen objects are never freed: the suite's
    process peaked at 1.96 GB RSS in a fresh `make test`, 8 Dec.)"""
    gc.freeze()


def normalized_wer(reference: str, hypothesis: str) -> float:
    return wer(_normalize(reference), _normalize(hypothesis) or "<empty>")


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings("cpu")


def required(settings: Settings, extra: list | None = None) -> None:
    """What `make test` provisions first: its absence fails the test with the one-line reason."""
    try:
        require(settings, extra=extra)
    except ProvisionError as exc:
        pytest.fail(f"{exc} (make test runs it first)")


@pytest.fixture(scope="session")
def speech(settings: Settings) -> list[tuple[Path, str]]:
    """The LibriVox utterances `halfsec models` fetched: (wav path, reference text)."""
    required(settings, extra=speech_artifacts(settings))
    base = settings.speech_dir / "librivox"
    return [(base / f"{u}.wav", (base / f"{u}.txt").read_text().strip()) for u in LIBRIVOX_IDS]


async def _running(settings: Settings, names: tuple[str, ...]):
    required(settings)
    async with supervisor(settings, "cpu", names) as sup:
        yield sup


@pytest.fixture(scope="session")
async def services(settings: Settings):
    async for sup in _running(settings, ("asr", "tts", "llm")):
        yield sup


@pytest.fixture(scope="session")
async def asr_service(settings: Settings):
    """services/asr alone, for tests that need no other model. One already answering on
    asr.port (the one `services` started) is reused."""
    async for sup in _running(settings, ("asr",)):
        yield sup


@pytest.fixture(scope="session")
async def tts_service(settings: Settings):
    """services/tts alone, for tests that need no other model. One already answering on
    tts.port (the one `services` started) is reused."""
    async for sup in _running(settings, ("tts",)):
        yield sup
