"""Expressions on top of speech, and singing (issue 13): every emotion keeps the lips'
contacts (/p b m/ shut, /f v/ lip on teeth), happy shows in the cheeks and eyes, rounded
vowels pucker, and a sung clip holds open vowels while the head sways with the phrase.
Judged on the MotionTrack where the contract is numeric and on re-detected landmarks of
rendered frames where the outcome is visual."""
from __future__ import annotations

import numpy as np
import pytest

import phototalk
from phototalk.audio.io import Speech, load_speech
from phototalk.errors import InputError
from phototalk.motion.analytic import analytic_motion
from phototalk.motion.expressive import EMOTIONS, PRESETS
from phototalk.motion.prosody import prosody
from phototalk.motion.visemes import LABIODENTAL_OPEN_MAX, Viseme, viseme_of
from phototalk.pipeline import prepare_rig
from phototalk.render.warp import MeshWarpRenderer
from phototalk.speak import _read_chunk, synthesize_to_wav

import pixels
from conftest import asset

FPS = 25.0
SR = 16000
SENTENCE = "Bob brought five maple muffins back, but Pam preferred velvet plums by the pool."
DEFAULT_STRENGTH = 0.8  # GenerateOptions.emotion_strength's default
CLOSED_AP = 0.04  # aperture (inner-lip gap / outer eye-corner distance) under which lips read shut (measure.py)


@pytest.fixture(scope="module")
def spoken(tmp_path_factory):
    """The sentence in espeak's voice as generate --text makes it: (Speech, phones)."""
    wav = tmp_path_factory.mktemp("expr") / "sentence.wav"
    chunk = synthesize_to_wav([SENTENCE], str(wav), FPS)[0]
    return _read_chunk(str(wav), chunk), chunk.phones


def _centre_frames(phones, visemes, n):
    return [i for label, a, b in phones if viseme_of(label) in visemes
            for i in [int(round((a + b) / 2 * FPS))] if i < n]


@pytest.mark.parametrize("emotion", EMOTIONS)
def test_every_emotion_keeps_lip_contacts(spoken, emotion):
    speech, phones = spoken
    tr = analytic_motion(speech, FPS, phones=phones, emotion=emotion, emotion_strength=1.0)
    pp = _centre_frames(phones, {Viseme.PP}, tr.n_frames)
    ff = _centre_frames(phones, {Viseme.FF}, tr.n_frames)
    assert len(pp) >= 10 and len(ff) >= 4
    assert np.all(tr.mouth_open[pp] == 0.0)  # /p b m/: shut, whatever the expression
    assert np.all(tr.mouth_open[ff] <= LABIODENTAL_OPEN_MAX)  # /f v/: the lower lip reaches the teeth
    assert np.all(tr.lip_tuck[ff] >= 0.9)
    assert tr.mouth_open[0] == 0.0 and tr.mouth_open[-1] == 0.0  # silence at both ends: lips at rest


def test_surprise_hangs_the_jaw_but_speaks_with_open_lips(spoken):
    speech, phones = spoken
    neutral = analytic_motion(speech, FPS, phones=phones)
    surprised = analytic_motion(speech, FPS, phones=phones, emotion="surprised")
    floor = PRESETS["surprised"].jaw * DEFAULT_STRENGTH
    assert surprised.jaw_open.min() >= floor - 1e-6  # the jaw hangs, silence included
    assert np.all(surprised.mouth_open >= neutral.mouth_open)
    # Inside the speech, away from the lip contacts (0.1 s), the lips never come nearly
    # together as they do in neutral speech (/t s k/, short pauses).
    t = np.arange(neutral.n_frames) / FPS
    sounding = [(a, b) for l, a, b in phones if viseme_of(l) is not Viseme.SIL]
    inside = (t > sounding[0][0] + 0.1) & (t < sounding[-1][1] - 0.1)
    for l, a, b in phones:
        if viseme_of(l) in (Viseme.PP, Viseme.FF):
            inside &= (t < a - 0.1) | (t > b + 0.1)
    assert (neutral.mouth_open[inside] < 0.03).any()
    assert surprised.mouth_open[inside].min() >= 0.9 * floor


