"""Mouth interior drawn into the gap between the warped lips: cavity, tongue, teeth.

Everything is laid out in the mouth's own frame (u along the corner-to-corner axis,
v perpendicular, pointing down), so the interior turns and scales with the lips and
the teeth keep one size from frame to frame (no "swimming").
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..face import landmarks as L

# Tooth boundaries from the midline, in half-mouth-widths (central incisors widest).
UPPER_TOOTH_EDGES = np.cumsum([0.17, 0.13, 0.12, 0.11, 0.11, 0.11])
LOWER_TOOTH_EDGES = np.cumsum([0.10, 0.10, 0.10, 0.10, 0.10])
UPPER_TEETH_H = 0.10  # visible upper incisor height / inter-ocular distance (~9 mm of ~90 mm)
LOWER_TEETH_H = 0.06  # visible lower incisor height / inter-ocular distance
# Rounded lips (mouth_round = 1) hide this share of the upper teeth's height and of the
# lower teeth, and darken the teeth by ROUND_SHADE: the lips stand ~1 cm in front of them.
ROUND_UPPER_HIDE, ROUND_LOWER_HIDE, ROUND_SHADE = 0.7, 0.9, 0.45
ROUND_HIDE_FROM = 0.4  # rounding below this hides nothing; the full share from 1.0
CORNER_SHADOW = 0.035  # iod; reach of the shadow where the lips fold in at each corner


@dataclass(frozen=True)
class MouthPalette:
    """RGB float32 colours (0..255) sampled from the portrait, so a black-and-white
    photo gets grey teeth and a dark-skinned face a matching cavity."""

    cavity: np.ndarray
    tongue: np.ndarray
    teeth: np.ndarray

    @classmethod
    def from_image(cls, image: np.ndarray, lm: np.ndarray) -> "MouthPalette":
        h, w = image.shape[:2]

        def sample(idx):
            p = np.round(lm[idx, :2]).astype(int)
            p[:, 0] = np.clip(p[:, 0], 0, w - 1)
            p[:, 1] = np.clip(p[:, 1], 0, h - 1)
            return np.median(image[p[:, 1], p[:, 0]].astype(np.float32), axis=0)

        lip = sample(np.r_[L.UPPER_SEMI_OUTER[2:9], L.LOWER_SEMI_OUTER[2:9]])
        skin = sample(np.array([50, 280, 4, 5, 195, 117, 346]))  # cheeks and nose bridge
        luma = float(skin @ np.array([0.299, 0.587, 0.114]))
        sat = float(np.ptp(skin) / max(skin.max(), 1.0))
        gray = sat < 0.06
        bright = np.clip(luma / 175.0, 0.5, 1.08)
        teeth = np.array([226, 218, 198], np.float32) * bright
        cavity = lip * 0.3 + np.array([12, 2, 3], np.float32)
        tongue = lip * 0.62 + np.array([22, 0, 2], np.float32)
        if gray:
            teeth, cavity, tongue = (np.full(3, v.mean(), np.float32) for v in (teeth, cavity, tongue))
        return cls(cavity.astype(np.float32), tongue.astype(np.float32), np.clip(teeth, 0, 255).astype(np.float32))


def polygon_crop(poly: np.ndarray, shape, pad: int, min_size: tuple[int, int] = (2, 2), *,
                 value=1.0, dtype=np.float32, line_type=cv2.LINE_AA):
    """Rasterise ``poly`` ((K, 2) float pixel x, y; quarter-pixel precision) into its
    bounding box grown by ``pad`` pixels and clipped to an image of ``shape``.

    Returns (mask, (x0, y0, x1, y1)) with mask (y1 - y0, x1 - x0) of ``dtype`` holding
    ``value`` inside, or None when the clipped box is smaller than min_size (w, h)."""
    h, w = shape[:2]
    x0, y0 = np.floor(poly.min(0)).astype(int) - pad
    x1, y1 = np.ceil(poly.max(0)).astype(int) + pad + 1
    # Python ints: a numpy int64 offset added to a float32 map would make it float64 under
    # numpy 2's promotion rules, which cv2.remap rejects.
    x0, y0, x1, y1 = int(max(x0, 0)), int(max(y0, 0)), int(min(x1, w)), int(min(y1, h))
    if x1 - x0 < min_size[0] or y1 - y0 < min_size[1]:
        return None
    mask = np.zeros((y1 - y0, x1 - x0), dtype)
    cv2.fillPoly(mask, [np.round((poly - [x0, y0]) * 4).astype(np.int32)], value, lineType=line_type, shift=2)
    return mask, (x0, y0, x1, y1)


def smoothstep(e0, e1, x):
    """Hermite ramp: 0 below e0, 1 above e1, smooth in between (elementwise)."""
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _tooth_pattern(u: np.ndarray, edges: np.ndarray, half_w_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel: darkening of the gaps between teeth (0..1) and the position inside
    the current tooth (-1..1), given u in half-mouth-widths."""
    a = np.abs(u)
    all_edges = np.r_[0.0, edges]
    j = np.clip(np.searchsorted(all_edges, a) - 1, 0, len(edges) - 1)
    lo, hi = all_edges[j], all_edges[j + 1]
    dist_px = np.minimum(a - lo, hi - a) * half_w_px
    gap = np.exp(-(dist_px / 0.8) ** 2)
    pos = 2 * (a - lo) / (hi - lo) - 1
    return gap, pos


