"""Stage 1, analytic: speech -> MotionTrack, with every random draw from one seeded generator.

The mouth articulates visemes from phones (or follows loudness with a fricative cue) and
relaxes to closed in silence; blinks are a quasi-periodic process with refractory time,
drawn towards phrase boundaries; head pose, brows, squint, gaze, breathing and emotion
come from the speech's prosody plus smooth seeded noise (``motion.expressive``).
"""
from __future__ import annotations

import numpy as np

from ..audio.features import high_band_ratio, loudness_db, n_frames
from ..audio.io import Speech
from ..core.numeric import smooth
from ..errors import InputError
from .expressive import blink_onsets_near_pauses, expressive_channels, jaw_floor
from .prosody import Prosody, prosody
from .track import MotionTrack, jaw_from_mouth
from .visemes import (CLOSURE_EASE_S, Viseme, coarticulate, extend_stop_closures, seconds_to, touch_labiodentals,
                      viseme_of)

MOUTH_OPEN_MAX = 0.26  # iod; the widest loud-vowel gap (real speakers measure 0.25-0.45)
SPEECH_RANGE_DB = 30.0  # dB below the loud-speech level where the mouth is considered shut
SILENCE_DBFS = -55.0  # dBFS; quieter than this is silence whatever the recording level
# s; uniform draw between blinks, ~16 blinks/min before prosody moves them (real: 7-22
# at rest, more while talking); the first falls anywhere in BLINK_FIRST_S, so a 10-s
# clip gets 2-4 blinks, not 4 every time.
BLINK_INTERVAL_S = (2.9, 4.5)
BLINK_FIRST_S = (0.4, 3.0)
# Per-blink timing, s (drawn as BLINK_TEMPO_STEP says): the lids fall in ~1.1-2 frames at
# 25 fps (an eased fall), rest shut 1.25-2.5 frames, then lift quickly to BLINK_KNEE shut
# (time constant BLINK_LIFT_SHARE tau) and settle slowly from there (exp(-t / tau), cut
# off continuously at BLINK_RISE_TAUS tau): the lid's reopening is fastest as it leaves
# the lower lid and slows as it nears the open position. Landmark models read a lid past
# ~0.5 shut as below half-open on most faces, but only past ~0.75 on deep-set or
# low-contrast eyes (BLINK_READ_SHUT), and one past ~0.2 as open (0.9 of the median):
# measure.py's closing runs from there to the deepest frame, its reopening from the
# deepest frame back there. MediaPipe reads a shut eye alike from the rest to ~0.55 of the
# rise and lags a frame, so the deepest frame it finds is mostly the last before the
# knee: the quick lift keeps that close to the rest (closing: fall + rest + ~1 frame),
# and the slow settle with tau >= 0.11 s spends >= 3 frames between the knee and 0.2, so
# the reopening reads longer than the closing. The rest is what the deep-set eyes see of
# a blink: MediaPipe reads Mona Lisa's fully shut lid as 0.35-0.55 of open (whatever its
# tone, grain, lash line or drop, see render.lids.LID_SHADE), so she is below half only
# while the lid is within ~0.25 of shut. With a 0.01-0.04 s rest and one exponential rise
# (tau 0.09-0.14 s) her blinks read 1.7 frames below half at --speed 1.9, one in three
# too short to count as a blink (12/min); a 0.04-0.07 s rest alone gave her 2.0 but
# brought the other faces' closing up to their reopening (4.0 / 4.3 frames at --speed
# 1.9). Now full blinks stay past 0.8 shut 2.6-2.9 frames on average (1.6-1.9 before)
# and past half shut 3.6-4.0 (3.4-3.6), and the other faces read closing 2.0-2.3 /
# reopening 5.7-7.7 frames (measure.py, en_vlog_reopening). Real talking videos read
# below half-open 1.5-6 frames, varying from blink to blink, reopening slower than closing.
BLINK_CLOSE_S, BLINK_HOLD_S, BLINK_RISE_TAU_S = (0.045, 0.08), (0.05, 0.10), (0.11, 0.16)
BLINK_RISE_TAUS = 4.0  # the settle ends this many tau after the knee (closure 1 % of the knee left, then 0)
BLINK_KNEE, BLINK_LIFT_SHARE = 0.55, 0.35  # closure where the quick lift ends; its tau, share of the settle's
# Change of tempo (share of those ranges) from one blink to the next: at least 0.33, and
# below 0.5 so that the third blink does not come back to the first one's tempo.
BLINK_TEMPO_STEP = (0.33, 0.45)
BLINK_REDRAWS = 8  # tries at a blink whose length differs from the previous one's
# Closures past which landmark models read a lid below half-open: ~0.5 on most faces, only
# ~0.75 on deep-set or low-contrast eyes, whose shut lid they read as 0.35-0.5 of open
# (a painting's shadowed sockets, a blurry webcam). A blink's frames past each differ from
# the previous blink's, so that the blinks of a clip last visibly different times on both.
BLINK_READ_SHUT = (0.5, 0.8)
BLINK_PARTIAL_P = 0.2  # share of blinks that stop short of shut (real people: ~10-30 %)
BLINK_PARTIAL_DEPTH = (0.5, 0.8)  # closure a partial blink reaches
FALLBACK_MIN_S = 0.3  # s; a "silence" this long that is loud is unrecognised speech
# Sung notes hold an open vowel: singers drop the jaw and keep vowels tall on a sustained
# note (a held "ee" is sung open, not as speech's slit between the teeth). The opening
# grows with loudness and with pitch above the singer's median, so a held note breathes
# with the voice instead of freezing.
SING_OPEN_IOD = 0.20  # iod; a held note at full loudness and the median pitch
SING_OPEN_QUIET = 0.5  # share of SING_OPEN_IOD a quiet held note keeps
SING_OPEN_PER_ST = 0.006  # iod more per semitone above the median (clipped to -5..+7)
SING_ROUND_CLOSE = 0.45  # a fully rounded vowel (/uw/) opens this much less than the others
SING_SPREAD_KEEP = 0.5  # share of a vowel's lip spread kept on a held note (tall vowels)
HELD_EASE_S = 0.05  # s; the held shape fades in and out over this long

