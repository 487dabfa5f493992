"""Prosody of speech at the video frame rate: pitch (f0), loudness, emphasis, pauses.

Head nods, brow raises and phrase-level motion follow these cues (speakers nod and
raise their brows on pitch accents, and hold still in pauses; Graf et al. 2002,
"Visual prosody: facial movements accompanying speech"). Everything here is plain
numpy DSP; no model.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..audio.features import frame_windows, loudness_db
from ..core.numeric import smooth

F0_MIN_HZ, F0_MAX_HZ = 65.0, 420.0  # speaking range of adult and child voices
F0_HOP_S = 0.01  # s; pitch analysis rate before resampling to frames
F0_WIN_S = 0.04  # s; two periods of the lowest f0
YIN_THRESHOLD = 0.2  # cumulative-mean-normalised difference below which a dip is a period
PAUSE_MIN_S = 0.25  # s; a silence at least this long separates phrases
SILENCE_BELOW_LOUD_DB = 30.0  # dB under the loud-speech level where a frame counts as silent
SILENCE_DBFS = -55.0  # dBFS; always silent
# Sustained notes: voiced runs at least HELD_MIN_S long in which the pitch never jumps more
# than HELD_STEP_ST between 10-ms analysis frames (vibrato and glides between notes stay
# under it; a speaker's syllable changes pitch or stops voicing sooner). On the shared
# clips the sung one spends 64 % of its voiced time in such runs, real speech 0-16 %.
HELD_MIN_S = 0.35
HELD_STEP_ST = 0.6
SUNG_SHARE = 0.4  # share of the voiced time in held notes from which a clip counts as sung
SUNG_MIN_S = 1.0  # s; and at least this much held-note time in all


def f0_yin(y: np.ndarray, sr: int, *, hop_s: float = F0_HOP_S, fmin: float = F0_MIN_HZ,
           fmax: float = F0_MAX_HZ) -> np.ndarray:
    """(m,) float32 fundamental frequency in Hz every ``hop_s`` (nan where unvoiced).

    YIN (de Cheveigné & Kawahara 2002): the difference function d(tau) from an FFT
    autocorrelation, normalised by its cumulative mean; the first dip under
    YIN_THRESHOLD between 1/fmax and 1/fmin is the period, refined by a parabola.
    Frame k is centred on k * hop_s."""
    y = np.asarray(y, np.float32)
    if sr > 16000:  # pitch needs no more than 8 kHz of bandwidth
        step = sr // 16000
        y, sr = y[::step], sr // step
    m = max(1, int(np.ceil(len(y) / sr / hop_s)))
    win = int(round(F0_WIN_S * sr))
    tau_min, tau_max = max(2, int(sr / fmax)), min(win - 1, int(np.ceil(sr / fmin)))
    out = np.full(m, np.nan, np.float32)
    block = 500  # analysis frames per block: bounded memory (~40 MB) for long audio
    nfft = 1 << int(np.ceil(np.log2(2 * win)))
    for a in range(0, m, block):
        b = min(m, a + block)
        # frame_windows centres frame i at (i + first + 0.5) / fps; shift by half a hop.
        w = frame_windows(y, sr, 1.0 / hop_s, b - a, F0_WIN_S, first=a - 0.5).astype(np.float64)
        w -= w.mean(1, keepdims=True)
        energy = np.cumsum(np.concatenate([np.zeros((len(w), 1)), w ** 2], 1), 1)  # (k, win+1)
        spec = np.fft.rfft(w, nfft, axis=1)
        r = np.fft.irfft(spec * np.conj(spec), nfft, axis=1)[:, :tau_max + 1]
        taus = np.arange(tau_max + 1)
        # d(tau) = sum_{j<win-tau} (x_j - x_{j+tau})^2 = E[0:win-tau] + E[tau:win] - 2 r(tau)
        e0 = energy[:, win - taus]
        e1 = energy[:, win:win + 1] - energy[:, taus]
        d = np.maximum(e0 + e1 - 2 * r, 0.0)
        cm = np.cumsum(d[:, 1:], 1) / np.arange(1, tau_max + 1)
        dn = np.ones_like(d)
        dn[:, 1:] = d[:, 1:] / np.maximum(cm, 1e-12)
        seg = dn[:, tau_min:tau_max]
        below = seg < YIN_THRESHOLD
        has = below.any(1)
        first = np.argmax(below, 1)
        # walk down to the local minimum after the first crossing
        idx = first.copy()
        for _ in range(tau_max - tau_min):
            nxt = np.minimum(idx + 1, seg.shape[1] - 1)
            go = has & (seg[np.arange(len(seg)), nxt] < seg[np.arange(len(seg)), idx]) & (nxt != idx)
            if not go.any():
                break
            idx = np.where(go, nxt, idx)
        loud = np.sqrt(energy[:, -1] / win) > 1e-3
        ok = has & loud
        rows = np.nonzero(ok)[0]
        i = idx[rows]
        l, c, rr = seg[rows, np.maximum(i - 1, 0)], seg[rows, i], seg[rows, np.minimum(i + 1, seg.shape[1] - 1)]
        den = l - 2 * c + rr
        shift = np.where(np.abs(den) > 1e-9, 0.5 * (l - rr) / np.where(np.abs(den) > 1e-9, den, 1.0), 0.0)
        tau = tau_min + i + np.clip(shift, -1, 1)
        out[a + rows] = sr / tau
    return out


@dataclass
class Prosody:
    """Per-video-frame prosodic cues, all (n,) float32.

    pitch_st:  f0 in semitones relative to the speaker's median, 0 where unvoiced
               (interpolated across short unvoiced gaps, smoothed).
    voiced:    1 where f0 was found, else 0.
    level:     loudness 0 (silence) .. 1 (the clip's loud speech), smoothed.
    speaking:  1 inside phrases, 0 in pauses of at least PAUSE_MIN_S (smooth edges).
    emphasis:  pitch-accent / stress strength 0..1 at the frames where a stressed
               syllable peaks (sparse impulses), else 0.
    phrase_start: 1 at the first frame of each phrase, else 0.
    held:      1 inside sustained notes (see HELD_MIN_S), else 0.
    held_share: share of the voiced time spent in sustained notes (scalar, 0..1).
    """

    pitch_st: np.ndarray
    voiced: np.ndarray
    level: np.ndarray
    speaking: np.ndarray
    emphasis: np.ndarray
    phrase_start: np.ndarray
    held: np.ndarray
    held_share: float = 0.0

    def sounds_sung(self, fps: float) -> bool:
        """True when most of the voiced time is sustained notes (singing, not speech)."""
        return self.held_share >= SUNG_SHARE and float(self.held.sum()) / fps >= SUNG_MIN_S


def held_notes(f0: np.ndarray, hop_s: float = F0_HOP_S) -> np.ndarray:
    """(m,) bool: the analysis frames of ``f0`` ((m,) Hz, nan where unvoiced, every
    ``hop_s``) inside sustained notes: voiced runs of at least HELD_MIN_S whose pitch
    moves less than HELD_STEP_ST semitones from one frame to the next."""
    ok = np.isfinite(f0)
    st = 12 * np.log2(np.where(ok, f0, 1.0))
    steady = ok.copy()
    steady[1:] &= np.abs(np.diff(st)) < HELD_STEP_ST
    out = np.zeros(len(f0), bool)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], steady.astype(np.int8), [0]])))
    for a, b in zip(edges[::2], edges[1::2]):
        if (b - a) * hop_s >= HELD_MIN_S:
            out[a:b] = True
    return out


def prosody(y: np.ndarray, sr: int, fps: float, n: int) -> Prosody:
    """Prosodic cues of speech ``y`` ((m,) float32 at ``sr``) for ``n`` frames at ``fps``."""
    db = loudness_db(y, sr, fps, n)
    voiced_db = db > SILENCE_DBFS
    if voiced_db.any():
        loud = float(np.percentile(db[voiced_db], 95))
    else:
        loud = SILENCE_DBFS
    floor = max(loud - SILENCE_BELOW_LOUD_DB, SILENCE_DBFS, float(np.percentile(db, 10)) + 6.0)
    floor = min(floor, loud - 6.0)
    level = np.clip((db - floor) / max(loud - floor, 6.0), 0, 1).astype(np.float32)
    active = level > 0.05
    # Pauses: runs of silence of at least PAUSE_MIN_S (shorter ones are stop closures).
    speaking = active.copy()
    min_run = int(round(PAUSE_MIN_S * fps))
    i = 0
    while i < n:
        if not active[i]:
            j = i
            while j < n and not active[j]:
                j += 1
            if j - i < min_run and i > 0 and j < n:
                speaking[i:j] = True
            i = j
        else:
            i += 1
    phrase_start = np.zeros(n, np.float32)
    phrase_start[1:][speaking[1:] & ~speaking[:-1]] = 1.0
    if n and speaking[0]:
        phrase_start[0] = 1.0

    # Pitch at the frame times.
    f0 = f0_yin(y, sr)
    t_f0 = np.arange(len(f0)) * F0_HOP_S
    t = (np.arange(n) + 0.5) / fps
    st = 12 * np.log2(np.where(np.isfinite(f0), f0, 1.0) / 100.0)
    ok = np.isfinite(f0)
    voiced = np.zeros(n, np.float32)
    pitch = np.zeros(n, np.float32)
    held_f0 = held_notes(f0)
    held = (np.interp(t, t_f0, held_f0.astype(np.float32)) > 0.5).astype(np.float32) if len(f0) else \
        np.zeros(n, np.float32)
    held_share = float(held_f0.sum() / max(ok.sum(), 1))
    if ok.sum() >= 3:
        med = float(np.median(st[ok]))
        rel = np.clip(st - med, -12, 12)
        # Octave errors: a lone jump of > 7 semitones is dropped.
        okk = ok & (np.abs(rel - smooth(np.where(ok, rel, 0), 3)) < 7)
        if okk.sum() >= 3:
            pitch = np.interp(t, t_f0[okk], rel[okk]).astype(np.float32)
            v = np.interp(t, t_f0, okk.astype(np.float32))
            voiced = (v > 0.5).astype(np.float32)
            pitch = smooth(pitch * (smooth(voiced, 0.1 * fps) > 0.2), 0.06 * fps)
    speaking_f = smooth(speaking.astype(np.float32), 0.08 * fps)

    # Emphasis: syllable-rate loudness peaks that stand out from their phrase, helped by
    # high pitch (a pitch accent). One impulse per peak, at least 0.3 s apart.
    syl = smooth(level, 0.04 * fps)
    ctx = smooth(level, 0.6 * fps)
    score = np.clip(syl - ctx, 0, None) + 0.04 * np.clip(pitch, 0, 6) * (syl > 0.3)
    emphasis = np.zeros(n, np.float32)
    gap = max(1, int(0.3 * fps))
    if n >= 3:
        peaks = np.nonzero((score[1:-1] > score[:-2]) & (score[1:-1] >= score[2:]) & (score[1:-1] > 0.12))[0] + 1
        chosen: list[int] = []
        for p in sorted(peaks, key=lambda p: -score[p]):
            if all(abs(p - q) >= gap for q in chosen):
                chosen.append(int(p))
        for p in chosen:
            emphasis[p] = min(1.0, float(score[p]) / 0.35)
    return Prosody(pitch_st=pitch, voiced=voiced, level=smooth(level, 0.03 * fps), speaking=speaking_f,
                   emphasis=emphasis, phrase_start=phrase_start, held=held, held_share=held_share)
