"""Non-verbal motion from prosody plus a seeded smooth random process: head pose, nods,
brows, eye squint, gaze, breathing, and emotion presets.

Head motion is a smooth Gaussian process run on a *warped clock* that ticks at full rate
while speaking and slowly in pauses, so the head lives during phrases and holds still
in pauses without snapping back to centre (Graf et al. 2002 observe head motion rising
with speech and settling at phrase ends). Nods land on stressed syllables (loudness and
pitch-accent peaks); brows rise with pitch accents. The random parts dominate the
variance, so two seeds give different (correlation < 0.5) but equally natural motion
for the same speech, as VLOGGER's diversity asks.

``speed`` scales tempo (the clock and saccade rate) and intensity (amplitudes), like
EMO's speed buckets; ``emotion`` adds a constant expression (strength 0..1) on top of
which speech and prosody keep moving the face.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.numeric import smooth
from .prosody import Prosody

HEAD_STD_RAD = np.radians([4.2, 4.3, 1.5])  # yaw, pitch, roll of the slow random sway at speed 1 while speaking
HEAD_SIGMA_S = (0.6, 0.5, 0.6)  # s; time scales of the sway per axis (on the speaking clock)
JIGGLE = 0.12  # share of a faster (sigma 0.35 s) component, only while speaking
PAUSE_CLOCK = 0.4  # the warped clock's rate in pauses (1 while speaking)
# --speed S runs the sway's clock S ** SWAY_TEMPO_EXP times faster and shortens nods by
# S ** NOD_TEMPO_EXP (amplitudes grow by S ** 0.8). The head's frame-to-frame acceleration
# grows with amplitude x tempo^2: at full tempo (exponents 1 and 0.5) --speed 1.9 had 2.7x
# that of speed 1 (now 1.9x, with the same spread of yaw), and measure.py's landmark
# jitter passed 0.0085 on the smiling portrait; a livelier speaker swings wider more
# than faster.
SWAY_TEMPO_EXP, NOD_TEMPO_EXP = 0.25, 0.0
# Above speed 1 the slow sway's pitch grows only by S ** SWAY_PITCH_GAIN_EXP: lively real
# speakers turn much more than they tilt the chin (measure.py's pose std, yaw vs pitch:
# hdtf_woman 10.2 vs 6.5 deg, man_glasses 9.0 vs 2.5, selena 12.2 vs 4.3; calm ones
# 1.4 vs 1.6, 2.2 vs 3.8). At S ** 0.8 --speed 1.9 swung the chin over -13..+15 deg (std
# 7.2), beyond the pitch any of them showed, and a face pitched 10 deg reads to dlib as
# less the same person than one turned 10 deg (0.23 vs 0.17 on photo_woman_frontal);
# a chin-down webcam portrait lost its face detection past ~12 deg. Nods keep S ** 0.8.
SWAY_PITCH_GAIN_EXP = 0.4
# deg; past the knee, the head's pitch (sway + nods + pitch coupling) bends smoothly
# towards the limit: a nod landing on a chin-down swing reached +16 deg at --speed 1.9,
# while the real clips' 95th percentile of |pitch| stays within 3.6-11.9 deg.
PITCH_KNEE_DEG, PITCH_LIMIT_DEG = 8.0, 13.0
NOD_PEAK_S = 0.22  # s from a stressed syllable to the deepest point of its nod
NOD_DEG = (1.4, 3.0)  # nod amplitude range on a full-strength stress
NOD_PROB = 0.75  # not every stressed syllable gets a nod
PITCH_COUPLING_DEG = 0.35  # chin rises this much per semitone of pitch accent (seed-scaled 0.5..1)
BROW_ACCENT = 0.45  # brow raise on a full-strength pitch accent (brow_up units)
# The accents' brow raise grows with --speed by S ** BROW_GAIN_EXP (above 1) and bends
# past SPEECH_BROW_KNEE towards SPEECH_BROW_LIMIT (brow_up units; 1 is the surprised
# preset's full raise): accents piling up at --speed 1.9 raised the brows to 1.05, past
# a full surprise, and over half of one on 22 % of the frames. Raised brows are what dlib
# weighs most after a blink: brow_up 1.0 alone reads 0.33-0.42 from the photo (0.5:
# 0.20-0.27; neutral 0.03-0.12) on photo_woman_slight_turn / _frontal / photo_man_webcam,
# and brow_up was the channel most correlated (+0.61) with the per-frame distance.
BROW_GAIN_EXP = 0.4
SPEECH_BROW_KNEE, SPEECH_BROW_LIMIT = 0.35, 0.6
GAZE_AVERT_DEG = (3.5, 8.0)  # yaw of a look away; real speakers avert gaze when starting to speak
GAZE_VOR = 0.8  # share of head rotation the eyes cancel to keep a fixation (vestibulo-ocular reflex)
BREATH_HZ = 0.22  # resting breathing rate (13 per minute)
EMOTIONS = ("neutral", "happy", "sad", "angry", "surprised")
# Singing: the head sways with the musical phrase, not the syllables. The sway's time
# scales stretch by SING_SWAY_SLOW (swings of ~1.5 s instead of ~0.6 s), there are no
# nods on stressed syllables and no fast jiggle, and the chin and brows rise with high
# notes, held over a note (SING_PITCH_SMOOTH_S) rather than following each accent.
SING_SWAY_SLOW = 2.5
SING_PITCH_COUPLING_DEG = 0.6  # chin rises this much per semitone above the singer's median
SING_PITCH_SMOOTH_S = 0.4  # s
SING_BROW_PER_ST = 0.05  # brow_up per semitone above the median (clipped at 8 semitones)


@dataclass(frozen=True)
class EmotionPreset:
    """Expression at strength 1, in MotionTrack channel units, plus head changes."""

    smile: float = 0.0
    cheek: float = 0.0
    brow_up: float = 0.0
    brow_inner: float = 0.0
    brow_squeeze: float = 0.0
    eye_squint: float = 0.0
    jaw: float = 0.0  # iod the jaw hangs open at least (surprise); the lips still meet for /p b m f v/
    head_pitch_deg: float = 0.0  # posture: + = chin down
    energy: float = 1.0  # multiplies the head-motion amplitude


PRESETS = {
    "neutral": EmotionPreset(),
    "happy": EmotionPreset(smile=0.9, cheek=1.0, eye_squint=0.6, brow_up=0.1, energy=1.1),
    "sad": EmotionPreset(smile=-0.75, brow_inner=0.9, brow_up=-0.1, eye_squint=0.2, head_pitch_deg=3.0, energy=0.7),
    "angry": EmotionPreset(smile=-0.3, brow_squeeze=0.9, brow_up=-0.3, eye_squint=0.45, head_pitch_deg=1.5,
                           energy=1.05),
    "surprised": EmotionPreset(brow_up=1.0, eye_squint=-0.85, jaw=0.07, head_pitch_deg=-1.5, energy=1.0),
}


def _gp_on_clock(clock: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance smooth noise (Gaussian-smoothed white noise, ``sigma`` in clock
    seconds) sampled at the clock times ``clock`` ((n,) seconds, non-decreasing)."""
    step = 0.04  # s of clock per grid point
    m = int(np.ceil((clock[-1] if len(clock) else 0) / step)) + 2
    r = int(np.ceil(3 * sigma / step))
    white = rng.standard_normal(m + 2 * r)
    k = np.exp(-0.5 * (np.arange(-r, r + 1) * step / sigma) ** 2)
    k /= np.sqrt((k ** 2).sum())  # unit variance of the smoothed process
    g = np.convolve(white, k, mode="valid")  # (m,)
    out = np.interp(clock / step, np.arange(m), g)
    if len(out) > 1:
        # A clip a few time scales long samples too little of the process to show its
        # variance; normalise over the clip so every clip gets the intended amplitude.
        out = (out - out.mean()) / max(float(out.std()), 1e-6)
    return out.astype(np.float32)