SINGING_MODES = ("auto", "on", "off")  # decide from the audio, always a song, always speech


def mouth_from_loudness(speech: Speech, fps: float, n: int) -> np.ndarray:
    """(n,) float32 mouth opening in iod from loudness, gated to 0 in silence."""
    db = loudness_db(speech.samples, speech.sr, fps, n)
    voiced = db > SILENCE_DBFS
    if not voiced.any():
        return np.zeros(n, np.float32)
    loud_db = float(np.percentile(db[voiced], 95))
    floor_db = float(np.percentile(db, 10))
    # The gate sits above the recording's noise floor and within SPEECH_RANGE_DB of
    # loud speech, so a noisy background does not keep the mouth ajar.
    gate_db = max(min(floor_db + 6.0, loud_db - 12.0), loud_db - SPEECH_RANGE_DB, SILENCE_DBFS)
    level = np.clip((db - gate_db) / max(loud_db - gate_db, 6.0), 0.0, 1.0)
    # Lips part fully early in a syllable and stay apart through quieter voiced stretches,
    # hence the concave curve (real speakers' mouths are open most of the speaking time).
    openness = MOUTH_OPEN_MAX * level ** 0.6
    # Fricatives are loud but made nearly closed: shrink where high frequencies dominate.
    hf = high_band_ratio(speech.samples, speech.sr, fps, n)
    openness *= 1.0 - 0.55 * np.clip((hf - 0.35) / 0.4, 0.0, 1.0)
    openness = smooth(openness, 0.03 * fps)  # ~30 ms: lips are fast but not instantaneous
    openness[smooth(level, 0.02 * fps) <= 1e-3] = 0.0  # true silence stays exactly closed
    return openness.astype(np.float32)


def blink_shape(x: np.ndarray, close_s: float, hold_s: float, tau: float) -> np.ndarray:
    """Closure 0..1 of one full blink at times ``x`` (s from its start, any shape): an eased
    fall over ``close_s``, shut for ``hold_s``, then a quick lift to BLINK_KNEE (time
    constant BLINK_LIFT_SHARE * ``tau``) and the slow settle from there (time constant
    ``tau``, see BLINK_RISE_TAU_S), rescaled to reach 0 exactly BLINK_RISE_TAUS tau later."""
    fall = 0.5 * (1 - np.cos(np.pi * np.clip(x / close_s, 0, 1)))
    y = np.clip(x - close_s - hold_s, 0, None)
    lift_tau = BLINK_LIFT_SHARE * tau
    y_knee = lift_tau * np.log(1.0 / BLINK_KNEE)  # s from the rest to the knee
    tail = np.exp(-BLINK_RISE_TAUS)
    settle = BLINK_KNEE * np.clip((np.exp(-(y - y_knee) / tau) - tail) / (1 - tail), 0, 1)
    rise = np.where(y < y_knee, np.exp(-y / lift_tau), settle)
    return np.where(x <= 0, 0.0, np.where(y > 0, rise, fall))


