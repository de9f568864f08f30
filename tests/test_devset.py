"""The ASR dev set's table (agent/sim/devset.py): no downloads here."""

from collections import Counter

from agent.sim import devset


def test_every_category_has_three_entries_or_more():
    counts = Counter(entry.category for entry in devset.ENTRIES)
    assert set(counts) == set(devset.CATEGORIES)
    assert min(counts.values()) >= 3
    assert len(devset.ENTRIES) >= 40


def test_entries_are_unique_and_complete():
    stems = [entry.stem for entry in devset.ENTRIES]
    assert len(stems) == len(set(stems))
    for entry in devset.ENTRIES:
        assert entry.text.strip() and entry.text == " ".join(entry.text.split()), entry.name
        assert entry.text == entry.text.lower(), entry.name
        assert entry.src in devset.SOURCES and entry.members, entry.name
        assert "--" not in entry.name and "/" not in entry.name, entry.name
        if entry.cut:
            assert 0 <= entry.cut[0] < entry.cut[1], entry.name


def test_artifact_lists_a_wav_and_a_txt_per_entry(tmp_path):
    from configs import Settings

    settings = Settings()
    (art,) = devset.artifacts(settings)
    assert art.dest == settings.speech_dir / "dev"
    assert len(art.files) == 2 * len(devset.ENTRIES)
