"""espeak-ng synthesis through ctypes: real audio, real timing, clear errors."""
import numpy as np
import pytest

from phototalk.audio.tts import Synthesis, list_voices, synthesize
from phototalk.errors import InputError

TEXT = "Hello world, my mouth moves."
VOWEL_START = tuple("aeiouAEIOU@3V0")


def _bare(mnemonic: str) -> str:
    return mnemonic.lstrip("',")  # espeak prefixes stressed vowels with ' or ,


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


@pytest.fixture(scope="module")
def english() -> Synthesis:
    return synthesize(TEXT)


def test_english_audio_is_real_speech(english):
    s = english
    assert s.sr == 22050
    assert s.samples.dtype == np.float32 and s.samples.ndim == 1
    assert len(s.samples) / s.sr > 0.8
    assert _rms(s.samples) > 0.01
    assert np.abs(s.samples).max() <= 1.0


def test_phones_are_ordered_contiguous_and_within_audio(english):
    s, dur = english, len(english.samples) / english.sr
    starts = np.array([p[1] for p in s.phones])
    assert np.all(np.diff(starts) > 0)
    assert all(t1 > t0 for _, t0, t1 in s.phones)
    assert all(a[2] == b[1] for a, b in zip(s.phones, s.phones[1:]))
    assert s.phones[0][1] == 0.0 and s.phones[-1][2] == pytest.approx(dur)
    names = [_bare(p[0]) for p in s.phones]
    assert names.count("m") >= 3  # my, mouth, moves
    assert any(n.startswith("_") for n in names)  # the comma's pause is kept


def test_phone_times_line_up_with_audio_energy(english):
    s = english

    def window_rms(t0, t1):
        return _rms(s.samples[int(t0 * s.sr):int(t1 * s.sr)])

    vowels = [window_rms(t0, t1) for n, t0, t1 in s.phones if _bare(n).startswith(VOWEL_START)]
    pauses = [window_rms(t0, t1) for n, t0, t1 in s.phones if n.startswith("_") and t1 - t0 > 0.05]
    assert len(vowels) >= 5 and pauses
    assert min(vowels) > 0.02
    assert max(pauses) < 0.2 * np.median(vowels)


def test_word_events(english):
    words = [w for w, _ in english.words]
    assert words == ["Hello", "world", "my", "mouth", "moves"]
    times = [t for _, t in english.words]
    assert times == sorted(times) and times[0] < 0.05 and times[-1] < len(english.samples) / english.sr


@pytest.mark.parametrize("voice,text", [
    ("cmn", "你好，世界"), ("es", "Hola mundo"), ("fr", "Bonjour le monde"),
    ("de", "Hallo Welt"), ("ja", "こんにちは"), ("en-gb", "Hello world"),
])
def test_languages_produce_audio(voice, text):
    s = synthesize(text, voice=voice)
    assert len(s.samples) / s.sr > 0.3
    assert _rms(s.samples) > 0.01
    assert len(s.phones) >= 3


def test_rate_changes_duration():
    slow = synthesize(TEXT, rate_wpm=100)
    fast = synthesize(TEXT, rate_wpm=300)
    assert len(slow.samples) > 1.8 * len(fast.samples)


@pytest.mark.parametrize("text", ["", "?!.", "  \n\t "])
def test_nothing_to_speak(text):
    with pytest.raises(InputError, match="nothing to speak"):
        synthesize(text)


def test_unknown_voice():
    with pytest.raises(InputError, match=r"unknown voice 'xx-nonexistent'.*phototalk voices"):
        synthesize("hello", voice="xx-nonexistent")


def test_bad_rate():
    with pytest.raises(InputError, match="words per minute"):
        synthesize("hello", rate_wpm=10)


def test_deterministic(english):
    synthesize("Something else first, to move espeak's internal state.", voice="fr")
    again = synthesize(TEXT)
    assert np.array_equal(english.samples, again.samples)
    assert english.phones == again.phones


def test_long_text_returns_all_audio():
    words = ("the quick brown fox jumps over the lazy dog " * 23).split()[:200]
    s = synthesize(" ".join(words))
    assert len(s.words) == 200
    assert len(s.samples) / s.sr > 50  # ~200 words at 175 wpm is over a minute
    assert s.phones[-1][2] == pytest.approx(len(s.samples) / s.sr)


def test_list_voices_usable():
    voices = list_voices()
    idents = {v for v, _ in voices}
    langs = {lang for _, lang in voices}
    assert {"en-us", "cmn", "fr-fr", "de", "ja"} <= langs
    assert "gmw/en-US" in idents
    assert len(synthesize("hi", voice="gmw/en-US").samples) > 0