SWAY_STREAM = 0x53574159  # keys the slow sway's own random stream ("SWAY"), apart from the other draws
SWAY_CANDIDATES = 8  # draws an even seed chooses its sway from


def _slow_sway(clock: np.ndarray, seed: int, amp: np.ndarray, slow: float = 1.0) -> np.ndarray:
    """(3, n) unit-variance slow sway (yaw, pitch, roll) for ``seed``; ``amp`` ((n,)) is
    the envelope it will be scaled by.

    Two independent draws of a sway this smooth share only a handful of swings in a
    few seconds, so they correlate above 0.5 about one time in six, and someone
    stepping through seeds 1, 2, 3 for another take would often get the same motion.
    So odd seeds draw freely, and an even seed takes, per axis, whichever of
    SWAY_CANDIDATES free draws is least correlated with both odd neighbours' sway:
    every draw is an unaltered sample of the process, and consecutive seeds differ.
    ``slow`` stretches the time scales (singing)."""
    def draw(s: int, j: int = 0) -> np.ndarray:
        g = np.random.default_rng([s & 0xFFFFFFFFFFFFFFFF, SWAY_STREAM, j])
        return np.stack([_gp_on_clock(clock, slow * HEAD_SIGMA_S[k], g) for k in range(3)])
    if seed % 2 or len(clock) < 3:
        return draw(seed)

    def centred(x: np.ndarray) -> np.ndarray:
        x = amp * x
        x = x - x.mean(-1, keepdims=True)
        return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-9)
    odd = [centred(draw(seed - 1)), centred(draw(seed + 1))]
    cands = [draw(seed, j) for j in range(SWAY_CANDIDATES)]
    out = np.empty_like(cands[0])
    for k in range(3):
        worst = [max(abs(float(centred(c[k]) @ q[k])) for q in odd) for c in cands]
        out[k] = cands[int(np.argmin(worst))][k]
    return out


