"""Phones from speech: forced alignment and allphone recognition, on real audio."""
from __future__ import annotations

import numpy as np
import pytest

from phototalk.audio.io import Speech, load_speech
from phototalk.audio.phones import AlignmentError, align, phones_for, recognize
from phototalk.audio.tts import synthesize
from phototalk.motion.visemes import espeak_to_arpabet

TEXT = "Please map a movie, but my mother prefers a blue umbrella, Bob."


@pytest.fixture(scope="module")
def tts():
    s = synthesize(TEXT)
    return s, Speech(s.samples, s.sr)


def covers(phones, duration):
    assert phones[0].start_s == 0.0 and abs(phones[-1].end_s - duration) < 1e-6
    for p, q in zip(phones, phones[1:]):
        assert p.end_s == pytest.approx(q.start_s) and p.end_s > p.start_s


def test_alignment_finds_the_words_phones_where_espeak_put_them(tts):
    s, sp = tts
    ph = align(sp, TEXT)
    covers(ph, sp.duration_s)
    labels = [p.label for p in ph]
    assert labels.count("M") >= 5 and "UW" in labels and "B" in labels
    # Bilabial centres agree with the synthesiser's own timings.
    ours = [(a + b) / 2 for m, a, b in s.phones if espeak_to_arpabet(m) in ("M", "B", "P")]
    theirs = [(p.start_s + p.end_s) / 2 for p in ph if p.label in ("M", "B", "P")]
    assert len(ours) == len(theirs)
    assert np.median(np.abs(np.array(ours) - np.array(theirs))) < 0.04


def test_out_of_dictionary_words_are_spelled(tts):
    s = synthesize("Phototalk makes Zorblax speak.")
    ph = align(Speech(s.samples, s.sr), "Phototalk makes Zorblax speak.")
    assert "P" in [p.label for p in ph] and "K" in [p.label for p in ph]


def test_wrong_transcript_raises_and_phones_for_falls_back(tts):
    _, sp = tts
    short = Speech(sp.samples[: sp.sr], sp.sr)
    with pytest.raises(AlignmentError):
        align(short, "zebra " * 40)
    ph = phones_for(short, "zebra " * 40)
    covers(ph, short.duration_s)
    assert any(p.label != "SIL" for p in ph)


def test_recognition_labels_silence_and_speech(real_speech):
    y = load_speech(real_speech).samples
    sr = 16000
    gap = np.concatenate([y[: 3 * sr], np.zeros(sr, np.float32), y[3 * sr: 6 * sr]])
    sp = Speech(gap, sr)
    ph = recognize(sp)
    covers(ph, sp.duration_s)
    t = np.arange(0, sp.duration_s, 0.01)
    lab = np.array([next(p.label for p in ph if p.start_s <= x < p.end_s or x >= ph[-1].start_s) for x in t])
    in_gap = (t > 3.1) & (t < 3.9)
    assert np.mean(lab[in_gap] == "SIL") > 0.9
    energy = np.array([np.sqrt(np.mean(gap[int(x * sr): int(x * sr) + 160] ** 2)) for x in t])
    loud = energy > 0.3 * np.percentile(energy, 95)
    assert np.mean(lab[loud] != "SIL") > 0.8


def test_silence_is_all_silence():
    ph = phones_for(Speech(np.zeros(32000, np.float32), 16000))
    assert [p.label for p in ph] == ["SIL"]
