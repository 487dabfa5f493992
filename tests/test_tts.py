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


# --- every language's phones reach sensible visemes ------------------------------------

from phototalk.audio.tts import arpabet_phones  # noqa: E402
from phototalk.motion.visemes import Viseme, espeak_to_arpabet, viseme_of  # noqa: E402

# Each text has bilabials (/p b m/) and open vowels (/a/).
LANG_TEXTS = [("en-us", "Bob bought a map for mama."), ("en-gb", "Bob bought a map for mama."),
              ("cmn", "妈妈买了苹果。爸爸跑步。"), ("es", "Pablo baila con mamá."),
              ("fr", "Papa mange une banane."), ("de", "Mama backt Brot am Abend."),
              ("ja", "ぱぱとまま、さかなをたべます。")]
OPEN = {Viseme.AA, Viseme.E, Viseme.O}
VOWELISH = OPEN | {Viseme.I, Viseme.U, Viseme.RR}


@pytest.mark.parametrize("voice,text", LANG_TEXTS)
def test_language_phones_map_to_visemes(voice, text):
    s = synthesize(text, voice=voice)
    assert not [p for p, _, _ in s.phones if p.startswith("(")]  # language switches are no sounds
    for name, _, _ in s.phones:
        bare = name.lstrip("',%=")
        if espeak_to_arpabet(name) == "AH":  # the fallback: only a real schwa may land there
            assert bare[:1] in ("@", "V"), f"{voice}: espeak phone {name!r} has no viseme"
        if bare[:1] in ("p", "b", "m", "B") and bare[1:2] in ("", "h", "\\"):
            assert viseme_of(espeak_to_arpabet(name)) is Viseme.PP, f"{voice}: {name!r} should close the lips"
    visemes = [viseme_of(lab) for lab, _, _ in arpabet_phones(s.phones)]
    assert visemes.count(Viseme.PP) >= 3
    assert Viseme.AA in visemes
    # espeak's syllable nuclei: most of the speaking time goes to vowels that open the mouth
    voiced = sum(b - a for (lab, a, b) in arpabet_phones(s.phones) if viseme_of(lab) in VOWELISH)
    assert voiced > 0.25 * s.duration_s


def test_rising_diphthong_becomes_glide_and_nucleus():
    out = arpabet_phones([("j", 0.0, 0.1), ("'iA", 0.1, 0.3), ("uo", 0.3, 0.5), ("aI", 0.5, 0.7)])
    labels = [lab for lab, _, _ in out]
    assert labels == ["Y", "Y", "AA", "W", "OW", "AY"]  # English aI stays one phone
    assert out[1][2] == pytest.approx(0.16) and out[2] == ("AA", pytest.approx(0.16), 0.3)
    assert all(a[2] == b[1] for a, b in zip(out, out[1:]))


def test_mandarin_syllables_open_and_close():
    """jia (家) must open for its /a/, not hold the narrow /i/ glide."""
    s = synthesize("家", voice="cmn")
    labels = [lab for lab, _, _ in arpabet_phones(s.phones)]
    assert "AA" in labels and labels.index("AA") > labels.index("Y")


def test_japanese_kanji_refused_with_a_hint():
    with pytest.raises(InputError, match="kana"):
        synthesize("私は学生です", voice="ja")
    assert len(synthesize("わたしはがくせいです", voice="ja").samples) > 0


def test_foreign_words_keep_contiguous_phones():
    s = synthesize("我爱 Python 语言", voice="cmn")
    assert [p for p, _, _ in s.phones if p.startswith("(")] == []
    assert all(a[2] == b[1] for a, b in zip(s.phones, s.phones[1:]))


# --- long text: chunks, one soundtrack, seamless motion --------------------------------

from phototalk.motion.track import MotionTrack  # noqa: E402
from phototalk.speak import concat_tracks, split_text, stitch, synthesize_to_wav, text_motion  # noqa: E402

STORY = ("Bob bought a map. My mother made apple pie and we ate it by the pond. "
         "The lamb was happy. Father saw a cat on a hot car. Maybe the big brown bear came home. ")


