"""Phones from speech: forced alignment and allphone recognition, on real audio
(espeak-ng speech with its own phoneme timings, and recorded speech from ../shared)."""
from __future__ import annotations

import logging
import threading

import numpy as np
import pytest

from phototalk.audio import phones as P
from phototalk.audio.io import Speech, load_speech
from phototalk.audio.phones import AlignmentError, Phone, align, phones_for, recognize
from phototalk.audio.tts import synthesize
from phototalk.motion.visemes import espeak_to_arpabet

TEXT = "Hello world, my mouth moves. Please map a movie, but Bob prefers a blue umbrella."
BILABIALS = {"M", "B", "P"}
VOWELS = {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"}


@pytest.fixture(scope="module")
def tts():
    s = synthesize(TEXT)  # 22050 Hz: align/recognize resample internally
    return s, Speech(s.samples, s.sr)


def covers(phones: list[Phone], duration: float) -> None:
    assert phones[0].start_s == 0.0 and phones[-1].end_s == pytest.approx(duration, abs=1e-6)
    for p, q in zip(phones, phones[1:]):
        assert p.end_s == q.start_s and p.end_s > p.start_s
        assert not (p.label == q.label == "SIL")


def labels_at(phones: list[Phone], t: np.ndarray) -> np.ndarray:
    starts = np.array([p.start_s for p in phones])
    return np.array([phones[i].label for i in np.searchsorted(starts, t, side="right") - 1])


def test_alignment_puts_phones_where_espeak_spoke_them(tts):
    s, sp = tts
    ph = align(sp, TEXT)
    covers(ph, sp.duration_s)
    labels = [p.label for p in ph]
    for want in ("HH", "M", "AW", "UW", "B", "P", "V", "F"):
        assert want in labels
    assert labels.count("M") == 6 and labels[:3] == ["SIL", "HH", "AH"]
    for cls in (BILABIALS, VOWELS):
        theirs = np.array([a for m, a, _ in s.phones if espeak_to_arpabet(m) in cls])
        ours = np.array([p.start_s for p in ph if p.label in cls])
        assert len(ours) == len(theirs)  # same phones, one to one
        assert np.median(np.abs(ours - theirs)) < 0.03  # s; measured ~0.01


def test_alignment_is_deterministic_and_history_free(tts):
    _, sp = tts
    first = align(sp, TEXT)
    recognize(sp)
    align(Speech(sp.samples[: sp.sr * 2], sp.sr), "Hello world, my")  # same pooled decoder
    assert align(sp, TEXT) == first


def test_a_failed_alignment_keeps_its_decoder_and_changes_nothing_after_it(tts):
    # Words that find no path through the audio leave the decoder between utterances: it goes
    # back to the pool (a new one costs ~0.1 s, which every short clip whose words do not
    # align paid again on its next alignment), and the next alignment is what a fresh one gives.
    _, sp = tts
    P._aligners.idle.clear()
    fresh = align(sp, TEXT)
    kept = P._aligners.idle[:]
    with pytest.raises(AlignmentError, match="does not match"):
        align(Speech(sp.samples[: sp.sr * 2], sp.sr), TEXT)
    assert P._aligners.idle == kept  # the same decoder, not dropped
    assert align(sp, TEXT) == fresh


def test_words_missing_from_the_dictionary_are_spelled(tts, caplog):
    text = "Zorblax sells 42 maps."
    s = synthesize(text)
    with caplog.at_level(logging.INFO, logger="phototalk.audio.phones"):
        ph = align(Speech(s.samples, s.sr), text)
    labels = [p.label for p in ph]
    assert {"Z", "K", "S", "F", "T", "M", "P"} <= set(labels)  # zorblax, forty two, maps
    assert "zorblax" in caplog.text


def test_long_audio_is_aligned_in_pieces_with_the_same_result(tts, monkeypatch):
    _, sp = tts
    whole = align(sp, TEXT)
    monkeypatch.setattr(P, "LONG_ALIGN_S", 2.0)
    monkeypatch.setattr(P, "ALIGN_CHUNK_S", 2.0)
    pieces = []
    real = P._pieces
    monkeypatch.setattr(P, "_pieces", lambda *a: pieces.extend(real(*a)) or pieces)
    chunked = align(sp, TEXT)
    assert len(pieces) >= 3 and all(b - a <= 2.0 * 16000 for a, b, _ in pieces)
    covers(chunked, sp.duration_s)
    t = np.arange(0, sp.duration_s, 0.01)
    assert np.mean(labels_at(whole, t) == labels_at(chunked, t)) > 0.9


def test_wrong_transcript_raises_and_phones_for_falls_back(tts, caplog):
    _, sp = tts
    short = Speech(sp.samples[: sp.sr], sp.sr)
    with pytest.raises(AlignmentError) as e:
        align(short, "zebra " * 30)
    assert "\n" not in str(e.value)
    with pytest.raises(AlignmentError):
        align(short, "?! -- ...")
    with caplog.at_level(logging.WARNING, logger="phototalk.audio.phones"):
        ph = phones_for(short, "zebra " * 30)
    assert "recognising phones" in caplog.text
    covers(ph, short.duration_s)
    assert sum(p.end_s - p.start_s for p in ph if p.label != "SIL") > 0.3


def test_recognition_boundaries_match_alignment(tts):
    _, sp = tts
    rec, ali = recognize(sp), align(sp, TEXT)
    covers(rec, sp.duration_s)
    r = np.array([p.start_s for p in rec])
    a = np.array([p.start_s for p in ali])
    assert np.median(np.abs(a[:, None] - r[None]).min(1)) < 0.035  # s; measured 0.02


def test_recognition_labels_silence_and_speech(speech_with_gap):
    path, g0, g1 = speech_with_gap
    sp = load_speech(path)
    ph = recognize(sp)
    covers(ph, sp.duration_s)
    t = np.arange(0, sp.duration_s, 0.01)
    lab = labels_at(ph, t)
    assert np.all(lab[(t > g0 + 0.1) & (t < g1 - 0.1)] == "SIL")
    y = sp.samples
    energy = np.array([np.sqrt(np.mean(y[int(x * 16000): int(x * 16000) + 160] ** 2)) for x in t])
    loud = energy > 0.3 * np.percentile(energy, 95)
    assert np.mean(lab[loud] != "SIL") > 0.8
    assert len({p.label for p in ph}) > 15  # a phone inventory, not one label


def test_recognition_in_threads_is_identical(real_speech):
    sp = load_speech(real_speech)
    want = recognize(sp)
    got: list = [None] * 3

    def run(k):
        got[k] = recognize(sp)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert all(g == want for g in got)


def test_long_recognition_is_decoded_in_pieces(real_speech, monkeypatch):
    sp = load_speech(real_speech)
    monkeypatch.setattr(P, "CHUNK_S", 2.0)
    cuts = P._split_points(P._frame_rms(P._pcm16(sp)))
    assert len(cuts) >= 4 and max(np.diff(cuts)) <= 3.0 / P.FRAME_S
    covers(recognize(sp), sp.duration_s)


@pytest.mark.parametrize("sr", [16000, 8000])
def test_silence_is_all_silence(sr):
    quiet = Speech(np.zeros(2 * sr, np.float32), sr)
    assert recognize(quiet) == [Phone("SIL", 0.0, 2.0)]
    assert phones_for(quiet) == [Phone("SIL", 0.0, 2.0)]
    assert phones_for(quiet, "hello there") == [Phone("SIL", 0.0, 2.0)]
    with pytest.raises(AlignmentError):
        align(quiet, "hello there")