def _nod_kernel(fps: float, speed: float) -> np.ndarray:
    """Chin-down-and-back impulse response, peak 1 at NOD_PEAK_S / speed ** NOD_TEMPO_EXP
    seconds; a sharper nod reads as a jerk and makes re-detected landmarks jitter."""
    tau = NOD_PEAK_S / speed ** NOD_TEMPO_EXP
    t = np.arange(int(np.ceil(5 * tau * fps)) + 1) / fps
    return ((t / tau) * np.exp(1 - t / tau)).astype(np.float32)


def head_pose(pro: Prosody, fps: float, rng: np.random.Generator, *, speed: float = 1.0,
              energy: float = 1.0, seed: int = 0, sung: bool = False) -> np.ndarray:
    """(3, n) float32 yaw, pitch, roll in radians; the slow sway comes from ``seed``
    (see ``_slow_sway``), every other draw from ``rng``. ``sung``: the head follows the
    musical phrase (slow sways, no nods; see SING_SWAY_SLOW)."""
    n = len(pro.level)
    out = np.zeros((3, n), np.float32)
    if n == 0:
        return out
    speaking = pro.speaking
    rate = (PAUSE_CLOCK + (1 - PAUSE_CLOCK) * speaking) * speed ** SWAY_TEMPO_EXP
    clock = np.concatenate([[0.0], np.cumsum(rate[:-1]) / fps])
    gain = speed ** 0.8 * energy
    amp = gain * (0.65 + 0.35 * smooth(speaking, 0.5 * fps))
    slow = _slow_sway(clock, seed, amp, SING_SWAY_SLOW if sung else 1.0)
    jiggle = 0.0 if sung else JIGGLE
    # (3,) per-axis share of ``gain`` the sway gets (see SWAY_PITCH_GAIN_EXP)
    axis_gain = np.array([1.0, max(speed, 1.0) ** (SWAY_PITCH_GAIN_EXP - 0.8), 1.0])
    for k in range(3):
        fast = _gp_on_clock(clock, 0.35, rng)
        out[k] = HEAD_STD_RAD[k] * axis_gain[k] * amp * (slow[k] + jiggle * fast * speaking)
    # Nods on stressed syllables, with a small turn or tilt of random side (speech only:
    # a singer's head does not beat the syllables).
    kern = _nod_kernel(fps, speed)
    imp = np.zeros((3, n), np.float32)
    for p in np.nonzero(pro.emphasis)[0]:
        if rng.random() > NOD_PROB or sung:
            continue
        a = np.radians(rng.uniform(*NOD_DEG)) * pro.emphasis[p] * gain
        imp[1, p] += a
        imp[0, p] += a * rng.uniform(-0.4, 0.4)
        imp[2, p] += a * rng.uniform(-0.3, 0.3)
    for k in range(3):
        out[k] += np.convolve(imp[k], kern)[:n]
    # High pitch lifts the chin a little (pitch accents, questions; high notes).
    deg, sigma_s = (SING_PITCH_COUPLING_DEG, SING_PITCH_SMOOTH_S) if sung else (PITCH_COUPLING_DEG, 0.15)
    coupling = np.radians(deg) * rng.uniform(0.5, 1.0) * gain
    out[1] -= coupling * smooth(np.clip(pro.pitch_st, -4, 6), sigma_s * fps)
    out[1] = soft_limit(out[1], np.radians(PITCH_KNEE_DEG), np.radians(PITCH_LIMIT_DEG))
    return out


