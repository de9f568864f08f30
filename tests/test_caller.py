"""The simulated caller's ground truth: Silero's voice span, the loopback recording, the ear's playout."""

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from livekit import rtc
from livekit.agents.vad import VADEventType

from agent.session import build_vad
from agent.sim.caller import ROOM_RATE, CallerEar, CallRecorder, Utterance, load_utterance
from agent.sim.devset import artifacts as devset_artifacts
from agent.sim.devset import dev_set
from agent.sim.voice import AUDIBLE, WINDOW, first_audible, measure_call, voice_span

from .conftest import required


def test_voice_span_is_silero_not_energy(speech):
    """A second of breath-level noise after the speech is no voice: Silero's span ends within a
    few windows of the speech (its own hang-over), not at the noise's end. On its 32 ms grid."""
    wav, _ = speech[1]
    pcm, rate = sf.read(wav, dtype="int16")
    spoken = voice_span(pcm, rate)
    assert spoken is not None and spoken.first % 512 == 0 and spoken.end % 512 == 0
    hiss = np.random.default_rng(0).normal(0, 60, rate).astype(np.int16)  # ~-55 dBFS
    padded = voice_span(np.concatenate([pcm[: spoken.end], hiss]), rate)
    assert padded is not None and spoken.end <= padded.end < spoken.end + rate // 4
    assert voice_span(hiss, rate) is None  # no voice at all
    assert voice_span(np.zeros(rate, np.int16), rate) is None


def test_first_audible_is_minus_40_dbfs():
    pcm = np.zeros(100, np.int16)
    pcm[40] = AUDIBLE  # at the threshold: not above it
    pcm[60] = -AUDIBLE - 1
    assert first_audible(pcm) == 60 and first_audible(np.zeros(10, np.int16)) is None


def test_load_utterance_resamples_and_rejects_bad_files(tmp_path, speech):
    utt = load_utterance(speech[0][0])
    assert utt.voice is not None and utt.voice.rate == ROOM_RATE and 0 < utt.voice.end <= len(utt.pcm)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not audio")
    with pytest.raises(ValueError, match="not a readable audio file"):
        load_utterance(junk)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.int16), 16000)
    with pytest.raises(ValueError, match="no audio samples"):
        load_utterance(empty)


