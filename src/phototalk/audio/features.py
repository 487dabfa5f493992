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
    idx = starts[:, None] + np.arange(win)[None, :]
    # Gather only the windows' samples: padding (copying) all of y here, once per block
    # of a long recording, made the analysis of 10 min of speech peak 150 MB higher.
    inside = (idx >= 0) & (idx < len(y))
    if not len(y):
        return np.zeros(idx.shape, np.float32)
    return np.where(inside, y[np.clip(idx, 0, len(y) - 1)], 0.0).astype(np.float32, copy=False)


POWER_BLOCK = 1 << 20  # samples per block of frame_power: its memory stays flat for hours of audio


def frame_power(y: np.ndarray, hop: int) -> np.ndarray:
    """(len(y) // hop,) float64 mean square of each run of ``hop`` samples of ``y`` (n,)
    (a trailing partial run is dropped). Blockwise: a float64 copy of a whole long
    recording would be 8 bytes a sample (77 MB for 10 min at 16 kHz), several times over."""
    m = len(y) // hop
    out = np.empty(m, np.float64)
    step = max(1, POWER_BLOCK // hop)
    for a in range(0, m, step):
        b = min(m, a + step)
        x = np.asarray(y[a * hop:b * hop], np.float64).reshape(b - a, hop)
        out[a:b] = np.einsum("ij,ij->i", x, x) / hop
    return out


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