def soft_limit(x: np.ndarray, knee: float, limit: float) -> np.ndarray:
    """``x`` unchanged within +-``knee``, beyond it bent (continuous slope) towards
    +-``limit`` without reaching it; same shape and dtype as ``x``."""
    a = np.abs(x)
    bent = knee + (limit - knee) * np.tanh((a - knee) / (limit - knee))
    return np.where(a > knee, np.sign(x) * bent, x).astype(x.dtype)


def blink_onsets_near_pauses(blink_starts: np.ndarray, pro: Prosody, fps: float) -> np.ndarray:
    """Move each blink start (frames) to a phrase boundary within 0.8 s, since people blink
    more at pauses and the start of phrases; the rate stays the same."""
    bounds = np.nonzero(np.abs(np.diff(pro.speaking > 0.5).astype(np.int8)))[0] + 1
    if not len(bounds):
        return blink_starts
    out = blink_starts.copy()
    for i, s in enumerate(blink_starts):
        j = np.argmin(np.abs(bounds - s))
        if abs(bounds[j] - s) <= 0.8 * fps:
            out[i] = bounds[j]
    out = np.unique(out)
    keep = [out[0]] if len(out) else []
    for s in out[1:]:
        if s - keep[-1] >= 1.2 * fps:  # refractory time
            keep.append(s)
    return np.array(keep, dtype=float)


