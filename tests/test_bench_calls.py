"""`halfsec bench calls`: how turns are counted, and two calls at once through the real stack."""

import argparse
import json
from pathlib import Path

import soundfile as sf

from agent.cli import main
from agent.sim.bench import REPLY_TIMEOUT_S, CallOutcome, failed, level_figures, run_level, trace_overhead_ms

from .conftest import required


def turn(v2v, fallback=False, **stages):
    return {"v2v_ms": v2v, "fallback": fallback, "within_target": v2v is not None and v2v <= 500, **stages}


def test_every_turn_counts_and_the_unanswered_are_listed():
    files = [Path(f"t{i}.wav") for i in range(3)]
    outcomes = [
        CallOutcome(0, files, [turn(400, stt_ms=20), turn(None), turn(900, fallback=True)], [401, None, 905]),
        CallOutcome(1, files, [turn(600, stt_ms=40)], [640]),  # 2 of its 3 turns never happened
        CallOutcome(2, files, [], [], error="RuntimeError: boom"),
    ]
    figures = level_figures(2, outcomes, turns_per_call=3)
    assert figures["turns"] == 9 and figures["failed_turns"] == 7 and figures["failed_calls"] == 1
    # the percentiles are over all 9 turns: the 6 without a reply count at the reply timeout
    assert figures["v2v_p50_ms"] == REPLY_TIMEOUT_S * 1000 and figures["v2v_p95_ms"] == REPLY_TIMEOUT_S * 1000
    assert figures["stages"]["stt"]["p50_ms"] == 30.0  # stages: of the answered turns
    assert [(u["call"], u["turn"], u["why"]) for u in figures["unanswered"]] == [
        (0, 2, "no reply"),
        (0, 3, "fallback"),
        (1, 2, "no record"),
        (1, 3, "no record"),
        (2, 1, "call crashed"),
        (2, 2, "call crashed"),
        (2, 3, "call crashed"),
    ]
    assert figures["v2v_audio_p95_ms"] == REPLY_TIMEOUT_S * 1000  # measured: the same rule
    healthy = level_figures(1, [CallOutcome(0, files[:2], [turn(400), turn(800)], [410, 790])], turns_per_call=2)
    assert (healthy["v2v_p50_ms"], healthy["v2v_audio_p50_ms"], healthy["failed_turns"]) == (600.0, 600.0, 0)
    assert figures["v2v_vs_audio_max_ms"] == 40.0  # answered turns only
    assert figures["within_target"] == 1
    assert failed(turn(None)) and failed(turn(300, fallback=True)) and not failed(turn(300))


def test_a_turn_the_agent_talked_over_is_left_out_of_heard_and_named():
    """On the recording, the agent still sounding when the caller's voice ended leaves the turn
    without a v2v (voice.MeasuredTurn); `bench compare` leaves such a turn out and names it, and
    so do the calls' "heard" figures, rather than count it as a turn without a reply."""
    files = [Path("a.wav"), Path("b.wav"), Path("c.wav")]
    talked = CallOutcome(
        0, files, [turn(400), turn(500), turn(600)], [410, None, 610], talked_over=[False, True, False]
    )
    figures = level_figures(1, [talked], turns_per_call=3)
    assert figures["talked_over"] == [{"call": 0, "turn": 2, "file": "b.wav"}]
    assert (figures["v2v_audio_p50_ms"], figures["v2v_audio_p95_ms"]) == (510.0, 600.0)
    assert figures["failed_turns"] == 0 and figures["v2v_p50_ms"] == 500.0  # the record's own v2v keeps it
    # a turn with no v2v on the recording that was not talked over still counts at the timeout
    silent = CallOutcome(0, files, [turn(400), turn(500), turn(600)], [410, None, 610], talked_over=[False] * 3)
    assert level_figures(1, [silent], turns_per_call=3)["v2v_audio_p95_ms"] > 20_000


def test_refused_calls_are_counted_apart_from_the_admitted_calls_turns():
    files = [Path("t0.wav")]
    outcomes = [CallOutcome(0, files, [turn(400)], [410]), CallOutcome(1, files, [], [], refused="full: 1 of 1")]
    figures = level_figures(2, outcomes, turns_per_call=1)
    assert (figures["calls"], figures["turns"], figures["failed_turns"], figures["refused_calls"]) == (1, 1, 0, 1)
    assert figures["refused"] == [{"call": 1, "why": "full: 1 of 1"}] and figures["v2v_p95_ms"] == 400.0