def test_split_text_keeps_every_word_in_sentence_groups():
    text = STORY * 6
    chunks = split_text(text, 120)
    assert len(chunks) > 3
    assert " ".join(chunks).split() == text.split()
    assert all(c.rstrip().endswith(".") for c in chunks)
    assert all(len(c) < 2 * 120 + 80 for c in chunks)
    # no sentence ends: cut between words; scripts without spaces: anywhere
    run_on = ("word " * 400).strip()
    assert " ".join(split_text(run_on, 100)).split() == run_on.split()
    assert all(len(c) <= 200 for c in split_text(run_on, 100))
    assert "".join(split_text("妈" * 1000, 100)) == "妈" * 1000
    assert split_text("Hi. ?! Bye. ...", 3) == ["Hi.", "?! Bye. ..."]  # punctuation joins a neighbour
    for bad in ("", "  \n ", "?!... ,;"):
        with pytest.raises(InputError, match="nothing to speak"):
            split_text(bad)


@pytest.fixture(scope="module")
def spoken(tmp_path_factory):
    wav = tmp_path_factory.mktemp("tts") / "story.wav"
    chunks = split_text(STORY * 2, 80)
    return chunks, synthesize_to_wav(chunks, str(wav), 25.0), wav


def test_chunks_tile_the_soundtrack_on_frame_boundaries(spoken):
    import wave

    texts, chunks, wav = spoken
    assert len(chunks) == len(texts) >= 4
    with wave.open(str(wav)) as w:
        sr, total = w.getframerate(), w.getnframes()
        pcm = np.frombuffer(w.readframes(total), np.int16)
    assert sr == 22050
    assert chunks[0].start == 0 and chunks[0].frame0 == 0
    for a, b in zip(chunks, chunks[1:]):
        assert b.start == a.start + a.n_samples and b.frame0 == a.frame0 + a.n_frames
        assert b.start == round(b.frame0 * sr / 25)  # chunk k starts exactly on its frame
        seam = pcm[b.start - int(0.15 * sr):b.start + int(0.08 * sr)]
        assert np.all(seam == 0)  # chunks meet in a pause
    last = chunks[-1]
    assert last.start + last.n_samples == total
    assert last.frame0 + last.n_frames == round(total / sr * 25)
    for c in chunks:
        assert c.phones[0][1] == 0 and c.phones[-1][2] == pytest.approx(c.n_samples / sr)
        assert all(p[2] == pytest.approx(q[1]) for p, q in zip(c.phones, c.phones[1:]))


def _max_step(x):
    return float(np.abs(np.diff(x)).max())


def test_streamed_motion_has_no_jump_at_seams(spoken):
    from phototalk.audio.io import Speech
    from phototalk.motion.analytic import analytic_motion
    from phototalk.speak import _read_chunk

    _, chunks, wav = spoken
    track = concat_tracks(list(text_motion(chunks, str(wav), 25.0, seed=3)))
    assert track.n_frames == chunks[-1].frame0 + chunks[-1].n_frames
    seams = [c.frame0 for c in chunks[1:]]
    raw = concat_tracks([analytic_motion(_read_chunk(str(wav), c), 25.0, seed=k + 1, phones=c.phones)
                         for k, c in enumerate(chunks)])
    for name in ("head_yaw", "head_pitch", "head_roll"):
        x = getattr(track, name)
        inner = np.delete(np.abs(np.diff(x)), [s - 1 for s in seams]).max()
        for s in seams:
            # the step across a seam is no bigger than the largest step inside a chunk, and
            # the acceleration there is ordinary too (no kink)
            assert abs(x[s] - x[s - 1]) <= inner + 1e-6, (name, s)
            acc = np.abs(np.diff(x, 2))
            assert acc[s - 2:s + 1].max() <= acc.max() * 0.999 + 1e-7 or acc[s - 2:s + 1].max() < 1e-4
        # without stitching the independent chunks would jump: the test can fail
        r = getattr(raw, name)
        assert max(abs(r[s] - r[s - 1]) for s in seams) > inner
    for s in seams:
        assert track.mouth_open[s - 3:s + 1].max() == 0  # lips rest shut through the pause
        assert track.blink[s - 1] == 0 and track.blink[s] == 0  # no half blink cut by a seam
    assert track.mouth_open.max() > 0.15


def test_stitch_drops_a_blink_cut_by_the_seam():
    n = 50
    zeros = np.zeros(n, np.float32)
    blink = zeros.copy()
    blink[45:] = [0.2, 0.6, 1.0, 1.0, 0.8]
    prev = MotionTrack(25.0, zeros, zeros, zeros, zeros + 0.01, zeros, zeros)
    cur = MotionTrack(25.0, zeros, zeros, blink.copy(), np.linspace(0.1, 0.2, n), zeros, zeros)
    out = stitch(prev, cur)
    assert out.blink.max() == 0
    assert out.head_yaw[0] == pytest.approx(0.01, abs=1e-6)  # continues where prev was
    assert out.head_yaw[-1] == pytest.approx(0.2)  # and is back on its own course after the blend


