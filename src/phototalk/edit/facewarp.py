"""Per-frame local face edits on a real video frame: move lips, jaw and eyelids to new
positions and warp only the pixels that must move.

The still-image renderer (render/warp.py) precomputes one mesh for one portrait. In a
video the face moves every frame, so here the geometry is rebuilt per frame, but only
locally: the frame's 468 face-mesh points plus a fixed ring of anchors around the face
are triangulated (Delaunay on the *source* positions, so source triangles never
overlap), vertices get offsets, and only triangles touching a moved vertex are
rasterised with their exact destination -> source affine map. Every other pixel is
copied untouched, so outside the face the frame is bit-for-bit the decoded input.
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial import Delaunay

from ..face import landmarks as L
from ..render.lids import lid_skin, match_eyes, paint_opacity, paint_shut_lid
from ..render.mouth import MouthPalette, draw_mouth, smoothstep
from ..render.raster import signed_area2

RING_SCALE = 1.3  # anchor ring (never moves) = face oval scaled about its centre
MOVE_EPS_PX = 0.3  # offsets smaller than this are dropped: fewer triangles to resample, no visible step
MIN_AREA_RATIO = 0.2  # a triangle squeezed below this fraction of its source area is hidden
UPPER_SHARE = 0.25  # share of a lip-gap change taken by the upper lip (the jaw does the rest)
UPPER_OUTER_FOLLOW = 0.6  # the upper lip's outer edge moves this much of its inner edge
PHILTRUM_REACH_IOD = 0.18  # iod above the upper lip over which skin follows it
LID_DROP = 1.1  # eye heights the upper lid margin travels when closing
LID_FOLD, LID_CREASE = 1.0, 0.45  # how far the skin rings above the margin follow it
LOWER_LID_RISE = 0.06  # eye heights the lower lid rises to meet the upper
LIP_PRESS_IOD = 0.025  # iod the lips overlap when shut
SHUT_OPEN_IOD = 0.06  # iod; lips parted less than this count as (partly) shut: seam cleaned, edge inset
REAL_MOUTH_MIN_IOD = 0.06  # a dubbed frame whose own mouth is open at least this much (iod) ...
REAL_MOUTH_MAX_RATIO = 1.5  # ... keeps its real interior up to this ratio of new to own opening
SEAM_HALF_IOD = 0.05  # iod; half-width of the band around a shut mouth's seam that is cleaned
SEAM_BRIGHT, SEAM_DARK = 12.0, 20.0  # luma levels above / below the lips' median that are tooth / cavity
SEAM_LINE_DARKEN = 0.25  # the contact line between shut lips
LIP_INSET = 0.4  # shut lips sample their edge this far into the lip (inner -> semi-inner contour):
#                  the tracked inner contour of an open mouth lies a pixel or two onto the teeth


def face_axes(lm: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(iod px, ex, ey): inter-ocular distance, unit vector from the image-left to the
    image-right eye, and its perpendicular pointing down the face. lm: (>=468, 2+)."""
    ex = lm[L.EYE_OUTER_R, :2] - lm[L.EYE_OUTER_L, :2]
    iod = float(np.linalg.norm(ex))
    ex = ex / max(iod, 1e-6)
    return iod, ex, np.array([-ex[1], ex[0]])


def anchor_ring(lm: np.ndarray, scale: float = RING_SCALE) -> np.ndarray:
    """(36, 2) fixed anchors: the face oval scaled by ``scale`` about its centre. Pixels
    outside their convex hull are never changed by an edit."""
    oval = lm[L.FACE_OVAL, :2].astype(np.float64)
    c = oval.mean(0)
    return c + scale * (oval - c)


