"""Frame-rate speech features: loudness and a voicing cue, one value per video frame."""
from __future__ import annotations

import numpy as np


def n_frames(duration_s: float, fps: float) -> int:
    """Number of video frames covering ``duration_s`` (at least 1)."""
    return max(1, int(round(duration_s * fps)))


def frame_windows(y: np.ndarray, sr: int, fps: float, n: int, win_s: float, *, first: float = 0.0) -> np.ndarray:
    """(n, win) float32: a window of ``win_s`` centred on the mid time of frames
    first..first+n-1 (frame i spans [i/fps, (i+1)/fps)); zero-padded at the ends."""
    win = max(2, int(round(win_s * sr)))
    centers = np.round((np.arange(n) + first + 0.5) / fps * sr).astype(np.int64)
    starts = centers - win // 2
    pad = np.pad(y.astype(np.float32), (win, win + int(sr / fps) + 1))
    idx = starts[:, None] + win + np.arange(win)[None, :]
    return pad[idx]


CHUNK_FRAMES = 1500  # frames per block, so feature memory stays flat for hours of audio


def _blockwise(fn, y: np.ndarray, sr: int, fps: float, n: int, win_s: float) -> np.ndarray:
    """Apply ``fn((k, win) windows) -> (k,)`` over all n frames in blocks."""
    out = np.empty(n, np.float32)
    for a in range(0, n, CHUNK_FRAMES):
        b = min(n, a + CHUNK_FRAMES)
        # Windows of frames a..b only need the samples around them.
        s0 = max(0, int(a / fps * sr) - sr)
        s1 = int(b / fps * sr) + sr
        seg = y[s0:s1]
        shift = s0 / sr * fps  # frames; windows are placed relative to the segment start
        w = frame_windows(seg, sr, fps, b - a, win_s, first=a - shift)
        out[a:b] = fn(w)
    return out


def loudness_db(y: np.ndarray, sr: int, fps: float, n: int, *, win_s: float = 0.05) -> np.ndarray:
    """(n,) float32 RMS level per frame in dBFS (floor -100)."""
    def rms_db(w):
        rms = np.sqrt(np.mean(w.astype(np.float64) ** 2, axis=1))
        return 20 * np.log10(np.maximum(rms, 1e-5))
    return _blockwise(rms_db, y, sr, fps, n, win_s)


def high_band_ratio(y: np.ndarray, sr: int, fps: float, n: int, *, win_s: float = 0.04,
                    split_hz: float = 3000.0) -> np.ndarray:
    """(n,) float32 in [0, 1]: share of energy above ``split_hz``. High for fricatives
    (/s/, /f/, /sh/), which are loud but made with a nearly closed mouth."""
    def ratio(w):
        spec = np.abs(np.fft.rfft(w * np.hanning(w.shape[1])[None, :], axis=1)) ** 2
        freqs = np.fft.rfftfreq(w.shape[1], 1.0 / sr)
        return spec[:, freqs >= split_hz].sum(1) / np.maximum(spec.sum(1), 1e-12)
    return _blockwise(ratio, y, sr, fps, n, win_s)