def blink_curve(n: int, fps: float, rng: np.random.Generator, pro: Prosody | None = None) -> np.ndarray:
    """(n,) float32 eyelid closure 0..1 with blinks every BLINK_INTERVAL_S; with the
    prosody ``pro``, blinks near a phrase boundary move onto it (people blink at pauses).
    Each blink draws its own closing, hold and reopening times and depth (some stop
    short of shut), so no two read alike; the lids fall faster than they rise."""
    out = np.zeros(n, np.float32)
    t = np.arange(n) / fps
    starts = []
    start = rng.uniform(*BLINK_FIRST_S)
    while start < n / fps - 0.2:
        starts.append(start)
        start += rng.uniform(*BLINK_INTERVAL_S)
    if pro is not None and starts:
        starts = list(blink_onsets_near_pauses(np.round(np.array(starts) * fps), pro, fps) / fps)
    # The shapes come from a child generator: the parent's stream (head motion, brows,
    # gaze drawn after the blinks) stays what it was for a given seed.
    shape_rng = rng.spawn(1)[0]
    tempo = shape_rng.random()
    seen = [0] * len(BLINK_READ_SHUT)  # frames past each closure in the last blink that reached it
    for start in starts:
        # A blink's tempo (0 quick .. 1 slow) sets its fall, rest and rise; the next
        # one's is BLINK_TEMPO_STEP further (modulo 1, so each stays uniform), so that
        # even the two or three blinks of a short clip last visibly different times. The
        # sub-frame phase (where the frames fall on the blink) can undo a tempo step, so
        # a draw that leaves as many frames past either BLINK_READ_SHUT closure as the
        # last blink that reached it is drawn again (up to BLINK_REDRAWS times; failing
        # that, the draw that differs past half shut, which most faces read).
        depth = shape_rng.uniform(*BLINK_PARTIAL_DEPTH) if shape_rng.random() < BLINK_PARTIAL_P else 1.0
        best = None
        for _ in range(BLINK_REDRAWS):
            step_tempo = (tempo + shape_rng.uniform(*BLINK_TEMPO_STEP)) % 1.0
            close_s, hold_s, tau = (lo + step_tempo * (hi - lo)
                                    for lo, hi in (BLINK_CLOSE_S, BLINK_HOLD_S, BLINK_RISE_TAU_S))
            shape = blink_shape(t - start - shape_rng.uniform(0.0, 1.0 / fps), close_s, hold_s, tau)
            lengths = [np.count_nonzero(depth * shape > c) for c in BLINK_READ_SHUT]
            differs = [k == 0 or k != m for k, m in zip(lengths, seen)]
            if best is None or differs > best[0]:  # lexicographic: half shut first (most faces)
                best = (differs, step_tempo, shape, lengths)
            if all(differs):
                break
        _, tempo, shape, lengths = best
        seen = [k or m for k, m in zip(lengths, seen)]
        out = np.maximum(out, (depth * shape).astype(np.float32))
    return out


def mouth_from_phones(speech: Speech, fps: float, n: int, phones) -> dict[str, np.ndarray]:
    """Mouth controls from timed phones ([(label, start_s, end_s)]), scaled by loudness
    (louder speech opens wider). Long stretches the phones call silence but that are
    plainly voiced (a language or a song the phone model does not know) fall back to
    loudness; bilabial closures always win."""
    phones = extend_stop_closures(phones, speech.samples, speech.sr)
    ctl = coarticulate(phones, fps, n)
    closed = ctl.pop("closed")
    loud = mouth_from_loudness(speech, fps, n)
    level = np.clip(loud / MOUTH_OPEN_MAX, 0, 1)
    gain = 0.7 + 0.45 * smooth(level, 0.05 * fps)
    ctl["mouth_open"] = ctl["mouth_open"] * gain
    t = np.arange(n) / fps
    unlabelled = np.zeros(n, bool)
    for label, a, b in phones:
        if viseme_of(label) is Viseme.SIL and b - a >= FALLBACK_MIN_S:
            unlabelled[(t >= a) & (t < b)] = True
    fallback = unlabelled & (level > 0.25) & ~closed
    ctl["mouth_open"][fallback] = np.maximum(ctl["mouth_open"][fallback], loud[fallback])
    ctl["mouth_open"][loud <= 0] = 0.0  # silence (or a stop's silent closure): lips rest shut
    labio = ctl.pop("labiodental")
    touch_labiodentals(ctl, labio)
    ctl["lips_meet"] = closed | labio
    return ctl