def test_rounded_vowels_pucker(tmp_path):
    chunk = synthesize_to_wav(["Oh, we will go slowly over the snow, Owen. Who knew? Would you show Joe?"],
                              str(tmp_path / "r.wav"), FPS)[0]
    speech, phones = _read_chunk(str(tmp_path / "r.wav"), chunk), chunk.phones
    tr = analytic_motion(speech, FPS, phones=phones)
    for labels, least in ((("OW",), 0.55), (("UW", "W"), 0.75)):
        idx = [int(round((a + b) / 2 * FPS)) for l, a, b in phones if l in labels]
        assert len(idx) >= 3
        assert tr.mouth_round[idx].min() >= least and tr.mouth_round[idx].mean() >= 0.7, labels
    # The pucker eases in and out: no frame-to-frame step larger than a fast lip movement.
    assert np.abs(np.diff(tr.mouth_round)).max() < 0.35


@pytest.fixture(scope="module")
def astronaut_renderer(astronaut_path):
    return MeshWarpRenderer(prepare_rig(astronaut_path))


def _cheek_rise_iod(neutral: np.ndarray, happy: np.ndarray, lm: np.ndarray) -> list[float]:
    """Upward motion (iod, + = up) of the skin of each cheek apple, between the lower lid
    and the cheek landmark, from dense optical flow between two renders ((h, w, 3) uint8)
    of the same portrait; ``lm``: its landmarks on ``neutral``."""
    import cv2

    iod = np.linalg.norm(lm[33] - lm[263])
    g0, g1 = (cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in (neutral, happy))
    flow = cv2.calcOpticalFlowFarneback(g0, g1, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    r = int(0.08 * iod)
    out = []
    for lid, cheek in ((145, 205), (374, 425)):
        x, y = ((lm[lid] + 2 * lm[cheek]) / 3).astype(int)
        out.append(-float(np.median(flow[y - r:y + r, x - r:x + r, 1])) / iod)
    return out


def test_happy_shows_in_the_cheeks_and_eyes(astronaut_renderer):
    """A Duchenne smile at the default strength: the cheeks rise, the lower lids with
    them, and the eyes narrow visibly, not only the mouth corners (before: eyes 0.80 of
    neutral, cheeks up 0.04 iod, lower lids 0.013 iod)."""
    frames = {}
    for name in ("neutral", "happy"):
        p, s = PRESETS[name], DEFAULT_STRENGTH
        frames[name] = astronaut_renderer.render(brow_up=p.brow_up * s, eye_squint=p.eye_squint * s,
                                                 smile=p.smile * s, cheek=p.cheek * s)
    lm_n, lm_h = pixels.landmarks([frames["neutral"], frames["happy"]])
    assert lm_n is not None and lm_h is not None
    iod = np.linalg.norm(lm_n[33] - lm_n[263])

    def lower_lid_height(lm):  # above the eye-corner line, iod
        return ((lm[33, 1] + lm[263, 1]) / 2 - (lm[145, 1] + lm[374, 1]) / 2) / iod
    assert pixels.eye_open(lm_h) < 0.75 * pixels.eye_open(lm_n)
    assert lower_lid_height(lm_h) > lower_lid_height(lm_n) + 0.016
    assert min(_cheek_rise_iod(frames["neutral"], frames["happy"], lm_n)) > 0.055


def test_surprised_video_closes_the_lips_on_pixels(tmp_path):
    """generate --text under surprise on a real portrait: the rendered lips read shut at
    the middle of /p b m/ and in the pause after the speech (they never met before, and
    the teeth showed throughout)."""
    img = asset("images", "photo_woman_frontal.png")
    out = tmp_path / "surprised.mp4"
    chunk = synthesize_to_wav([SENTENCE], str(tmp_path / "s.wav"), FPS)[0]
    phototalk.speak(img, SENTENCE, out, emotion="surprised", size=512, seed=1)
    frames, fps = pixels.decode(out)
    assert fps == FPS
    ap = np.array([pixels.aperture(lm) for lm in pixels.landmarks(frames)])
    pp = _centre_frames(chunk.phones, {Viseme.PP}, len(frames))
    last_sound = max(b for l, a, b in chunk.phones if viseme_of(l) is not Viseme.SIL)
    after = np.arange(int(np.ceil((last_sound + 0.1) * FPS)), len(frames))
    assert np.isfinite(ap).all()
    assert np.mean(ap[pp] < CLOSED_AP) >= 0.85
    assert len(after) >= 3 and np.all(ap[after] < CLOSED_AP)


# ------------------------------------------------------------------ singing
def _sung_note_clip(notes_st=(0, 4, 7, 5), note_s=1.1, gap_s=0.12, f0_hz=220.0) -> Speech:
    """Synthetic sung vowels: harmonic tones with 5.5 Hz vibrato (+-0.3 semitone) and a
    crescendo (8 dB over the note), one per semitone offset in ``notes_st``, short
    breaths between."""
    parts = []
    rng = np.random.default_rng(0)
    for k, st in enumerate(notes_st):
        t = np.arange(int(note_s * SR)) / SR
        f = f0_hz * 2 ** ((st + 0.3 * np.sin(2 * np.pi * 5.5 * t)) / 12)
        phase = 2 * np.pi * np.cumsum(f) / SR
        # an /i/-like spectrum: strong low harmonics, a second formant region near 2.3 kHz
        y = sum(a * np.sin(h * phase) for h, a in ((1, 1.0), (2, 0.5), (3, 0.2), (10, 0.15), (11, 0.12)))
        env = np.minimum(1, t / 0.08) * np.minimum(1, (note_s - t) / 0.08) * (0.4 + 0.6 * t / note_s)
        parts += [0.2 * y * env, 0.001 * rng.standard_normal(int(gap_s * SR))]
    pad = 0.001 * rng.standard_normal(int(0.3 * SR))
    return Speech(np.concatenate([pad, *parts, pad]).astype(np.float32), SR)


def test_sustained_notes_are_recognised_as_singing():
    sung = _sung_note_clip()
    n = int(sung.duration_s * FPS)
    assert prosody(sung.samples, SR, FPS, n).sounds_sung(FPS)


@pytest.mark.parametrize("name", ["en_radio_holidays.wav", "en_vlog_reopening.wav", "sing_imagine.wav"])
def test_real_speech_is_not_singing_and_the_song_is(name):
    speech = load_speech(asset("audio", name))
    n = int(speech.duration_s * FPS)
    assert prosody(speech.samples, speech.sr, FPS, n).sounds_sung(FPS) is name.startswith("sing")


def test_a_held_ee_is_sung_open_and_breathes_with_the_voice():
    """Each held "ee" (phones say IY throughout, as for a sung /i:/) keeps an open vowel,
    not speech's slit between the teeth, with small pitch- and loudness-driven
    variation; the lips are less spread than in speech."""
    sung = _sung_note_clip()
    n = int(sung.duration_s * FPS)
    starts = 0.3 + np.arange(4) * 1.22
    phones = [("SIL", 0.0, 0.3)] + [("IY", a, a + 1.1) for a in starts] + [("SIL", starts[-1] + 1.1, sung.duration_s)]
    speech = analytic_motion(sung, FPS, phones=phones, singing="off")
    auto = analytic_motion(sung, FPS, phones=phones, singing="auto")
    means = []
    for a in starts:
        mid = slice(int((a + 0.25) * FPS), int((a + 0.85) * FPS))
        m = auto.mouth_open[mid]
        means.append(m.mean())
        assert m.min() > 0.14 and m.min() > speech.mouth_open[mid].max() + 0.03
        assert 0.003 < m.std() < 0.03  # held, yet alive (the crescendo): a static shape reads as frozen
        assert np.corrcoef(m, np.arange(len(m)))[0, 1] > 0.8  # ... opening with the crescendo
        assert auto.mouth_wide[mid].mean() < speech.mouth_wide[mid].mean()
    assert means[2] > means[0] + 0.02  # the note 7 semitones up is sung more open
    np.testing.assert_array_equal(auto.mouth_open, analytic_motion(sung, FPS, phones=phones).mouth_open)


def test_a_song_sways_the_head_with_the_phrase_without_nods():
    sung = _sung_note_clip(notes_st=(0, 4, 7, 5, 2, 0, 4, 9))
    speechlike = analytic_motion(sung, FPS, seed=3, singing="off")
    song = analytic_motion(sung, FPS, seed=3, singing="on")
    for tr in (speechlike, song):
        assert np.degrees(np.std(tr.head_yaw)) > 1.0  # the head still moves
    # Nods and the syllable-rate jiggle are fast: their share of the motion is the
    # second difference, which the phrase-long sway keeps small.
    def fast(x):
        return np.abs(np.diff(x, 2)).mean() / max(float(np.std(x)), 1e-9)
    assert fast(song.head_pitch) < 0.5 * fast(speechlike.head_pitch)
    assert fast(song.head_yaw) < 0.6 * fast(speechlike.head_yaw)


def test_singing_option_is_checked():
    with pytest.raises(InputError, match="singing"):
        analytic_motion(_sung_note_clip(notes_st=(0,)), FPS, singing="maybe")