# --- text in, video out, judged on pixels -----------------------------------------------

import phototalk  # noqa: E402
import pixels  # noqa: E402


def _phone_frames(text, voice, chunk_chars, fps=25.0):
    """Frame index at the centre of every bilabial and every open vowel, on the streamed timeline.
    A stop's segment starts where its sound stops (espeak's event marks the burst; the
    silent closure before it is where the lips are shut, as a forced aligner would mark it)."""
    import tempfile

    from phototalk.motion.visemes import extend_stop_closures
    from phototalk.speak import _read_chunk

    with tempfile.TemporaryDirectory() as d:
        chunks = synthesize_to_wav(split_text(text, chunk_chars), f"{d}/s.wav", fps, voice=voice)
        audio = [_read_chunk(f"{d}/s.wav", c) for c in chunks]
    closed, opened = [], []
    for c, sp in zip(chunks, audio):
        t0 = c.start / c.sr
        for lab, a, b in extend_stop_closures(c.phones, sp.samples, sp.sr):
            i = int(round((t0 + (a + b) / 2) * fps))
            v = viseme_of(lab)
            if v is Viseme.PP:
                closed.append(i)
            elif v is Viseme.AA and b - a > 0.06:
                opened.append(i)
    return closed, opened


def _render_text(tmp_path, image, text, size=384, **kw):
    out = tmp_path / "talk.mp4"
    wav = tmp_path / "talk.wav"
    res = phototalk.speak(image, text, out, save_audio=wav, size=size, **kw)
    frames, fps = pixels.decode(out)
    return res, out, wav, frames, fps


def test_text_video_streams_in_chunks_with_lip_sync(tmp_path, astronaut_path):
    import wave

    text = "Bob bought a map. My mother made apple pie."
    calls = []
    res, out, wav, frames, fps = _render_text(tmp_path, astronaut_path, text, chunk_chars=20,
                                              progress=lambda done, total: calls.append((done, total)))
    # progress counts every frame against the final total from the start
    assert [d for d, _ in calls] == list(range(1, res.n_frames + 1))
    assert {t for _, t in calls} == {res.n_frames}
    with wave.open(str(wav)) as w:
        dur = w.getnframes() / w.getframerate()
        assert w.getframerate() == 22050 and w.getnchannels() == 1
    assert dur > 2.5 and res.duration_s == pytest.approx(dur)
    assert len(frames) == res.n_frames == round(dur * fps)
    st = pixels.streams(out)
    assert abs(st["audio"] - dur) < 0.05 and abs(st["video"] - dur) < 0.05
    ap = np.array([pixels.aperture(lm) for lm in pixels.landmarks(frames)])
    assert np.isfinite(ap).mean() > 0.95
    closed, opened = _phone_frames(text, "en-us", 20)
    assert len(closed) >= 6 and len(opened) >= 3
    assert np.mean(ap[closed] < 0.04) >= 0.9, ap[closed]
    assert np.mean(ap[opened] > 0.08) >= 0.8, ap[opened]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_mandarin_mouth_follows_the_syllables(tmp_path, astronaut_path):
    text = "妈妈买了苹果。爸爸跑步。"
    # At 512 px: at 384 the astronaut's eye corners are ~45 px apart, so an open syllable's
    # 0.08 lip gap is ~3.6 px and a 2 deg change of head roll moved readings by 0.02 iod
    # (0.091 -> 0.069); at 512 the same renders read 0.10-0.19 open, 0.00-0.05 shut.
    res, out, wav, frames, fps = _render_text(tmp_path, astronaut_path, text, size=512, voice="cmn")
    ap = np.array([pixels.aperture(lm) for lm in pixels.landmarks(frames)])
    closed, opened = _phone_frames(text, "cmn", 600)
    assert len(closed) >= 8 and len(opened) >= 6
    assert np.mean(ap[closed] < 0.04) >= 0.85, ap[closed]
    assert np.mean(ap[opened] > 0.08) >= 0.8, ap[opened]
    # open-shut cycles: the mouth crosses half-open at least once per open syllable
    crossings = np.sum(np.diff((np.nan_to_num(ap) > 0.06).astype(int)) == 1)
    assert crossings >= len(opened) // 2
