"""Silero forgets a call's past after a stretch of quiet: one rule for both of a call's VADs.

Silero is recurrent, and its state after one speaker and seconds of a line's silence can hide a
soft short answer: fed as a call feeds it, the dev set's one-word "okay" after another speaker's
turn and 1-9 s of silence peaked at p 0.02-0.48 (threshold 0.5) and was heard 0 times of 21; with
the state cleared once 1 s of a quiet line had passed, 20 of 21 (docs/asr.md's table, 2026-12-06);
scored from a cleared state at the first sound after that second, every time (`ForgetsInQuiet`).
A fresh state is what Silero is trained and usually run from (a file at a time). The session's
VAD (where a turn starts, and a barge-in) and the ASR service's endpointer (where it ends) run
their own Silero on the same audio: both must forget, or they disagree on where speech starts
(with only one clearing, records lost their preflight and the wait for the final grew ~25x).
Quiet means a quiet line, not a noise Silero scores low: its state is also what it has learned
of a room's noise, and cleared there it takes the noise for speech.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

QUIET_P = 0.1  # a window this unlikely to be speech ...
# ... and this soft is a quiet line. A noise the state has learned is no quiet: cleared inside a
# running 3D printer (-33 to -25 dBFS), Silero started 3 turns in 25 s where it started none as it
# is; on the non-speech set (agent/sim/noise.py), 7 starts against 0 without this level bound.
QUIET_DBFS = -50.0
_QUIET_MS = 10 ** (QUIET_DBFS / 10)  # mean square of a window at QUIET_DBFS


# After clearing, the model is run on this long of a line's silence (zeros), as a call's Silero is
# at its start: a state cleared and left cold missed the dev set's falsetto turn after any lead of
# silence (peak p 0.34-0.53, 0 of 9 leads of 0.5-3 s heard), warmed on 2 s it heard all 9 (0.70-0.94;
# 7 of 9 as the plugin is), and the soft "okay" after a turn 20 of 21 times (21 cold, 0 as is).
# Warmed on 5 s: "okay" 18 of 21. The session's VAD, fed as a call feeds it (docs/asr.md).
WARM_S = 2.0


def _windows(seconds: float, window_s: float) -> int:
    return max(1, round(seconds / window_s))


class ForgetsInQuiet:
    """`model` (one float32 window of `window_s` in [-1, 1] -> speech probability) that scores
    the first window of sound after a stretch of quiet of `after_s` or more (p below QUIET_P,
    level below QUIET_DBFS) from a cleared state (`reset`) warmed on WARM_S of zeros (62 windows
    at 16 kHz: 8-15 ms of CPU, once a stretch). Within speech, noise, or a pause shorter than
    that, the state, and so every probability, is the model's own.

    Cleared at the sound, not once the stretch has lasted `after_s`: the state a line's silence
    leaves is not the same after 1, 2 or 5 s of it. The soft "okay" after another speaker, at 96
    places (3 speakers before it, 1-5 s of silence, the 8 offsets a call can start it on): heard
    by the session's VAD at 84 and the endpointer at 89 cleared at 1 s, by both at 96 cleared at
    the sound. Cleared at the sound, the same way: the dev set's short answers 143 of 143 (142),
    the whole dev set after a turn 212 of 212 (211), the held-out turns 120 of 120 (120), the
    non-speech set one false start of the session's VAD and none of the endpointer's (one each;
    2026-12-07)."""

    def __init__(
        self, model: Callable[[np.ndarray], float], reset: Callable[[], None], *, window_s: float, after_s: float
    ) -> None:
        self._model, self._reset = model, reset
        self._after, self._warm = _windows(after_s, window_s), _windows(WARM_S, window_s)
        self._quiet = 0
        self.resets = 0

    def __call__(self, window: np.ndarray) -> float:
        p = float(self._model(window))
        quiet = p < QUIET_P and float(np.mean(np.square(window, dtype=np.float64))) < _QUIET_MS
        if not quiet and self._quiet >= self._after:
            self._reset()
            silence = np.zeros_like(window)
            for _ in range(self._warm):
                self._model(silence)
            self.resets += 1
            p = float(self._model(window))
        self._quiet = self._quiet + 1 if quiet else 0
        return p
