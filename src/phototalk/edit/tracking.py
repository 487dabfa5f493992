"""Per-frame face landmarks of a video: the face mesh in video (tracking) mode
(face.mesh.FaceTracker, MediaPipe's models run with LiteRT), then zero-phase temporal
smoothing.

Video mode runs the detector only when tracking is lost, so it costs ~6 ms a frame at
512 px on one core. Raw landmarks jitter by ~0.5 px from frame to frame; edits built on
them would make the warped skin shimmer, so the face's *shape* is smoothed with a short
Gaussian over time within each run of frames that have a face. Its *placement* (a 2-D
affine fit of all surface points per frame) is not: a fast head move, or a video whose
frames repeat and then jump (a frame-rate conversion), moves the face 20-70 px in one
frame, and a smoothed position would put the lids and lips several pixels beside the
real ones exactly there. The affine fit averages 468 points, so it hardly jitters.
Frames without a face stay NaN and pass through unedited.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from ..core import job
from ..face import landmarks as L
from ..face.mesh import FaceTracker

log = logging.getLogger(__name__)

SMOOTH_SIGMA_S = 0.03  # s; Gaussian smoothing of landmark tracks (~0.75 frame at 25 fps)
MIN_IOD_PX = 12.0  # faces smaller than this (outer eye corners) are ignored
DETECT_CONFIDENCE = 0.5  # face detector score needed to (re)acquire a face
TRACK_CONFIDENCE = 0.5  # face-presence score needed to keep following it


@dataclass
class FaceTrack:
    """landmarks: (n, 478, 3) float32 pixels in upright frame coordinates (x right,
    y down, z MediaPipe's relative depth at the scale of x), smoothed; NaN where no face.
    raw: the same before smoothing. found: (n,) bool."""

    landmarks: np.ndarray
    raw: np.ndarray
    found: np.ndarray

    @property
    def n_frames(self) -> int:
        return len(self.found)

    def iod(self) -> np.ndarray:
        """(n,) inter-ocular distance (outer eye corners) in pixels, NaN without a face."""
        lm = self.landmarks
        return np.linalg.norm(lm[:, L.EYE_OUTER_L, :2] - lm[:, L.EYE_OUTER_R, :2], axis=1)


def smooth_runs(x: np.ndarray, found: np.ndarray, sigma_frames: float) -> np.ndarray:
    """Gaussian-smooth ``x`` ((n, ...) float) along axis 0 separately within each run of
    consecutive ``found`` frames (ends extended), so no face is blended with a gap."""
    from scipy.ndimage import gaussian_filter1d

    out = x.copy()
    idx = np.flatnonzero(found)
    if sigma_frames <= 0.2 or not len(idx):
        return out
    for seg in np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1):
        a, b = seg[0], seg[-1] + 1
        if b - a >= 2:
            out[a:b] = gaussian_filter1d(x[a:b], sigma_frames, axis=0, mode="nearest", truncate=3.0)
    return out


def smooth_shape(raw: np.ndarray, found: np.ndarray, sigma_frames: float) -> np.ndarray:
    """``raw`` ((n, 478, 3) float landmarks) with the shape smoothed over time and the
    placement kept: each found frame's xy is split into a least-squares affine map of a
    reference shape (all frames share it) plus a residual in reference coordinates; only
    the residual (and z) is smoothed (``smooth_runs``), and each frame is rebuilt with its
    own affine map. sigma_frames <= 0.2 returns a copy."""
    out = raw.copy()
    idx = np.flatnonzero(found)
    if sigma_frames <= 0.2 or not len(idx):
        return out
    xy = raw[idx, :, :2].astype(np.float64)  # (m, 478, 2)
    ref = xy[:, :L.N_SURFACE].mean(0)  # (468, 2)
    X = np.concatenate([ref, np.ones((L.N_SURFACE, 1))], 1)  # (468, 3)
    A = np.einsum("kp,mpc->mkc", np.linalg.pinv(X), xy[:, :L.N_SURFACE])  # (m, 3, 2): [x y 1] @ A
    M, t = A[:, :2], A[:, 2]
    local = np.einsum("mpc,mcd->mpd", xy - t[:, None], np.linalg.inv(M))  # (m, 478, 2) reference coords
    full = np.full(raw.shape, np.nan)
    full[idx, :, :2], full[idx, :, 2] = local, raw[idx, :, 2]
    sm = smooth_runs(full, found, sigma_frames)[idx]
    out[idx, :, :2] = np.einsum("mpc,mcd->mpd", sm[..., :2], M) + t[:, None]
    out[idx, :, 2] = sm[..., 2]
    return out


def track_faces(frames: Iterable[np.ndarray], fps: float, *,
                on_frame: Callable[[int, np.ndarray, np.ndarray | None], None] | None = None,
                total: int = 0) -> FaceTrack:
    """Landmarks of the most prominent face in every frame ((H, W, 3) uint8 RGB each).
    on_frame(i, frame, raw landmarks or None) is called for each frame after tracking it
    (e.g. to keep a crop). total: the expected frame count, for progress (0: unknown)."""
    rows = []
    tracker = FaceTracker(min_detection=DETECT_CONFIDENCE, min_tracking=TRACK_CONFIDENCE)
    for i, f in enumerate(frames):
        job.report("face", i, total)
        p = tracker.process(f)
        lm = None
        if p is not None:
            p = p.astype(np.float32)
            if np.linalg.norm(p[L.EYE_OUTER_L, :2] - p[L.EYE_OUTER_R, :2]) >= MIN_IOD_PX:
                lm = p
        rows.append(lm)
        if on_frame is not None:
            on_frame(i, f, lm)
    n = len(rows)
    raw = np.full((n, L.N_LANDMARKS, 3), np.nan, np.float32)
    found = np.zeros(n, bool)
    for i, lm in enumerate(rows):
        if lm is not None:
            raw[i], found[i] = lm, True
    sm = smooth_shape(raw, found, SMOOTH_SIGMA_S * fps)
    log.info("tracked %d frames, face in %d", n, int(found.sum()))
    return FaceTrack(landmarks=sm, raw=raw, found=found)
