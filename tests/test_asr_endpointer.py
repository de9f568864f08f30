"""The ASR service's endpointer and decode queue, with scripted VAD probabilities and a fake
decode: the timing rules, without a model."""

import asyncio

import numpy as np

from configs.settings import AsrSettings, VadSettings
from services.asr.endpointer import FRAME, Endpoint, Endpointer, SpeechStart
from services.asr.engine import Decoded
from services.asr.scheduler import DecodeScheduler, Kind


def run(probs: list[float], **vad: float) -> tuple[Endpointer, list[tuple[int, object]]]:
    """Feed one frame per probability; the frame's samples carry its index, to check pre-roll."""
    script = iter(probs)
    ep = Endpointer(
        VadSettings(min_silence_s=0.2, min_speech_s=0.064, prefix_padding_s=0.128, **vad),
        AsrSettings(preflight_after_s=0.064),
        model=lambda _frame: next(script),
    )
    events = []
    for i in range(len(probs)):
        for event in ep.push(np.full(FRAME, i, np.float32)):
            events.append((i, event))
    return ep, events


def test_speech_start_keeps_preroll_then_pause_resume_and_endpoint():
    probs = [0.0] * 10 + [0.9] * 10 + [0.1] * 2 + [0.9] * 5 + [0.0] * 8
    ep, events = run(probs)
    kinds = [(i, type(e).__name__) for i, e in events]
    # two voiced frames (64 ms) start speech; 4 frames of pre-roll come along
    assert kinds[0] == (11, "SpeechStart")
    assert events[0][1].stream_s == (12 - 6) * FRAME / 16000
    # 1 silent frame: a pause (decode now); 2: a candidate end (a preflight may go out); speech
    # again: a resume
    assert kinds[1:4] == [(20, "Pause"), (21, "Candidate"), (22, "Resume")]
    # 200 ms = 6 silent frames after the last voiced one: the endpoint
    assert kinds[4:7] == [(27, "Pause"), (28, "Candidate"), (32, "Endpoint")]
    end = events[6][1]
    assert isinstance(end, Endpoint) and not end.forced
    assert end.last_voiced == (26 - 6 + 1) * FRAME  # frames 6..26 of the stream


def test_preroll_audio_is_in_the_utterance():
    probs = [0.0] * 10 + [0.9] * 10 + [0.0] * 3
    ep, _ = run(probs)
    first = ep.audio(0, FRAME)
    assert first[0] == 6  # frames 6..9 of silence before speech start at frame 10


def test_max_utterance_forces_an_endpoint():
    probs = [0.9] * 100
    _, events = run(probs, max_utterance_s=2.0)
    ends = [e for _, e in events if isinstance(e, Endpoint)]
    assert ends and ends[0].forced
    assert len([e for _, e in events if isinstance(e, SpeechStart)]) >= 2  # and speech goes on


def test_silence_gives_no_events():
    _, events = run([0.05] * 200)
    assert events == []


async def test_queue_serves_a_waiting_final_before_a_long_talkers_interims():
    order: list[str] = []

    def decode(audio: np.ndarray) -> Decoded:
        order.append(str(int(audio[0])))
        import time

        time.sleep(0.02)
        return Decoded(text="x", audio_s=len(audio) / 16000, decode_ms=20)

    scheduler = DecodeScheduler(decode)
    scheduler.start()
    jobs = [scheduler.submit(1, Kind.INTERIM, np.full(160, 1, np.float32))]
    await asyncio.sleep(0.005)  # stream 1's first interim is running
    jobs.append(scheduler.submit(2, Kind.INTERIM, np.full(160, 2, np.float32)))
    replaced = scheduler.submit(3, Kind.INTERIM, np.full(160, 3, np.float32))
    jobs.append(scheduler.submit(3, Kind.INTERIM, np.full(160, 4, np.float32)))  # replaces it
    jobs.append(scheduler.submit(4, Kind.FINAL, np.full(160, 5, np.float32)))
    await asyncio.gather(*(j.future for j in jobs))
    await scheduler.stop()
    assert replaced.future.cancelled()
    # the final jumps the queue; interims go oldest first; stream 3 has one interim only
    assert order == ["1", "5", "2", "4"]


def test_a_final_is_its_own_kind_and_ranks_with_a_preflight():
    assert Kind.FINAL is not Kind.PREFLIGHT and Kind.FINAL.name == "FINAL"
    assert Kind.FINAL.priority == Kind.PREFLIGHT.priority < Kind.COMMIT.priority < Kind.INTERIM.priority


def test_only_finished_phrases_settle():
    from services.asr.policy import _finished

    assert _finished("He was not an ill-disposed young man.") and _finished("Well,")
    for unsure in ("He was not an old-s-y-y-y-y-", "He was not an ill...", "rather selfish is to be"):
        assert not _finished(unsure), unsure


async def test_a_doubtful_preflight_is_decoded_again_only_when_it_becomes_the_final():
    """A pause inside the turn: its doubtful preflight is dropped when the caller speaks on, not
    decoded twice. The pause that ends the turn: the final is the full-window decode."""
    from services.asr.protocol import Final, Preflight
    from services.asr.stream import StreamSession

    calls: list[bool] = []

    def decode(
        audio: np.ndarray, timestamps: bool = False, retry_doubtful: bool = True, window_s: float | None = None
    ) -> Decoded:
        calls.append(window_s == 30.0)  # over the full window
        text = "He was not an ill-disposed young man." if window_s == 30.0 else "He was not. He was not. He"
        return Decoded(text=text, audio_s=len(audio) / 16000, decode_ms=1, redecoded=window_s is not None)

    probs = [0.0] * 10 + [0.9] * 20 + [0.0] * 2 + [0.9] * 20 + [0.0] * 12
    script = iter(probs)
    opts = AsrSettings(interim_interval_s=0, commit_min_s=5.0)
    ep = Endpointer(
        VadSettings(min_silence_s=0.2, min_speech_s=0.064, prefix_padding_s=0.128),
        opts,
        model=lambda _frame: next(script),
    )
    scheduler = DecodeScheduler(decode)
    scheduler.start()
    events: list = []
    session = StreamSession(1, ep, scheduler, opts, events.append)
    for _ in probs:
        session.feed(np.zeros(FRAME, np.float32))
        await asyncio.sleep(0.01)  # let the scheduler decode as a real stream would
    await session.finish()
    await scheduler.stop()
    finals = [e for e in events if isinstance(e, Final)]
    assert [f.text for f in finals] == ["He was not an ill-disposed young man."]
    assert not any(isinstance(e, Preflight) for e in events)  # a looping decode starts no reply
    assert calls.count(True) == 1  # only the preflight that became the final was decoded again