def face_region_mask(lm: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: the pixels an edit of the face with landmarks ``lm`` may change
    (the anchor ring's convex hull, grown by 2 px for rasterisation rounding)."""
    mask = np.zeros(shape, np.uint8)
    hull = cv2.convexHull(np.round(anchor_ring(lm)).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1)
    return cv2.dilate(mask, np.ones((5, 5), np.uint8)) > 0


# ---------------------------------------------------------------------------- mouth
def lip_columns(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(t (11,), gap (11,) px, mouth width px): each inner-lip column's position from
    the image-left corner (-1) to the right one (+1), and the current inner-lip gap."""
    _, ex, ey = face_axes(lm)
    up, lo = lm[L.UPPER_INNER, :2], lm[L.LOWER_INNER, :2]
    mid = (up[0] + up[-1]) / 2
    width = float(np.linalg.norm(up[-1] - up[0]))
    t = ((up - mid) @ ex) / max(width / 2, 1e-6)
    gap = np.maximum((lo - up) @ ey, 0.0)
    gap[[0, -1]] = 0.0
    return t, gap, width


def gap_profile(t: np.ndarray, mouth_round: float) -> np.ndarray:
    """(11,) relative inner-lip gap across the mouth: flat and wide for spread lips,
    elliptic for rounded ones (1 at the centre, 0 at the corners)."""
    flat = np.clip(1 - np.abs(t) ** 2.2, 0, 1) ** 0.6
    rnd = np.sqrt(np.clip(1 - t ** 2, 0, 1))
    return (1 - mouth_round) * flat + mouth_round * rnd


def mouth_offsets(lm: np.ndarray, target_gap: np.ndarray, *, wide: float = 0.0,
                  jaw_gap: np.ndarray | None = None) -> np.ndarray:
    """(468, 2) offsets that give the inner lips the gap ``target_gap`` ((11,) px per lip
    column, 0 = closed) and widen the mouth by ``wide`` (relative). The lower lip and the
    jaw do most of the move, the upper lip a quarter; skin below the mouth rides with the
    jaw, skin above with the upper lip, fading with distance. jaw_gap: (11,) px, the gap
    the jaw alone would give (a jaw lagging the lips); default ``target_gap``."""
    iod, ex, ey = face_axes(lm)
    v = lm[:L.N_SURFACE, :2].astype(np.float64)
    t, gap, width = lip_columns(lm)
    delta = np.asarray(target_gap, np.float64) - gap
    delta[[0, -1]] = 0.0
    off = np.zeros_like(v)
    mid = (lm[L.UPPER_INNER[0], :2] + lm[L.UPPER_INNER[-1], :2]) / 2
    rel = v - mid
    xv, yv = rel @ ex, rel @ ey
    lip = np.zeros(L.N_SURFACE, bool)
    lip[L.UPPER_LIP.ravel()] = lip[L.LOWER_LIP.ravel()] = True
    # Skin around the lips follows the lip column above or below it (a column nearer the
    # corner moves less), fading with distance from the lip; beyond the corners it stays.
    below = (lm[L.LOWER_OUTER, :2] - mid) @ ey
    above = (lm[L.UPPER_OUTER, :2] - mid) @ ey
    order = np.argsort(t)
    tv = xv / max(width / 2, 1e-6)
    jaw_delta = delta if jaw_gap is None else np.asarray(jaw_gap, np.float64) - gap
    if jaw_gap is not None:
        jaw_delta[[0, -1]] = 0.0
    low_col = np.interp(tv, t[order], ((1 - UPPER_SHARE) * jaw_delta)[order], left=0.0, right=0.0)
    up_col = np.interp(tv, t[order], (-UPPER_SHARE * UPPER_OUTER_FOLLOW * delta)[order], left=0.0, right=0.0)
    jaw = smoothstep(0.0, 0.5 * float(below[5]), yv)  # the chin rides on the jaw with the lower lip
    ph = (1 - smoothstep(0.0, PHILTRUM_REACH_IOD * iod, float(above[5]) - yv)) * (yv < 0)
    off += np.where(lip, 0.0, jaw * low_col + ph * up_col)[:, None] * ey[None, :]
    for r, row in enumerate(L.UPPER_LIP):
        follow = 1 - (1 - UPPER_OUTER_FOLLOW) * r / 3
        off[row] += (-UPPER_SHARE * delta * follow)[:, None] * ey[None, :]
    for row in L.LOWER_LIP:
        off[row[1:-1]] += ((1 - UPPER_SHARE) * delta)[1:-1, None] * ey[None, :]
    if wide:
        field = np.exp(-(xv ** 2 + yv ** 2) / (2 * (0.7 * width) ** 2)) * xv
        off += (wide * field)[:, None] * ex[None, :]
    return off


def clean_seam(frame: np.ndarray, dst: np.ndarray, iod: float, amount: float) -> None:
    """Give shut lips a clean seam (in place): near the line where the warped inner lips
    meet (``dst`` (468, 2) warped positions), pixels much brighter (tooth) or darker
    (mouth cavity) than the lips move to the lip colour, and a faint contact line is
    drawn. The tracked inner contour of an open mouth often lies a pixel or two onto the
    teeth or into the cavity, and thin lips carry those pixels into the closed seam."""
    if amount <= 0:
        return
    h, w = frame.shape[:2]
    seam = 0.5 * (dst[L.UPPER_INNER] + dst[L.LOWER_INNER])
    half = max(1.5, SEAM_HALF_IOD * iod)
    lips = np.concatenate([dst[L.UPPER_SEMI_OUTER], dst[L.LOWER_SEMI_OUTER][::-1]])
    x0, y0 = np.maximum(np.floor(lips.min(0) - half).astype(int) - 2, 0)
    x1, y1 = np.ceil(lips.max(0) + half).astype(int) + 3
    x1, y1 = min(x1, w), min(y1, h)
    if x1 - x0 < 3 or y1 - y0 < 3:
        return
    sub = frame[y0:y1, x0:x1].astype(np.float32)
    body = np.zeros(sub.shape[:2], np.uint8)
    cv2.fillPoly(body, [np.round((lips - [x0, y0]) * 4).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=2)
    band = np.zeros(sub.shape[:2], np.float32)
    line = np.round((seam - [x0, y0]) * 4).astype(np.int32)
    cv2.polylines(band, [line], False, 1.0, thickness=max(1, int(round(2 * half))), lineType=cv2.LINE_AA, shift=2)
    if body.sum() < 8:
        return
    lip_col = np.median(sub[body > 0], axis=0)
    luma = sub @ np.array([0.299, 0.587, 0.114], np.float32)
    lip_luma = float(np.median(luma[body > 0]))
    off = np.maximum(luma - lip_luma - SEAM_BRIGHT, lip_luma - SEAM_DARK - luma)
    soft_body = cv2.GaussianBlur(body.astype(np.float32), (0, 0), 1.0)
    a = np.clip(off / 20.0, 0, 1) * band * soft_body * amount
    a = cv2.GaussianBlur(np.maximum(a, cv2.dilate(a, np.ones((3, 3), np.uint8))), (0, 0), 0.8)
    out = sub * (1 - a[..., None]) + lip_col * a[..., None]
    contact = np.zeros(sub.shape[:2], np.float32)
    cv2.polylines(contact, [line], False, 1.0, thickness=1, lineType=cv2.LINE_AA, shift=2)
    out *= (1 - SEAM_LINE_DARKEN * amount * cv2.GaussianBlur(contact, (0, 0), 0.6))[..., None]
    frame[y0:y1, x0:x1] = np.clip(out + 0.5, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------- eyes
_EYES = ((L.EYE_L_UPPER0, L.EYE_L_LOWER0, L.EYE_L_UPPER1, L.EYE_L_UPPER2),
         (L.EYE_R_UPPER0, L.EYE_R_LOWER0, L.EYE_R_UPPER1, L.EYE_R_UPPER2))


def eye_offsets(lm: np.ndarray, closure: float) -> np.ndarray:
    """(468, 2) offsets that lower both upper lids by ``closure`` (0 open .. 1 shut) of
    each eye's current opening, the skin above following, the lower lid rising a little."""
    _, _, ey = face_axes(lm)
    off = np.zeros((L.N_SURFACE, 2))
    for u0, l0, u1, u2 in _EYES:
        u0, l0 = u0[1:-1], l0[1:-1]
        gap = np.maximum((lm[l0, :2] - lm[u0, :2]) @ ey, 0.0)  # (7,) px
        down = (closure * LID_DROP * gap)[:, None] * ey[None, :]
        off[u0] += down * (1 - LOWER_LID_RISE)
        off[u1] += LID_FOLD * down * (1 - LOWER_LID_RISE)
        off[u2] += LID_CREASE * down
        off[l0] -= LOWER_LID_RISE * down
    return off


def paint_lids(frame: np.ndarray, source: np.ndarray, lm: np.ndarray, dst: np.ndarray, closure: float) -> None:
    """The lid skin and lashes of each closing lid (``render.lids``) into ``frame`` (in
    place): from the warped crease ring down to the warped margin (``dst`` (468, 2)),
    taken from the open eyes of ``source`` (the unedited frame; ``lm`` its landmarks)."""
    if paint_opacity(closure) <= 0:
        return
    _, ex, ey = face_axes(lm)
    gaps, skins = [], []
    for u0, l0, _, _ in _EYES:
        gaps.append(float(np.maximum((lm[l0[1:-1], :2] - lm[u0[1:-1], :2]) @ ey, 0.0).max()))
        skins.append(lid_skin(source, lm[u0, :2], lm[l0, :2], gaps[-1]))
    match_eyes(skins)
    for (u0, _, _, u2), gap, skin in zip(_EYES, gaps, skins):
        paint_shut_lid(frame, dst[u2], dst[u0], ex, ey, gap, skin, closure)


# ---------------------------------------------------------------------------- warp
def triangulate(src: np.ndarray, cache: dict | None = None) -> np.ndarray:
    """(K, 3) triangles over the points ``src`` ((n, 2) px). With a ``cache`` dict the
    last triangulation is reused while it stays valid for these positions (every
    triangle keeps its orientation and some area): the face mesh moves smoothly from
    frame to frame, and Delaunay costs more than the rest of a small warp."""
    if cache is not None and cache.get("n") == len(src):
        tri = cache["tri"]
        s = src[tri]
        area = signed_area2(s)
        if np.all(area * cache["sign"] > 0):
            return tri
    tri = Delaunay(src).simplices
    if cache is not None:
        s = src[tri]
        cache.update(n=len(src), tri=tri, sign=np.sign(signed_area2(s)))
    return tri


def _affine_to_source(d: np.ndarray, s: np.ndarray) -> np.ndarray:
    """(K, 3, 2) M with [x y 1] @ M = source xy, for destination triangles d and source
    triangles s ((K, 3, 2) each): the closed-form inverse of each 3x3 [x y 1] matrix."""
    x0, y0 = d[:, 0, 0], d[:, 0, 1]
    x1, y1 = d[:, 1, 0], d[:, 1, 1]
    x2, y2 = d[:, 2, 0], d[:, 2, 1]
    det = x0 * (y1 - y2) + x1 * (y2 - y0) + x2 * (y0 - y1)
    inv = np.empty((len(d), 3, 3))
    inv[:, 0] = np.stack([y1 - y2, y2 - y0, y0 - y1], 1)
    inv[:, 1] = np.stack([x2 - x1, x0 - x2, x1 - x0], 1)
    inv[:, 2] = np.stack([x1 * y2 - x2 * y1, x2 * y0 - x0 * y2, x0 * y1 - x1 * y0], 1)
    inv /= det[:, None, None]
    return inv @ s


def warp_moved(frame: np.ndarray, src: np.ndarray, dst: np.ndarray, cache: dict | None = None) -> np.ndarray:
    """Return a copy of ``frame`` ((H, W, 3) uint8) warped so that the points ``src``
    ((n, 2) px) land on ``dst`` ((n, 2) px), piecewise-affinely over a Delaunay
    triangulation of ``src`` (reused through ``cache`` while valid). Only triangles with
    a moved vertex are resampled (exact inverse per triangle); pixels of all other
    triangles and outside the mesh are copied. Triangles that flip or collapse (a
    closing lip gap) are hidden and dropped."""
    out = frame.copy()
    moved = np.linalg.norm(dst - src, axis=1) > MOVE_EPS_PX
    if not moved.any():
        return out
    h, w = frame.shape[:2]
    tri = triangulate(src, cache)
    tri = tri[moved[tri].any(1)]
    s, d = src[tri], dst[tri]  # (K, 3, 2)
    area0 = signed_area2(s)
    area = signed_area2(d)
    # Same orientation as in the source and not squeezed to a sliver: a nearly collapsed
    # triangle (a shutting lip gap) would show its whole source (the teeth) compressed.
    keep = (area * np.sign(area0) > 0.25) & (np.abs(area) > MIN_AREA_RATIO * np.abs(area0))
    dropped = d[~keep]
    s, d, area = s[keep], d[keep], np.abs(area[keep])
    if not len(d):
        return out
    bx0, by0 = (int(max(0, np.floor(d[..., k].min()) - 1)) for k in (0, 1))
    bx1 = int(min(w, np.ceil(d[..., 0].max()) + 2))
    by1 = int(min(h, np.ceil(d[..., 1].max()) + 2))
    if bx1 <= bx0 or by1 <= by0:
        return out
    label = np.full((by1 - by0, bx1 - bx0), -1, np.int32)
    pts = np.round((d - [bx0, by0]) * 16).astype(np.int32)
    # Where a dropped triangle was (a lip gap closed past zero, a lid folded down) no
    # kept triangle may reach: those pixels take the map of the nearest kept pixel,
    # instead of showing what the frame had there (teeth between shut lips).
    holes = np.zeros(label.shape, np.uint8)
    for tri_d in np.round((dropped - [bx0, by0]) * 16).astype(np.int32):
        cv2.fillConvexPoly(holes, tri_d, 1, lineType=cv2.LINE_8, shift=4)
    order = np.argsort(-area)  # where dropped triangles leave overlaps, small ones win
    # Outlines first so pixels on shared edges belong to a triangle, then interiors.
    for k in order:
        cv2.polylines(label, [pts[k]], True, int(k), thickness=1, lineType=cv2.LINE_8, shift=4)
    for k in order:
        cv2.fillConvexPoly(label, pts[k], int(k), lineType=cv2.LINE_8, shift=4)
    # Per-pixel affine coefficients by one lookup; row K is the identity for unlabelled
    # pixels, so the whole box is computed without boolean indexing.
    coef = np.empty((len(d) + 1, 6), np.float32)
    coef[:-1] = _affine_to_source(d, s).reshape(len(d), 6)  # rows: [x y 1] @ M, M (3, 2) row-major
    coef[-1] = (1, 0, 0, 1, 0, 0)
    sel = label >= 0
    fill = (holes > 0) & ~sel
    if fill.any():
        from scipy.ndimage import distance_transform_edt

        _, (iy, ix) = distance_transform_edt(~sel, return_indices=True)
        label = label.copy()
        label[fill] = label[iy[fill], ix[fill]]
        sel = sel | fill
    c = coef[label]  # (h, w, 6); label -1 picks the identity row
    X = np.arange(bx0, bx1, dtype=np.float32)[None, :]
    Y = np.arange(by0, by1, dtype=np.float32)[:, None]
    mx = X * c[..., 0] + Y * c[..., 2] + c[..., 4]
    my = X * c[..., 1] + Y * c[..., 3] + c[..., 5]
    res = cv2.remap(frame, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    cv2.copyTo(res, sel.astype(np.uint8), out[by0:by1, bx0:bx1])
    return out


def edit_face(frame: np.ndarray, lm: np.ndarray, *, close_mouth: float = 0.0, close_eyes: float = 0.0,
              mouth: dict | None = None, palette: MouthPalette | None = None, cache: dict | None = None
              ) -> np.ndarray:
    """One edited frame. frame: (H, W, 3) uint8 RGB; lm: (478, 2+) landmarks of the face.
    close_mouth, close_eyes: 0..1 (fraction of the current opening taken away).
    mouth: new mouth controls {'open' (iod), 'wide', 'round', optional 'jaw' (iod, the
    jaw's own lagging opening)} (dubbing); the interior is then drawn into the new lip gap
    with ``palette``. cache: a dict kept across the
    frames of one video (see ``triangulate``). Returns a new frame."""
    iod, _, _ = face_axes(lm)
    src = lm[:L.N_SURFACE, :2].astype(np.float64)
    off = np.zeros_like(src)
    # shut: how far the lips meet (0..1). The seam clean-up and the inset lip edge belong
    # to touching lips only: a mouth easing shut, or a dub's narrow opening, keeps its gap.
    shut = 0.0
    if mouth is not None:
        t, _, _ = lip_columns(lm)
        opening = max(float(mouth["open"]), 0.0)
        shut = float(1 - smoothstep(0.0, SHUT_OPEN_IOD, opening))
        profile = gap_profile(t, float(mouth.get("round", 0.0)))
        press = 1 - smoothstep(0.0, 0.04, opening)
        target = (opening - press * LIP_PRESS_IOD) * iod * profile
        wide = float(mouth.get("wide", 0.0)) - 0.24 * float(mouth.get("round", 0.0))
        jaw = mouth.get("jaw")
        jaw_gap = None if jaw is None else max(float(jaw), 0.0) * iod * profile
        off += mouth_offsets(lm, target, wide=wide, jaw_gap=jaw_gap)
    elif close_mouth > 0:
        t, gap, _ = lip_columns(lm)
        opening = (1 - close_mouth) * float(gap[5]) / max(iod, 1e-6)  # iod, before the press
        shut = close_mouth * float(1 - smoothstep(0.0, SHUT_OPEN_IOD, opening))
        target = (1 - close_mouth) * gap - close_mouth * LIP_PRESS_IOD * iod * gap_profile(t, 0.0)
        off += mouth_offsets(lm, target)
    if close_eyes > 0:
        off += eye_offsets(lm, close_eyes)
    off[np.linalg.norm(off, axis=1) < MOVE_EPS_PX] = 0.0
    ring = anchor_ring(lm)
    dst = src + off
    sample = src.copy()
    if shut > 0:
        for inner, semi in ((L.UPPER_INNER, L.UPPER_SEMI_INNER), (L.LOWER_INNER, L.LOWER_SEMI_INNER)):
            sample[inner[1:-1]] += shut * LIP_INSET * (src[semi[1:-1]] - src[inner[1:-1]])
    out = warp_moved(frame, np.concatenate([sample, ring]), np.concatenate([dst, ring]), cache)
    if shut > 0:
        clean_seam(out, dst, iod, shut)
    if mouth is not None and palette is not None:
        # Where the new opening is no wider than the speaker's own in this frame, their
        # real teeth and tongue (warped) stay; the drawn interior fades in as the lips
        # part further than the frame shows.
        _, gap0, _ = lip_columns(lm)
        own, new = float(gap0[5]), float(dst[L.LOWER_INNER[5]] @ face_axes(lm)[2] - dst[L.UPPER_INNER[5]] @ face_axes(lm)[2])
        a = 1.0 if own < REAL_MOUTH_MIN_IOD * iod else float(smoothstep(1.0, REAL_MOUTH_MAX_RATIO, new / own))
        if a > 0:
            drawn = out if a >= 1 else out.copy()
            draw_mouth(drawn, dst[L.UPPER_INNER], dst[L.LOWER_INNER], palette, iod, float(mouth.get("round", 0.0)))
            if a < 1:
                out = cv2.addWeighted(drawn, a, out, 1 - a, 0.0)
    if close_eyes > 0:
        paint_lids(out, frame, lm, dst, close_eyes)
    return out
