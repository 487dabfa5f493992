"""Small numeric helpers shared by several stages: easing ramps, Gaussian smoothing of
frame series, and the one range-easing mechanism (time ranges that fade in and out),
used by ``--track-in`` ranges and by ``edit``'s ranges alike."""
from __future__ import annotations

import numpy as np


def smoothstep(e0, e1, x):
    """Hermite ramp: 0 below e0, 1 above e1, smooth in between (elementwise)."""
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of a frame series, ``sigma`` in frames, reflected ends;
    (n,) -> (n,) float32. Shared by every motion channel."""
    if sigma <= 0 or len(x) < 2:
        return np.asarray(x, np.float32)
    r = int(np.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    xp = np.pad(np.asarray(x, np.float64), r, mode="reflect" if len(x) > r else "edge")
    return np.convolve(xp, k, mode="valid").astype(np.float32)


def range_weight(t: np.ndarray, start_s: float, end_s: float, ease_s: float) -> np.ndarray:
    """Weight of a time range at times ``t`` ((n,) s): 1 inside [start_s, end_s], easing
    (smoothstep) from 0 over ``ease_s`` before it and back to 0 over ``ease_s`` after it;
    ease_s 0: exactly the frames inside. (n,) float64."""
    if ease_s <= 0:
        return ((t >= start_s) & (t <= end_s)).astype(np.float64)
    up = np.clip((t - (start_s - ease_s)) / ease_s, 0, 1)
    down = np.clip(((end_s + ease_s) - t) / ease_s, 0, 1)
    x = np.minimum(up, down)
    return x * x * (3 - 2 * x)
