"""Both of a call's Silero VADs forget the call after a stretch of quiet, so a soft one-word answer
after another turn and silence starts a turn (services/silero_state.py): the rule on scripted
probabilities, then the real models on the dev set's "okay" after another speaker and on its
falsetto turn."""

import numpy as np
import pytest
from livekit import rtc
from livekit.agents.vad import VADEventType

from agent.session import build_vad
from agent.sim.caller import ROOM_RATE, load_utterance
from agent.sim.devset import artifacts as devset_artifacts
from agent.sim.devset import dev_set
from configs.settings import AsrSettings
from services.asr.endpointer import FRAME, Endpointer, SpeechStart
from services.asr.protocol import SAMPLE_RATE
from services.silero_state import ForgetsInQuiet

from .conftest import required

FRESH = 0.97  # what Scripted scores a window from a cleared state


class Scripted:
    """A model that answers the caller's windows from a script, the warm-up's silence (zeros)
    with 0 and a window scored again from a cleared state with FRESH, noting how many windows
    it was run on and when it was reset."""

    def __init__(self, probs: list[float]) -> None:
        self.script, self.calls, self.resets, self._cleared = iter(probs), 0, [], False

    def __call__(self, window: np.ndarray) -> float:
        self.calls += 1
        if not window.any():
            return 0.0
        if self._cleared:
            self._cleared = False
            return FRESH
        return next(self.script)

    def reset(self) -> None:
        self.resets.append(self.calls)
        self._cleared = True


def test_the_first_sound_after_a_long_enough_stretch_of_quiet_is_scored_from_a_cleared_warm_state():
    probs = [0.9] * 5 + [0.05] * 3 + [0.5] + [0.05] * 9 + [0.9] + [0.05] * 4 + [0.3, 0.6]
    model = Scripted(probs)
    forgets = ForgetsInQuiet(model, model.reset, window_s=0.5, after_s=2.0)  # 4 windows; warmed on 4
    window = np.full(512, 1e-4, np.float32)  # a quiet line, -80 dBFS
    seen = [forgets(window) for _ in probs]
    # the model's own probabilities but at the sound after each stretch of 4+ quiet windows (not
    # after the 3-window pause): the 0.9 after 9, the 0.3 after 4, scored again once cleared
    assert seen == probs[:18] + [FRESH] + probs[19:23] + [FRESH, 0.6]
    # each: the window scored (19th, 24th), then cleared, 4 windows of zeros, the window again
    assert model.resets == [19, 29] and forgets.resets == 2
    assert model.calls == len(probs) + 2 * (4 + 1)


def _dev(settings, name: str):
    required(settings, extra=devset_artifacts(settings))
    return next(path for path, _, _ in dev_set(settings) if path.name == name)


def okay_after_a_turn(settings, rate: int, gap_s: float = 3.0, lead: int = 0) -> tuple[np.ndarray, float]:
    """Another speaker's turn, `gap_s` of a line's silence (exact zeros) and `lead` samples more,
    the soft "okay", 1 s more, int16 at `rate`, and where the "okay" begins (s)."""
    before = load_utterance(_dev(settings, "accents--uk-fears.wav"), rate).pcm
    okay = load_utterance(_dev(settings, "one-word--okay.wav"), rate).pcm
    gap = np.zeros(round(gap_s * rate) + lead, np.int16)
    return np.concatenate([before, gap, okay, np.zeros(rate, np.int16)]), (len(before) + len(gap)) / rate


async def session_vad_starts(settings, pcm: np.ndarray) -> list[float]:
    """Where the session's VAD starts speech (s) in `pcm`, fed as a call feeds it: 20 ms frames at 48 kHz."""
    stream, step = build_vad(settings).stream(), ROOM_RATE // 50
    for i in range(0, len(pcm) - step + 1, step):
        stream.push_frame(rtc.AudioFrame(pcm[i : i + step].tobytes(), ROOM_RATE, 1, step))
    stream.end_input()
    return [ev.samples_index / 16000 async for ev in stream if ev.type == VADEventType.START_OF_SPEECH]


def with_forget(settings, forget_s: float | None):
    return settings.model_copy(update={"vad": settings.vad.model_copy(update={"forget_after_quiet_s": forget_s})})


# Where a call's "okay" falls on the VAD's 32 ms windows: its 20 ms frames start it on one of
# 8 offsets (the 48 kHz samples of a frame and a window have 192 in common).
GRID = [(gap_s, offset * 192) for gap_s in (1.0, 2.0, 3.0) for offset in range(8)]


@pytest.mark.parametrize("forget_s", [1.0, None])
async def test_the_sessions_vad_hears_the_okay_once_it_has_forgotten(settings, forget_s):
    """At every offset a call can start the "okay" on, after 1-3 s of silence: the word is at
    Silero's edge (its best smoothed window 0.51-0.93 by offset, and a start needs two windows
    of 0.5). With its state cleared once the quiet had lasted 1 s (the rule before), it missed 2."""
    heard = 0
    for gap_s, lead in GRID:
        pcm, okay_at = okay_after_a_turn(settings, ROOM_RATE, gap_s, lead)
        starts = await session_vad_starts(with_forget(settings, forget_s), pcm)
        heard += any(t >= okay_at for t in starts)
    assert heard == (len(GRID) if forget_s is not None else 0), heard


@pytest.mark.parametrize("forget_s", [1.0, None])
def test_the_asr_endpointer_hears_the_okay_once_it_has_forgotten(settings, forget_s):
    pcm, okay_at = okay_after_a_turn(settings, SAMPLE_RATE)
    audio = pcm.astype(np.float32) / 32768
    endpointer = Endpointer(with_forget(settings, forget_s).vad, AsrSettings())
    starts = []
    for i in range(0, len(audio) - FRAME + 1, FRAME):
        starts += [e.stream_s for e in endpointer.push(audio[i : i + FRAME]) if isinstance(e, SpeechStart)]
    # a start is where its pre-roll begins, before the word
    assert any(t >= okay_at - 1.0 for t in starts) == (forget_s is not None), starts


def test_a_noise_silero_scores_low_is_no_quiet():
    resets = []
    model = ForgetsInQuiet(lambda _w: 0.01, lambda: resets.append(1), window_s=0.5, after_s=2.0)
    noise = np.full(512, 10 ** (-40 / 20), np.float32)  # a steady -40 dBFS: a running machine
    line = np.full(512, 10 ** (-60 / 20), np.float32)  # a quiet line
    for _ in range(20):
        model(noise)
    assert resets == []
    for _ in range(4):
        model(line)
    assert resets == []
    model(noise)  # sound after a stretch of quiet
    assert resets == [1]


@pytest.mark.parametrize("lead_s", [0.5, 1.0, 2.0, 3.0])
async def test_a_falsetto_turn_after_a_quiet_line_still_starts_a_turn(settings, lead_s):
    """The dev set's falsetto turn, which Silero barely takes for speech (p >= 0.5 in 6 windows
    from a fresh state), at the start of a call: a state cleared and left cold never heard it."""
    falsetto = load_utterance(_dev(settings, "conversational--falsetto2.wav")).pcm
    pcm = np.concatenate([np.zeros(int(lead_s * ROOM_RATE), np.int16), falsetto, np.zeros(ROOM_RATE, np.int16)])
    assert await session_vad_starts(settings, pcm)