def draw_mouth(frame: np.ndarray, upper: np.ndarray, lower: np.ndarray, pal: MouthPalette, iod_px: float,
               rounding: float = 0.0) -> None:
    """Paint the interior into ``frame`` ((H, W, 3) uint8, modified in place) inside the
    polygon of the warped inner lips. upper, lower: (11, 2) float pixel positions of the
    inner lip contours, corner to corner; iod_px sizes the teeth, which belong to the
    skull and so do not scale with how wide the lips are stretched. rounding: lip
    rounding 0..1 (/uw/, /ow/): pushed-out lips stand in front of the teeth, so less of
    them shows, and what shows is in the lips' shadow."""
    # Only a clear pucker hides them: the rounding an open vowel borrows from a rounded
    # neighbour leaves its teeth alone.
    rounding = float(smoothstep(ROUND_HIDE_FROM, 1.0, float(rounding)))
    n = upper.shape[0]
    left, right = upper[0], upper[-1]
    mid = (left + right) / 2
    width = float(np.linalg.norm(right - left))
    if width < 4:
        return
    ex = (right - left) / width
    ey = np.array([-ex[1], ex[0]])
    vu = (upper - mid) @ ey
    vl = (lower - mid) @ ey
    if float(np.max(vl - vu)) < 0.6:
        return  # lips touch everywhere: nothing to show
    poly = np.concatenate([upper, lower[::-1][1:-1]])
    reach = max(2.0, CORNER_SHADOW * iod_px)
    crop = polygon_crop(poly, frame.shape, int(np.ceil(reach)) + 1, value=255, dtype=np.uint8)
    if crop is None:
        return
    mask, (x0, y0, x1, y1) = crop
    sub = frame[y0:y1, x0:x1]
    alpha = mask.astype(np.float32) / 255.0

    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    px, py = xx - mid[0], yy - mid[1]
    half = width / 2
    u = (px * ex[0] + py * ex[1]) / half  # -1 .. 1 corner to corner
    v = px * ey[0] + py * ey[1]  # px below the mouth axis
    tu = ((upper - mid) @ ex) / half
    order = np.argsort(tu)
    v_up = np.interp(u, tu[order], vu[order])
    tl = ((lower - mid) @ ex) / half
    order = np.argsort(tl)
    v_lo = np.interp(u, tl[order], vl[order])
    gap = np.maximum(v_lo - v_up, 1e-3)
    edge = np.minimum(v - v_up, v_lo - v)  # px from the nearest lip edge

    # Cavity: darker towards the back (centre), lighter cheeks near the corners.
    depth = np.clip(edge / np.maximum(gap * 0.5, 1.0), 0, 1)
    col = pal.cavity[None, None, :] * (1.15 - 0.4 * depth * (1 - 0.6 * np.abs(u)))[..., None]

    # Tongue: a broad rounded bulge filling the floor of the mouth.
    tv = (v - (v_lo - 0.18 * gap)) / np.maximum(0.5 * gap, 1.0)
    tongue_a = (1 - smoothstep(0.6, 1.0, np.sqrt((u / 0.72) ** 2 + tv ** 2))) * smoothstep(2, 10, gap)
    tshade = 0.7 + 0.3 * np.clip(-tv, 0, 1)
    col = col * (1 - tongue_a[..., None]) + pal.tongue[None, None, :] * (tshade * tongue_a)[..., None]

    # Lower incisors: mostly hidden behind the lower lip; they show only in a wide opening.
    lh = LOWER_TEETH_H * iod_px
    lgap, lpos = _tooth_pattern(u, LOWER_TOOTH_EDGES, half)
    ltop = v_lo - lh * (1 - 0.15 * lpos ** 2)
    la = smoothstep(ltop - 0.7, ltop + 0.7, v) * (1 - smoothstep(0.38, 0.5, np.abs(u)))
    la *= smoothstep(1.2, 2.2, gap / max(UPPER_TEETH_H * iod_px, 1.0)) * (1 - ROUND_LOWER_HIDE * rounding)
    lcol = 0.75 * (1 - 0.45 * np.abs(u)) * (1 - 0.12 * lgap)
    # In the mouth's shadow they take on the warm light bounced off the tongue and lips
    # (plain grey teeth read as blue-green next to the red cavity).
    lower_teeth = 0.85 * pal.teeth + 0.15 * pal.tongue
    col = col * (1 - la[..., None]) + lower_teeth[None, None, :] * (lcol * la)[..., None]

    # Upper teeth: fixed to the upper jaw, so sized from the face, not from the gap.
    uh = UPPER_TEETH_H * iod_px * (1 - 0.3 * u ** 2) * (1 - ROUND_UPPER_HIDE * rounding)
    ugap, upos = _tooth_pattern(u, UPPER_TOOTH_EDGES, half)
    ubot = v_up + uh * (1 - 0.10 * upos ** 2)
    ua = (1 - smoothstep(ubot - 0.7, ubot + 0.7, v)) * (1 - smoothstep(0.62, 0.8, np.abs(u)))
    ucol = (0.95 - 0.45 * np.abs(u) ** 1.5) * (1 - 0.12 * ugap)
    ucol = ucol * (0.78 + 0.22 * smoothstep(0, 0.35 * np.maximum(uh, 1), v - v_up))  # lip shadow
    ucol = ucol * (1 - 0.12 * smoothstep(ubot - 0.25 * uh, ubot, v))  # translucent incisal edge
    ucol = ucol * (1 - ROUND_SHADE * rounding)
    col = col * (1 - ua[..., None]) + pal.teeth[None, None, :] * (ucol * ua)[..., None]

    col *= (0.6 + 0.4 * smoothstep(0.0, 2.0, edge))[..., None]  # soft shadow at the lip line
    # The inside of a mouth is out of focus and in shadow next to the lips: no edge in it
    # should be crisper than the photo's own detail at that scale.
    col = cv2.GaussianBlur(col, (0, 0), max(0.6, 0.006 * iod_px))
    out = sub.astype(np.float32) * (1 - alpha[..., None]) + col * alpha[..., None]
    # The lips fold into each other at the corners: a small soft shadow just outside
    # each inner corner, deeper the wider the mouth is open.
    open_px = float(np.max(vl - vu))
    depth = 0.45 * smoothstep(0.5, 0.06 * iod_px, open_px)
    for corner in (left, right):
        shade = depth * (1 - smoothstep(0.0, reach, np.hypot(xx - corner[0], yy - corner[1]))) * (1 - alpha)
        out *= (1 - shade)[..., None]
    frame[y0:y1, x0:x1] = np.clip(out + 0.5, 0, 255).astype(np.uint8)
