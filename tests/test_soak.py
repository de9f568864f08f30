"""`halfsec bench soak`, two minutes of it on the real stack: two callers back to back, no turn
fails, every call's turn log is whole, and no process (this one with the sessions, each service's)
grows in memory or open files from the first minute to the second."""

import pytest

from agent.sim.soak import Sample, growth, soak


def test_growth_is_judged_from_the_first_minute_on_processes_present_at_both_ends():
    samples = [
        Sample(0.0, {"agent": 50, "asr/x[1]": 10}, {"agent": 9, "asr/x[1]": 5}),  # still warming
        Sample(61.0, {"agent": 100, "asr/x[1]": 200}, {"agent": 10, "asr/x[1]": 5}),
        Sample(120.0, {"agent": 105, "llm/y[2]": 1}, {"agent": 12, "llm/y[2]": 3}),  # asr restarted
    ]
    baseline, last, rss, fds = growth(samples)
    assert baseline.at_s == 61.0 and last.at_s == 120.0
    assert rss == {"agent": pytest.approx(0.05)} and fds == {"agent": 2}


async def test_two_minutes_of_two_callers(services, settings, speech, tmp_path):
    figures = await soak(settings, 2, 2.0, [wav for wav, _ in speech], tmp_path, sample_every_s=5.0)
    assert figures["calls"] >= 4 and figures["turns"] == 3 * figures["calls"], figures
    assert figures["failed_turns"] == 0, figures["failed"]
    assert figures["incomplete_logs"] == []
    assert figures["baseline_at_s"] >= 60 and figures["last_at_s"] >= 120
    assert {p.split("/")[0] for p in figures["processes"]} == {"agent", "asr", "tts", "llm"}
    # Every process holds the issue's +10 % (the TTS's arena is sized at start and no longer
    # climbs with each new piece length: +43 % over a 10-minute soak before; this process frees
    # each call as its job process's exit would: +13.5 % before). docs/reliability.md
    assert figures["rss_growth_max"] <= 0.10, figures["processes"]
    assert figures["fd_growth_max"] <= 4, figures["processes"]  # a pooled connection or two, no leak
    print({k: (p["rss_mb_last"], p["rss_growth"], p["fds_last"]) for k, p in figures["processes"].items()})
