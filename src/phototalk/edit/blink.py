"""Suppressing blinks in a real video: find the frames where the eyes close and lay the
open eyes of a nearby frame over them.

A closed lid hides the eyeball, so opening it cannot be a warp: the pixels have to come
from a frame where the eye is open. The donor is the last open frame before the blink
(the first after, at the start of a clip), aligned to the current face by a similarity
fit on points a blink does not move (eye corners, brows, cheek below the eye) and
blended in with a feathered mask over the eye socket.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..face import landmarks as L
from ..render.video_rig import face_axes

CLOSED_BELOW = 0.7  # eye openness below this fraction of the clip's median counts as blinking
OPEN_ABOVE = 0.85  # a donor frame's openness must reach this fraction of the median
DONOR_REACH_S = 1.5  # s; how far from a blink a donor frame may be
PATCH_PAD_IOD = 0.35  # iod of margin kept around the eyes in stored patches

# Points a blink leaves in place, per eye: corners, brow, cheek below the eye.
_STABLE = (np.array([33, 133, 70, 63, 105, 66, 107, 117, 118, 119, 120, 121, 47]),
           np.array([263, 362, 300, 293, 334, 296, 336, 346, 347, 348, 349, 350, 277]))
# Socket outline per eye: crease ring above, a ring below the lower lid.
_SOCKET = (np.r_[L.EYE_L_UPPER2, [133, 243, 112, 26, 22, 23, 24, 110, 25, 130, 33]],
           np.r_[L.EYE_R_UPPER2, [362, 463, 341, 256, 252, 253, 254, 339, 255, 359, 263]])


def eye_openness(lm: np.ndarray) -> np.ndarray:
    """(n,) mean lid gap / eye width of both eyes for landmarks (n, 478, 2+); NaN rows stay NaN."""
    def one(top, bottom, a, b):
        return np.linalg.norm(lm[:, top, :2] - lm[:, bottom, :2], axis=1) / \
            np.maximum(np.linalg.norm(lm[:, a, :2] - lm[:, b, :2], axis=1), 1e-6)
    return 0.5 * (one(159, 145, 33, 133) + one(386, 374, 263, 362))


def plan_donors(openness: np.ndarray, active: np.ndarray, fps: float) -> dict[int, int]:
    """{frame: donor frame} for every blinking frame where ``active`` ((n,) bool) is set.
    openness: (n,) from ``eye_openness`` (NaN without a face)."""
    ok = np.isfinite(openness)
    if not ok.any():
        return {}
    med = float(np.median(openness[ok]))
    closed = ok & (openness < CLOSED_BELOW * med)
    # A blink's first and last frames are already partly closed: widen each run by one.
    closed = closed | np.r_[closed[1:], False] | np.r_[False, closed[:-1]]
    closed &= active & ok
    is_open = ok & (openness >= OPEN_ABOVE * med)
    reach = max(1, int(round(DONOR_REACH_S * fps)))
    plan = {}
    for i in np.flatnonzero(closed):
        before = np.flatnonzero(is_open[max(0, i - reach):i])
        after = np.flatnonzero(is_open[i + 1:i + 1 + reach])
        if len(before):
            plan[int(i)] = int(max(0, i - reach) + before[-1])
        elif len(after):
            plan[int(i)] = int(i + 1 + after[0])
    return plan


def eye_patch(frame: np.ndarray, lm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(crop, offset): the part of ``frame`` around both eyes (and brows) with the
    top-left (x, y) where it was cut; kept for frames that may donate open eyes."""
    iod, _, _ = face_axes(lm)
    pts = lm[np.r_[_STABLE[0], _STABLE[1], _SOCKET[0], _SOCKET[1]], :2]
    h, w = frame.shape[:2]
    pad = PATCH_PAD_IOD * iod
    x0, y0 = np.maximum(np.floor(pts.min(0) - pad).astype(int), 0)
    x1, y1 = np.ceil(pts.max(0) + pad).astype(int)
    x1, y1 = min(x1, w), min(y1, h)
    return frame[y0:y1, x0:x1].copy(), np.array([x0, y0], np.float64)


def open_eyes(frame: np.ndarray, lm: np.ndarray, donor: tuple[np.ndarray, np.ndarray], donor_lm: np.ndarray) -> None:
    """Lay the donor's eyes over ``frame`` ((H, W, 3) uint8, in place). lm, donor_lm:
    (478, 2+) landmarks of this frame and of the donor frame; donor: ``eye_patch``."""
    crop, (ox, oy) = donor
    iod, _, _ = face_axes(lm)
    h, w = frame.shape[:2]
    for stable, socket in zip(_STABLE, _SOCKET):
        src = donor_lm[stable, :2].astype(np.float64) - [ox, oy]
        dst = lm[stable, :2].astype(np.float64)
        M, _ = cv2.estimateAffinePartial2D(src.astype(np.float32), dst.astype(np.float32), method=cv2.LMEDS)
        if M is None:
            continue
        poly = lm[socket, :2]
        feather = max(1.0, 0.03 * iod)
        x0, y0 = np.maximum(np.floor(poly.min(0) - 3 * feather).astype(int), 0)
        x1, y1 = np.ceil(poly.max(0) + 3 * feather).astype(int)
        x1, y1 = min(x1, w), min(y1, h)
        if x1 - x0 < 3 or y1 - y0 < 3:
            continue
        # Affine from donor crop to this frame's box.
        Mb = M.copy()
        Mb[:, 2] -= [x0, y0]
        warped = cv2.warpAffine(crop, Mb, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        mask = np.zeros((y1 - y0, x1 - x0), np.float32)
        hull = cv2.convexHull(np.round((poly - [x0, y0]) * 4).astype(np.int32))
        cv2.fillConvexPoly(mask, hull, 1.0, lineType=cv2.LINE_AA, shift=2)
        # Fully opaque over the socket (a half-covered closed lid shows through as a
        # ghost), feathered just outside it.
        a = np.clip(2.0 * cv2.GaussianBlur(mask, (0, 0), feather), 0, 1)[..., None]
        sub = frame[y0:y1, x0:x1].astype(np.float32)
        frame[y0:y1, x0:x1] = np.clip(sub * (1 - a) + warped.astype(np.float32) * a + 0.5, 0, 255).astype(np.uint8)