def part_lips(mouth: np.ndarray, floor_iod: float, speaking: np.ndarray, lips_meet: np.ndarray,
              fps: float) -> np.ndarray:
    """(n,) float32 lip opening kept at least ``floor_iod`` while speaking (``speaking``,
    (n,) 0..1), as a surprised face talks with its jaw hanging, except where the lips
    must meet (``lips_meet``, (n,) bool: /p b m/ closures and /f v/ contacts), which it
    leaves exactly as they are and eases towards over CLOSURE_EASE_S."""
    ease = np.clip(seconds_to(lips_meet, fps) / CLOSURE_EASE_S, 0.0, 1.0)
    # Only well inside a phrase: the smooth edges of ``speaking`` reach into the silence
    # around it, where the lips rest shut.
    inside = np.clip(2 * speaking - 1, 0.0, 1.0)
    out = np.maximum(mouth, floor_iod * inside * ease)
    out[lips_meet] = mouth[lips_meet]
    return out.astype(np.float32)


def hold_sung_notes(ctl: dict[str, np.ndarray], pro: Prosody, fps: float, lips_meet: np.ndarray) -> None:
    """Open the mouth into a held vowel over each sustained note of ``pro`` (in place on
    ``ctl``'s 'mouth_open' and 'mouth_wide', (n,) float32; its 'mouth_round' is read): SING_OPEN_IOD
    scaled by loudness and pitch, narrower for rounded vowels, lip spread reduced. Frames
    where the lips must meet (``lips_meet``, (n,) bool) are left alone."""
    held = smooth(pro.held, HELD_EASE_S * fps)
    held[lips_meet] = 0.0
    rnd = ctl["mouth_round"]
    target = SING_OPEN_IOD * (SING_OPEN_QUIET + (1 - SING_OPEN_QUIET) * pro.level) \
        + SING_OPEN_PER_ST * np.clip(pro.pitch_st, -5, 7)
    target = target * (1 - SING_ROUND_CLOSE * rnd) * (pro.level > 0.05)
    ctl["mouth_open"] = np.maximum(ctl["mouth_open"], held * target).astype(np.float32)
    ctl["mouth_wide"] = (ctl["mouth_wide"] * (1 - (1 - SING_SPREAD_KEEP) * held)).astype(np.float32)


def analytic_motion(speech: Speech, fps: float, *, seed: int = 0, phones=None, speed: float = 1.0,
                    still: bool = False, emotion: str = "neutral", emotion_strength: float = 1.0,
                    gaze: str = "natural", singing: str = "auto") -> MotionTrack:
    """MotionTrack covering ``speech`` at ``fps``; same seed -> identical track.

    phones: optional [(ARPAbet label, start_s, end_s)]; with them the mouth articulates
    visemes (coarticulated), without them it follows loudness. speed, still, emotion,
    emotion_strength, gaze, singing: see ``GenerateOptions`` and ``motion.expressive``;
    singing "auto" treats the clip as sung when most of its voice is sustained notes
    (``Prosody.sounds_sung``)."""
    if singing not in SINGING_MODES:
        raise InputError(f"singing must be one of {', '.join(SINGING_MODES)}, got {singing!r}")
    rng = np.random.default_rng(seed)
    n = n_frames(speech.duration_s, fps)
    pro = prosody(speech.samples, speech.sr, fps, n)
    sung = singing == "on" or (singing == "auto" and pro.sounds_sung(fps))
    if phones is not None:
        ctl = mouth_from_phones(speech, fps, n, phones)
        lips_meet = ctl.pop("lips_meet")
    else:
        mouth = mouth_from_loudness(speech, fps, n)
        activity = np.clip(mouth / (0.5 * MOUTH_OPEN_MAX), 0, 1)
        ctl = {"mouth_open": mouth, "mouth_wide": 0.06 * smooth(activity, 0.1 * fps) - 0.03 * (mouth / MOUTH_OPEN_MAX),
               "mouth_round": np.zeros(n, np.float32), "lip_tuck": np.zeros(n, np.float32)}
        lips_meet = np.zeros(n, bool)
    if sung:
        hold_sung_notes(ctl, pro, fps, lips_meet)
    mouth = ctl["mouth_open"]
    blink = blink_curve(n, fps, rng, pro)
    rest = expressive_channels(pro, fps, rng, speed=speed, still=still, emotion=emotion,
                               emotion_strength=emotion_strength, gaze_mode=gaze, mouth_open=mouth, seed=seed,
                               sung=sung)
    jaw = jaw_from_mouth(mouth, fps)
    floor = jaw_floor(emotion, emotion_strength)
    if floor > 0:  # surprise: the jaw hangs open; speech parts the lips as far, /p b m f v/ still meet
        jaw = np.maximum(jaw, floor).astype(np.float32)
        mouth = part_lips(mouth, floor, pro.speaking, lips_meet, fps)
    return MotionTrack(fps=fps, mouth_open=mouth, mouth_wide=np.asarray(ctl["mouth_wide"], np.float32), blink=blink,
                       mouth_round=ctl["mouth_round"], lip_tuck=ctl["lip_tuck"], jaw_open=jaw, **rest)
