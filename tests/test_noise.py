"""The ASR hallucination set's table (agent/sim/noise.py): no downloads here."""

from collections import defaultdict

from agent.sim import noise


def test_three_kinds_of_sixty_seconds_or_more():
    assert set(noise.KINDS) == {"room", "breathing", "music"}
    assert {clip.kind for clip in noise.CLIPS} == set(noise.KINDS)
    looped = defaultdict(float)
    for clip in noise.CLIPS:
        looped[clip.kind] += clip.seconds
    # room and breathing are looped to a stated length; music plays each file once
    assert looped["room"] >= 60 and looped["breathing"] >= 60
    assert sum(clip.kind == "music" for clip in noise.CLIPS) >= 8


def test_clips_are_unique_sourced_and_licensed():
    stems = [clip.stem for clip in noise.CLIPS]
    assert len(stems) == len(set(stems))
    for clip in noise.CLIPS:
        assert clip.kind in noise.KINDS, clip.name
        assert "--" not in clip.name and "/" not in clip.name, clip.name
        assert clip.src in noise.SOURCES and clip.licence, clip.name
        spec, via, _ = noise.SOURCES[clip.src]
        assert via in ("pip", "apt") and ("==" in spec if via == "pip" else "=" in spec), clip.src
        for a, b in clip.cuts:
            assert 0 <= a < b, clip.name
        if clip.vary:
            assert clip.seconds > 0 and clip.cuts, clip.name


def test_breath_cuts_leave_out_the_words():
    words = [(4.30, 5.05), (6.95, 8.05), (11.00, 12.10)]
    for a, b in noise.BREATH_CUTS:
        assert all(b <= w0 or a >= w1 for w0, w1 in words), (a, b)


def test_artifact_lists_one_wav_per_clip():
    from configs import Settings

    settings = Settings()
    (art,) = noise.artifacts(settings)
    assert art.dest == settings.speech_dir / "noise"
    assert set(art.files) == {f"{clip.stem}.wav" for clip in noise.CLIPS}