def test_measure_call_reads_v2v_from_the_recording_alone(tmp_path, speech):
    """A recording laid out by hand: the utterance at 0.5 s, the agent's first sound 700 ms
    after the voice's end (behind 40 ms of digital near-silence, which is no sound)."""
    wav, _ = speech[2]
    pcm, rate = sf.read(wav, dtype="int16")
    voice = voice_span(pcm, rate, offset=rate // 2)  # on the recording's grid
    rec = CallRecorder()
    rec.add("caller", rec.t0 + 0.5, pcm, rate)
    answer_at = 0.5 + voice.end / rate + 0.7
    quiet = np.full(int(0.04 * rate), 100, np.int16)
    tone = (3000 * np.sin(np.arange(rate) * 2 * np.pi * 300 / rate)).astype(np.int16)
    rec.add("agent", rec.t0 + answer_at - 0.04, np.concatenate([quiet, tone]), rate)
    rec.write(tmp_path / "call.wav")
    [turn] = measure_call(tmp_path / "call.wav", [wav])
    assert turn.v2v_ms == pytest.approx(700.0, abs=1.0)
    assert turn.agent_stopped_ms is None  # the agent was silent when the caller began


def test_measure_call_gives_no_v2v_to_a_turn_the_agent_talked_over(tmp_path, speech):
    """The agent's previous reply still sounding when the caller's voice ends: that sound is not
    an answer (it measured 0 ms before), and a reply that stopped just before the end is heard."""
    wav, _ = speech[2]
    pcm, rate = sf.read(wav, dtype="int16")
    voice = voice_span(pcm, rate, offset=rate // 2)
    tone = (3000 * np.sin(np.arange(rate) * 2 * np.pi * 300 / rate)).astype(np.int16)
    turns = []
    for reply_ends_s in (0.5 + voice.end / rate + 0.5, 0.5 + voice.end / rate - 0.1):
        rec = CallRecorder()
        rec.add("caller", rec.t0 + 0.5, pcm, rate)
        rec.add("agent", rec.t0 + reply_ends_s - 1.0, tone, rate)  # a reply playing through
        rec.add("agent", rec.t0 + 0.5 + voice.end / rate + 0.8, tone, rate)  # the answer
        rec.write(tmp_path / "call.wav")
        [turn] = measure_call(tmp_path / "call.wav", [wav])
        turns.append(turn)
    over, stopped = turns
    assert over.talked_over and over.v2v_ms is None
    assert not stopped.talked_over and stopped.v2v_ms == pytest.approx(800.0, abs=1.0)


def test_recorder_cut_takes_back_what_did_not_play():
    rec = CallRecorder()
    rec.add("agent", rec.t0 + 1.0, np.ones(24000, np.int16), 24000)  # 1.0-2.0 s
    cut = rec.cut("agent", rec.t0 + 1.25)
    assert sum(len(c) for c in cut) == 0.75 * rec.RATE
    rec.add("agent", rec.t0 + 3.0, np.ones(2400, np.int16), 24000)
    assert rec.cut("agent", rec.t0 + 5.0) == []


async def test_the_recording_has_the_agents_first_sound_where_the_ear_heard_it(tmp_path):
    """A soft onset: one sample just over -40 dBFS, at an odd 24 kHz index, then a louder tone.
    The recording's first audible sample is the one the ear marked, to the sample (at 16 kHz the
    interpolation averaged it away and the recording heard the agent 2-16 ms late)."""
    marks: list[tuple[str, float]] = []
    rec = CallRecorder()
    ear = CallerEar(lambda name, at: marks.append((name, at)), rec)
    reply = np.zeros(4800, np.int16)
    reply[487] = AUDIBLE + 20
    reply[2400:] = (3000 * np.sin(np.arange(2400) * 2 * np.pi * 300 / 24000)).astype(np.int16)
    for i in range(0, len(reply), 480):
        await ear.capture_frame(rtc.AudioFrame(reply[i : i + 480].tobytes(), 24000, 1, 480))
    ear.flush()
    await asyncio.sleep(0.25)
    [(name, at)] = [m for m in marks if m[0] == "first_frame_out"]
    rec.write(tmp_path / "call.wav")
    audio, rate = sf.read(tmp_path / "call.wav", dtype="int16")
    heard = first_audible(audio[:, 1])
    assert heard is not None and rec.t0 + heard / rate == pytest.approx(at, abs=0.5 / rate)


async def test_ear_pauses_resumes_and_is_cut_off(tmp_path):
    """What the caller hears: a pause holds the rest of the reply (its audio stops there), a
    resume plays it on, a clear drops it; the recording says the same."""
    marks: list[tuple[str, float]] = []
    rec = CallRecorder()
    ear = CallerEar(lambda name, at: marks.append((name, at)), rec)
    tone = (3000 * np.sin(np.arange(24000) * 2 * np.pi * 300 / 24000)).astype(np.int16)
    for i in range(0, len(tone), 480):  # 1 s of agent audio, in 20 ms frames, faster than real time
        await ear.capture_frame(rtc.AudioFrame(tone[i : i + 480].tobytes(), 24000, 1, 480))
    ear.flush()
    await asyncio.sleep(0.01)  # marked as it plays
    started = marks[0][1]
    assert marks[0][0] == "first_frame_out" and ear.started.is_set()
    await asyncio.sleep(0.3)
    ear.pause()
    assert marks[-1][0] == "agent_stopped" and marks[-1][1] - started == pytest.approx(0.3, abs=0.05)
    await asyncio.sleep(0.2)
    ear.resume()  # 0.7 s left to play
    await asyncio.sleep(0.2)
    t_clear = time.monotonic()
    ear.clear_buffer()
    assert [m for m, _ in marks].count("agent_stopped") == 2 and marks[-1][1] == pytest.approx(t_clear, abs=0.01)
    rec.write(tmp_path / "call.wav")
    audio, rate = sf.read(tmp_path / "call.wav", dtype="int16")
    heard = np.abs(audio[:, 1].astype(int)) > AUDIBLE
    played = heard.sum() / rate  # ~0.3 s before the pause + ~0.2 s after the resume
    assert played == pytest.approx(0.5, abs=0.06)


async def test_a_pause_before_the_replys_first_frame_holds_the_reply(tmp_path):
    """LiveKit pauses the output when the caller speaks while a reply is still being made, before
    any of its audio exists; LiveKit's room output then holds that reply's frames until the
    resume, and so does the ear: nothing is heard or recorded while paused, and playback starts
    (LiveKit's playback_started) only when the first frame plays. A clear while paused drops it
    all, and the pause still holds the next reply's frames."""
    marks: list[tuple[str, float]] = []
    rec = CallRecorder()
    ear = CallerEar(lambda name, at: marks.append((name, at)), rec)
    started: list[float] = []
    ear.on("playback_started", lambda ev: started.append(time.monotonic()))
    tone = np.full(4800, 3000, np.int16)  # 0.2 s

    async def reply() -> None:
        for i in range(0, len(tone), 480):
            await ear.capture_frame(rtc.AudioFrame(tone[i : i + 480].tobytes(), 24000, 1, 480))
        ear.flush()

    ear.pause()
    await reply()
    await asyncio.sleep(0.3)
    assert marks == [] and started == [] and not ear.started.is_set()
    ear.clear_buffer()  # the caller's words were a turn: the reply is dropped unheard
    await reply()  # the next reply, made while the output is still paused
    await asyncio.sleep(0.1)
    assert marks == [] and started == []
    resumed = time.monotonic()
    ear.resume()
    await asyncio.sleep(0.4)
    assert [name for name, _ in marks] == ["first_frame_out", "agent_stopped"], marks
    assert marks[0][1] == pytest.approx(resumed, abs=0.02) and started[0] == pytest.approx(resumed, abs=0.02)
    rec.write(tmp_path / "call.wav")
    audio, rate = sf.read(tmp_path / "call.wav", dtype="int16")
    heard = np.flatnonzero(np.abs(audio[:, 1].astype(int)) > AUDIBLE)
    assert len(heard) / rate == pytest.approx(0.2, abs=0.02)  # one reply, not two
    assert rec.t0 + heard[0] / rate == pytest.approx(resumed, abs=0.02)


async def test_a_reply_cut_off_before_its_first_sound_was_not_heard():
    """The TTS hands the ear 0.3 s of leading silence and then a tone, faster than real time;
    the caller barges in 0.1 s later. Nothing audible played: no first_frame_out, so no
    agent_stopped either. Resumed, the held audio plays and marks its first sound then."""
    marks: list[tuple[str, float]] = []
    ear = CallerEar(lambda name, at: marks.append((name, at)), CallRecorder())
    pcm = np.concatenate([np.zeros(7200, np.int16), np.full(4800, 3000, np.int16)])  # 0.3 s + 0.2 s
    for i in range(0, len(pcm), 480):
        await ear.capture_frame(rtc.AudioFrame(pcm[i : i + 480].tobytes(), 24000, 1, 480))
    ear.flush()
    await asyncio.sleep(0.1)
    ear.pause()
    await asyncio.sleep(0.3)
    assert marks == [] and not ear.started.is_set()
    resumed = time.monotonic()
    ear.resume()  # 0.2 s of silence left, then the tone
    await asyncio.sleep(0.5)
    names = [name for name, _ in marks]
    assert names == ["first_frame_out", "agent_stopped"], marks
    assert marks[0][1] - resumed == pytest.approx(0.2, abs=0.03)
    assert ear.started.is_set()


async def test_voice_on_the_streams_grid_agrees_with_the_calls_vad(settings):
    """The ground truth's end of voice, taken on the grid where the caller's stream puts each
    one-word clip, is never later than the session's own VAD allows: its end of speech comes
    at least the configured silence (less one window) after it, at every grid position a
    20 ms frame can start the clip on. On each file's own grid, "okay" (a soft ending) ends up
    to ~100 ms later than the call's VAD hears, and its turn read as a 162 ms endpoint."""
    required(settings, extra=devset_artifacts(settings))
    vad = build_vad(settings)
    step = ROOM_RATE // 50
    floor_s = settings.vad.min_silence_s - WINDOW / 16000
    for wav, category, _ in dev_set(settings):
        if category != "one-word" or (utt := load_utterance(wav)).voice is None:
            continue
        for frames in range(8):  # 8 x 20 ms: every lead into a 32 ms window, 64 samples apart
            offset = frames * step
            voice = utt.voice_at(offset)
            pcm = np.concatenate([np.zeros(offset, np.int16), utt.pcm, np.zeros(ROOM_RATE, np.int16)])
            stream = vad.stream()
            for i in range(0, len(pcm) - step + 1, step):
                stream.push_frame(rtc.AudioFrame(pcm[i : i + step].tobytes(), ROOM_RATE, 1, step))
            stream.end_input()
            ends = [ev.samples_index / 16000 async for ev in stream if ev.type == VADEventType.END_OF_SPEECH]
            assert ends, (wav.name, frames)
            endpoint_s = ends[-1] - (offset + voice.end) / ROOM_RATE
            assert endpoint_s >= floor_s, (wav.name, frames, endpoint_s)


def test_voice_at_is_cached_per_grid_and_silence_has_none(speech):
    utt = load_utterance(speech[0][0])
    utt.prepare(ROOM_RATE // 50)
    assert len(utt._grids) == 8  # 20 ms frames fall on 8 leads into a 32 ms window
    assert utt.voice_at(0) == utt.voice  # the file's own grid
    silent = Utterance(Path("silence.wav"), np.zeros(ROOM_RATE, np.int16), None)
    silent.prepare(ROOM_RATE // 50)  # returns: nothing to place
    assert silent.voice_at(960) is None


@pytest.mark.parametrize(
    ("agent_from_s", "agent_until_s", "stopped_ms"),
    [
        (-1.0, 0.15, 150.0),  # talking when the caller began, quiet 150 ms later
        (-1.0, -0.1, 0.0),  # in a pause between words when the caller began: quiet at once
        (-1.0, -0.6, None),  # done half a second before: no reply to stop
    ],
)
def test_measure_call_times_how_soon_the_agent_went_quiet(tmp_path, speech, agent_from_s, agent_until_s, stopped_ms):
    wav, _ = speech[2]
    pcm, rate = sf.read(wav, dtype="int16")
    voice = voice_span(pcm, rate, offset=rate)  # the caller's voice begins at 1 s + voice.first
    rec = CallRecorder()
    rec.add("caller", rec.t0 + 1.0, pcm, rate)
    began = 1.0 + voice.first / rate
    n = round((agent_until_s - agent_from_s) * rate)
    tone = (3000 * np.sin(np.arange(n) * 2 * np.pi * 300 / rate)).astype(np.int16)
    rec.add("agent", rec.t0 + began + agent_from_s, tone, rate)
    rec.write(tmp_path / "call.wav")
    [turn] = measure_call(tmp_path / "call.wav", [wav])
    if stopped_ms is None:
        assert turn.agent_stopped_ms is None
    else:
        assert turn.agent_stopped_ms == pytest.approx(stopped_ms, abs=2.0)