def test_tracing_costs_well_under_a_millisecond_a_turn():
    figures = trace_overhead_ms(turns=200)
    assert 0 < figures["trace_ms_per_turn"] < 1.0
    assert figures["turnlog_write_ms"] > 0


def test_bad_audio_dir_is_a_clear_error(tmp_path, capsys):
    assert main(["bench", "calls", "--audio-dir", str(tmp_path)]) == 2
    assert "no audio files" in capsys.readouterr().err
    (tmp_path / "broken.wav").write_bytes(b"RIFF not really")
    assert main(["bench", "calls", "--audio-dir", str(tmp_path)]) == 2
    assert "not a readable audio file" in capsys.readouterr().err


def test_by_default_the_calls_say_varied_dev_set_turns(settings):
    """Not the LibriVox clips the pipeline was tuned on: M x K turns of 1-10 s, one category
    after another, as `bench compare` picks them."""
    from agent.cli.bench_commands import _call_audio
    from agent.sim.devset import artifacts, dev_set

    required(settings, extra=artifacts(settings))
    args = argparse.Namespace(audio_dir=None)
    audio = _call_audio(args, settings, 12)
    categories = {path: category for path, category, _ in dev_set(settings)}
    assert len(audio) == len(set(audio)) == 12
    assert len({categories[path] for path in audio}) >= 8  # one of each category before any second
    assert all(1.0 <= sf.info(path).duration <= 10.0 for path in audio)


def test_an_empty_replies_file_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "replies.txt").write_text("# nothing yet\n")
    assert main(["bench", "calls", "--replies", str(tmp_path / "replies.txt")]) == 2
    assert "no replies" in capsys.readouterr().err


async def test_two_callers_at_once_through_the_real_stack(services, settings, speech, tmp_path):
    """Three callers at once on a box that takes two (cpu profile): the third is refused up
    front, with the reason, and the two admitted calls are answered, each with the scripted
    reply of the file its caller said."""
    assert settings.worker.max_calls == 2
    replies = ["Sure, the desk opens at nine.", "No, that one is sold out.", "Yes."]
    figures = await run_level(settings, 3, 3, [wav for wav, _ in speech[:3]], 1, tmp_path, replies)
    assert figures["refused_calls"] == 1 and figures["refused"] == [
        {"call": 2, "why": "full: 2 of 2 calls in progress (worker.max_calls)"}
    ]
    assert figures["calls"] == 2 and figures["turns"] == 2
    assert figures["failed_turns"] == 0, figures
    assert 0 < figures["v2v_p50_ms"] <= figures["v2v_p95_ms"]
    assert figures["v2v_vs_audio_max_ms"] < 30  # the trace agrees with each call's recording
    assert figures["invalid_records"] == 0
    assert sorted(p.parent.name for p in tmp_path.rglob("turns.jsonl")) == ["call-000", "call-001"]
    for call in (0, 1):  # call i said file i
        lines = (tmp_path / f"call-{call:03d}" / "turns.jsonl").read_text().splitlines()
        assert [json.loads(line)["agent_text"].strip() for line in lines] == [replies[call]]
    json.dumps(figures)  # the --json line


def test_held_out_turns_are_the_dev_set_clips_the_defaults_never_take(settings, capsys):
    """`--held-out`: every dev-set clip with a voice outside the turns the defaults take, up to
    12 s, in name order; none of them is a default turn, and with `--audio-dir` it is refused."""
    from agent.cli.bench_commands import _call_audio
    from agent.sim.compare import HELD_OUT_MAX_S, TUNED_TURNS
    from agent.sim.devset import artifacts, dev_set

    required(settings, extra=artifacts(settings))
    held_out = _call_audio(argparse.Namespace(audio_dir=None, held_out=True), settings, 0)
    tuned = _call_audio(argparse.Namespace(audio_dir=None), settings, TUNED_TURNS)
    assert len(held_out) >= 10 and not set(held_out) & set(tuned)
    assert [p.name for p in held_out] == sorted(p.name for p in held_out)
    assert all(sf.info(path).duration <= HELD_OUT_MAX_S for path in held_out)
    every = {path for path, _, _ in dev_set(settings) if sf.info(path).duration <= HELD_OUT_MAX_S}
    silent = every - set(held_out) - set(tuned)  # not taken: Silero hears no voice in them
    assert len(silent) <= 2, silent
    assert main(["bench", "calls", "--held-out", "--audio-dir", "."]) == 2
    assert "--held-out" in capsys.readouterr().err