def brows_and_squint(pro: Prosody, fps: float, rng: np.random.Generator, *, speed: float = 1.0,
                     sung: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(brow_up, eye_squint), each (n,) float32: brows rise on pitch accents and a bit
    with high pitch; eyes narrow slightly on stress. ``sung``: brows follow the melody
    (SING_BROW_PER_ST), held over each note, instead of the accents."""
    if sung:
        n = len(pro.level)
        brow = SING_BROW_PER_ST * speed ** 0.8 * smooth(np.clip(pro.pitch_st, 0, 8), SING_PITCH_SMOOTH_S * fps)
        return brow.astype(np.float32), np.zeros(n, np.float32)
    n = len(pro.level)
    gain = speed ** 0.8
    brow_gain = min(speed, 1.0) ** 0.8 * max(speed, 1.0) ** BROW_GAIN_EXP
    kern = _nod_kernel(fps, speed * 0.6)  # slower rise and fall than a nod
    acc = np.zeros(n, np.float32)
    sq = np.zeros(n, np.float32)
    for p in np.nonzero(pro.emphasis)[0]:
        if pro.pitch_st[p] > 0.5 and rng.random() < 0.8:
            acc[p] += pro.emphasis[p] * rng.uniform(0.6, 1.0)
        elif rng.random() < 0.3:
            sq[p] += pro.emphasis[p] * rng.uniform(0.5, 1.0)
    brow = BROW_ACCENT * brow_gain * np.convolve(acc, kern)[:n]
    brow += 0.03 * brow_gain * smooth(np.clip(pro.pitch_st, 0, 6), 0.3 * fps)
    brow = soft_limit(brow, SPEECH_BROW_KNEE, SPEECH_BROW_LIMIT)
    squint = 0.15 * gain * np.convolve(sq, kern)[:n]
    return brow.astype(np.float32), squint.astype(np.float32)


def gaze(pro: Prosody, head: np.ndarray, fps: float, rng: np.random.Generator, *, mode: str = "natural",
         speed: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(gaze_yaw, gaze_pitch) eye-in-head rotation in radians, each (n,) float32.

    natural: fixations (mostly at the camera, sometimes averted, more often just after a
    phrase starts) joined by fast saccades; the eyes cancel GAZE_VOR of the head's turn.
    camera: the eyes cancel the head's rotation fully, so they hold eye contact."""
    n = head.shape[1]
    if mode == "camera":
        return (-head[0]).astype(np.float32), (-head[1]).astype(np.float32)
    target = np.zeros((2, n), np.float32)
    starts = set(np.nonzero(pro.phrase_start)[0].tolist())
    i = 0
    while i < n:
        avert = rng.random() < (0.6 if any(s <= i < s + fps for s in starts) else 0.25)
        if avert:
            ty = np.radians(rng.uniform(*GAZE_AVERT_DEG)) * rng.choice([-1, 1])
            tp = np.radians(rng.uniform(-3.0, 5.0))
            dur = rng.uniform(0.4, 1.2)
        else:
            ty, tp = np.radians(rng.normal(0, 0.8)), np.radians(rng.normal(0, 0.6))
            dur = rng.uniform(1.0, 3.2)
        j = min(n, i + max(2, int(dur * fps / speed)))
        target[:, i:j] = np.array([ty, tp], np.float32)[:, None]
        i = j
    # Saccades: a 3-frame (~40-120 ms) smoothstep between fixations.
    k = np.array([0.15, 0.35, 0.35, 0.15], np.float32)
    sm = np.stack([np.convolve(np.pad(t, (2, 1), mode="edge"), k, mode="valid") for t in target])
    eye = sm - GAZE_VOR * head[:2]
    return eye[0].astype(np.float32), eye[1].astype(np.float32)


def breathing(n: int, fps: float, speaking: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n,) float32 chest rise -1..1: a slow oscillation, shallower while speaking."""
    rate = BREATH_HZ * (1 - 0.2 * speaking)
    phase = rng.uniform(0, 2 * np.pi) + 2 * np.pi * np.concatenate([[0.0], np.cumsum(rate[:-1]) / fps])
    return (np.sin(phase) * (1 - 0.4 * speaking)).astype(np.float32)


def expressive_channels(pro: Prosody, fps: float, rng: np.random.Generator, *, speed: float = 1.0,
                        still: bool = False, emotion: str = "neutral", emotion_strength: float = 1.0,
                        gaze_mode: str = "natural", mouth_open: np.ndarray | None = None,
                        seed: int = 0, sung: bool = False) -> dict[str, np.ndarray]:
    """All non-mouth channels of a MotionTrack (head pose, brows, squint, smile, cheek,
    gaze, breath) for the prosody ``pro``; every draw from ``rng``, in a fixed order, except
    the head's slow sway, which ``seed`` draws. ``sung``: head and brows follow the music
    (see ``head_pose``)."""
    n = len(pro.level)
    preset = PRESETS[emotion]
    s = float(np.clip(emotion_strength, 0, 1)) if emotion != "neutral" else 0.0
    energy = 1 + s * (preset.energy - 1)
    yaw, pitch, roll = head_pose(pro, fps, rng, speed=speed, energy=energy, seed=seed, sung=sung)
    pitch = pitch + np.radians(s * preset.head_pitch_deg)
    brow, squint = brows_and_squint(pro, fps, rng, speed=speed, sung=sung)
    head = np.stack([yaw, pitch, roll])
    if still:
        head[:] = 0.0
    gy, gp = gaze(pro, head, fps, rng, mode=gaze_mode, speed=speed)
    breath = breathing(n, fps, pro.speaking, rng)
    # Speech pulls the smile's corners a little towards the viseme shapes.
    talk = np.zeros(n, np.float32) if mouth_open is None else np.clip(np.asarray(mouth_open) / 0.26, 0, 1)
    out = {
        "head_yaw": head[0], "head_pitch": head[1], "head_roll": head[2],
        "brow_up": brow + s * preset.brow_up,
        "brow_inner": np.full(n, s * preset.brow_inner, np.float32),
        "brow_squeeze": np.full(n, s * preset.brow_squeeze, np.float32),
        "eye_squint": squint + s * preset.eye_squint,
        "smile": s * preset.smile * (1 - 0.25 * talk),
        "cheek": np.full(n, s * preset.cheek, np.float32),
        "gaze_yaw": gy, "gaze_pitch": gp, "breath": breath,
    }
    return {k: np.asarray(v, np.float32) for k, v in out.items()}


def jaw_floor(emotion: str, emotion_strength: float) -> float:
    """iod the jaw hangs open at least under this emotion (0 for most); while speaking
    the lips part as far, except where they must meet (see ``analytic.part_lips``)."""
    return PRESETS[emotion].jaw * float(np.clip(emotion_strength, 0, 1)) if emotion != "neutral" else 0.0
