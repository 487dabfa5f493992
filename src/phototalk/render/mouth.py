"""Mouth interior drawn into the gap between the warped lips: cavity, tongue, teeth.

Everything is laid out in the mouth's own frame (u along the corner-to-corner axis,
v perpendicular, pointing down), so the interior turns and scales with the lips and
the teeth keep one size from frame to frame (no "swimming").
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from ..core.numeric import smoothstep
from ..face import landmarks as L
from .raster import polygon_crop

# Teeth belong to the skull, so they are sized in inter-ocular distances (iod, the
# outer eye corners, ~90 mm), not in mouth widths: a wide smile shows more of them,
# a pucker fewer. Apparent widths from the midline outwards (central incisor ~8.5 mm,
# lateral ~6.5 mm, canine and premolars foreshortened as the arch turns away).
UPPER_TOOTH_W_IOD = np.array([0.092, 0.070, 0.058, 0.046, 0.040, 0.034])
LOWER_TOOTH_W_IOD = np.array([0.058, 0.058, 0.056, 0.046, 0.040])
UPPER_TOOTH_EDGES = np.cumsum(UPPER_TOOTH_W_IOD)  # iod from the midline
LOWER_TOOTH_EDGES = np.cumsum(LOWER_TOOTH_W_IOD)
# The dental arch turns away from the camera: past this (iod from the midline) the
# teeth sink into the shadow of the cheeks (the "buccal corridor"); by the second
# edge they are gone, so 6-8 upper teeth show in a normal opening.
ARCH_SHADE_IOD = (0.10, 0.30)
TEETH_SHOW_IOD = 0.050  # upper incisal edge below the resting lip line (~4.5 mm of incisor shows as the lips part)
JAW_TEETH_SHARE = 0.75  # the lower teeth drop this share of the lips' opening (the lips part further)
LOWER_CROWN_IOD = 0.085  # visible height of the lower incisors' crowns (~8 mm) above the gum
OVERBITE_IOD = 0.022  # the lower incisors' edge sits this far above the upper one in a closed bite
TUCK_OVERLAP_IOD = 0.006  # in /f v/ the lower lip rides this far up over the upper incisal edge
ARCH_RISE_IOD = 0.035  # the incisal line curves up this much by ARCH_SHADE_IOD[1] (the smile arc)
UPPER_LIP_SHADOW_IOD = 0.035  # reach of the upper lip's shadow on the teeth
TOOTH_GAP_IOD = 0.006  # half-width of the dark line between two teeth
# Rounded lips (mouth_round = 1) hide this share of the upper teeth's height and of the
# lower teeth, and darken the teeth by ROUND_SHADE: the lips stand ~1 cm in front of them.
ROUND_UPPER_HIDE, ROUND_LOWER_HIDE, ROUND_SHADE = 0.7, 0.9, 0.45
ROUND_HIDE_FROM = 0.4  # rounding below this hides nothing; the full share from 1.0
MUCOSA_IOD = 0.03  # iod of the lips' wet inner side that shows inside the opening
CORNER_SHADOW = 0.035  # iod; reach of the shadow where the lips fold in at each corner
# The drawn interior's detail (Laplacian energy in the mouth box over that of the eyes,
# as ../shared/eval/measure.py's mouth_detail reads it) is matched to this share of
# the photo's own: real open mouths read 0.4-1.25.
DETAIL_TARGET = 0.6
SOFT_RANGE_IOD = (0.002, 0.05)  # blur of the interior, iod: the search range of that match
# Everything else in a frame is resampled by the warp (bilinear, at sub-pixel offsets
# as the head moves), which blurs like a Gaussian of about this sigma; the drawn
# interior is not, so it is never drawn crisper than that.
MIN_SOFT_PX = 0.45
# ... and never blurrier than the larger of these: a small face's opening would smear
# into a grey patch (MediaPipe then misread closures and vowels on a 46 px-iod face);
# a large, soft one (a blurry webcam still) takes a softer mouth.
MAX_SOFT_PX, MAX_SOFT_IOD = 0.8, 0.012
EDGE_SPILL_PX = 0.6
GRAIN_SEED = 20261130  # the grain pattern (its strength comes from the photo)
SEAT_MAX_GAP_IOD = 0.02  # the lower lip is re-seated only where the mesh closed the inner lips on the teeth
TEETH_OVER_SKIN = 1.15  # drawn teeth are at least this much brighter than the cheeks
TEETH_MAX_FACE_PCT = 95  # drawn teeth are at most as bright as this percentile of the face's luma
TEETH_SATURATION = 0.7  # share of the eye whites' colour saturation the teeth keep
CAVITY_DARK_SHARE = 0.15  # the cavity's darkest tone at most this share of the lips' colour
OWN_TEETH_MIN_AREA = 0.002  # iod²; fewer bright pixels between the lips are not teeth
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _region_pixels(image: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """(N, 3) float32 pixels of ``image`` inside ``poly`` ((K, 2) px)."""
    crop = polygon_crop(poly, image.shape, 0, value=255, dtype=np.uint8, line_type=cv2.LINE_8)
    if crop is None:
        return np.zeros((0, 3), np.float32)
    m, (x0, y0, x1, y1) = crop
    return image[y0:y1, x0:x1][m > 0].astype(np.float32)


def _eye_pixels(image: np.ndarray, lm: np.ndarray) -> np.ndarray:
    return np.concatenate([_region_pixels(image, np.concatenate([lm[u, :2], lm[lo[::-1], :2]]))
                           for u, lo in ((L.EYE_L_UPPER0, L.EYE_L_LOWER0), (L.EYE_R_UPPER0, L.EYE_R_LOWER0))])


def _iod(lm: np.ndarray) -> float:
    return float(np.linalg.norm(lm[L.EYE_OUTER_R, :2] - lm[L.EYE_OUTER_L, :2]))


def find_own_teeth(image: np.ndarray, lm: np.ndarray) -> tuple[np.ndarray, tuple[int, int]] | None:
    """The portrait's own visible teeth: (alpha (h, w) float32 0..1, (x0, y0) its offset
    in the image), or None when it shows none. Teeth are the bright, unsaturated pixels
    between the inner lips, and right below the lower inner-lip landmarks where those
    sit on the teeth instead of the lip (a broad smile: the face mesh then puts both
    inner lips on the upper teeth's top edge). A closed mouth's lip highlight is told
    apart by the dark slit between it and the upper lip."""
    iod = _iod(lm)
    ui, li, lso, lo = (lm[k, :2] for k in (L.UPPER_INNER, L.LOWER_INNER, L.LOWER_SEMI_OUTER, L.LOWER_OUTER))
    # Search from the upper inner lip down to the middle of the lower lip.
    poly = np.concatenate([ui, lso[::-1][1:-1]])
    crop = polygon_crop(poly, image.shape, 1, value=255, dtype=np.uint8, line_type=cv2.LINE_8)
    if crop is None:
        return None
    m, (x0, y0, x1, y1) = crop
    lab = cv2.cvtColor(np.ascontiguousarray(image[y0:y1, x0:x1]), cv2.COLOR_RGB2LAB).astype(np.float32)
    light, chroma = lab[..., 0], np.hypot(lab[..., 1] - 128, lab[..., 2] - 128)

    def stats(p):
        px = _region_pixels(image, p)
        if len(px) < 4:
            return None
        q = cv2.cvtColor(px.astype(np.uint8)[None], cv2.COLOR_RGB2LAB)[0].astype(np.float32)
        return q[:, 0], np.hypot(q[:, 1] - 128, q[:, 2] - 128)

    upper = stats(np.concatenate([lm[L.UPPER_OUTER, :2], lm[L.UPPER_SEMI_INNER[::-1], :2]]))
    lower = stats(np.concatenate([lso, lo[::-1]]))
    if upper is None or lower is None:
        return None
    thr = max(np.percentile(lower[0], 75), np.percentile(upper[0], 90)) + 12  # brighter than the lips
    cthr = 0.75 * np.median(np.r_[upper[1], lower[1]]) + 3  # and less coloured
    cand = (m > 0) & (light > thr) & (chroma < cthr)
    gap = np.zeros_like(m)  # between the inner lips
    cv2.fillPoly(gap, [np.round(np.concatenate([ui, li[::-1]]) - [x0, y0]).astype(np.int32)], 255)
    # Below the lower inner line only where that line itself lies on teeth.
    seed = cand & (gap > 0)
    line = np.zeros_like(m)
    cv2.polylines(line, [np.round(li[1:-1] - [x0, y0]).astype(np.int32)], False, 255, 2)
    seed |= cand & (line > 0)
    n, comp, st, _ = cv2.connectedComponentsWithStats(cand.astype(np.uint8), connectivity=8)
    keep = np.isin(comp, np.unique(comp[seed & (comp > 0)])) & (comp > 0)
    # Teeth lie between the lips, away from the corners (bright skin there is not teeth).
    inner = np.zeros_like(m)
    lsi = lm[L.LOWER_SEMI_INNER, :2]
    cv2.fillPoly(inner, [np.round(np.concatenate([ui[1:-1], lsi[::-1][1:-1]]) - [x0, y0]).astype(np.int32)], 255)
    keep &= inner > 0
    if keep.sum() < OWN_TEETH_MIN_AREA * iod ** 2:
        return None
    alpha = cv2.GaussianBlur(keep.astype(np.float32), (0, 0), 0.7)
    return alpha, (x0, y0)


def seat_lower_lip(image: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """Landmarks with the lower inner lip moved down to the lower edge of the teeth
    where the face mesh put it on the portrait's own teeth (see ``find_own_teeth``):
    the mouth then closes over the teeth instead of dragging them along on the lower
    lip. The lower lip's middle rows keep their relative place. (N, 3) -> (N, 3)."""
    gap = (lm[L.LOWER_INNER[3:8], :2] - lm[L.UPPER_INNER[3:8], :2])[:, 1]
    if float(np.median(gap)) > SEAT_MAX_GAP_IOD * _iod(lm):
        # The mesh saw the mouth open: its lower inner lip is on the lower teeth or the
        # lip already. (Seating those too read vowels ~25 % less open to MediaPipe.)
        return lm
    own = find_own_teeth(image, lm)
    if own is None:
        return lm
    alpha, (x0, y0) = own
    lm = lm.copy()
    rows = [L.LOWER_INNER, L.LOWER_SEMI_INNER, L.LOWER_SEMI_OUTER, L.LOWER_OUTER]
    h, w = alpha.shape
    depth = np.full(11, np.nan)  # px each column's inner point moves down
    depth[[0, -1]] = 0.0  # the corners stay
    for k in range(1, 10):
        xi, yi = lm[rows[0][k], :2] - [x0, y0]
        c = int(round(xi))
        if not 0 <= c < w:
            continue
        col = alpha[:, max(c - 1, 0):c + 2].max(1)
        start = int(max(yi - 1, 0))
        below = np.nonzero(col[start:] > 0.2)[0]
        if len(below):
            depth[k] = max(start + below.max() + 1.5 - yi, 0.0)
    ok = ~np.isnan(depth)
    # Columns between two with teeth have teeth too (the mask misses shaded ones).
    depth = np.interp(np.arange(11), np.nonzero(ok)[0], depth[ok])
    for k in range(1, 10):
        top_y, out_y = lm[rows[0][k], 1], lm[rows[3][k], 1]
        new = min(top_y + depth[k], top_y + 0.6 * (out_y - top_y))  # keep some lower lip
        if new <= top_y:
            continue
        f = [(lm[r[k], 1] - top_y) / max(out_y - top_y, 1e-6) for r in rows]
        for r, fr in zip(rows[:3], f[:3]):
            lm[r[k], 1] = new + fr * (out_y - new)
    return lm


def _photo_detail(image: np.ndarray, lm: np.ndarray, iod: float) -> float:
    """Laplacian energy (variance) of the grey image in the eye box (as measure.py)."""
    g = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    lap = cv2.Laplacian(g, cv2.CV_32F)
    return _box_energy(lap, lm[[33, 133, 263, 362, 159, 145, 386, 374], :2], 0.05 * iod)


def _box_energy(lap: np.ndarray, pts: np.ndarray, pad: float) -> float:
    x0, y0 = np.maximum(pts.min(0) - pad, 0).astype(int)
    x1, y1 = (pts.max(0) + pad).astype(int)
    crop = lap[y0:y1, x0:x1]
    return float(crop.var()) if crop.size > 16 else 0.0


@dataclass(frozen=True)
class MouthPalette:
    """How this portrait's mouth interior looks: RGB float32 colours (0..255) taken
    from the photo in its own grade (a black-and-white photo gets grey teeth, a
    teal-graded still teal-grey ones, a dark photo a dark cavity), and the photo's
    grain and softness so the interior is as crisp and as noisy as the face around it.

    cavity, tongue, teeth: (3,) colours; grain: std of the photo's fine grain, grey
    levels; soft_iod: blur of the drawn interior, in inter-ocular distances;
    own: the portrait's own teeth (``find_own_teeth``: alpha, offset) and the image."""

    cavity: np.ndarray
    tongue: np.ndarray
    teeth: np.ndarray
    grain: float = 0.0
    soft_iod: float = 0.006

    @classmethod
    def from_image(cls, image: np.ndarray, lm: np.ndarray, *, calibrate: bool = True) -> "MouthPalette":
        """Colours, grain and softness of the mouth interior from ``image`` ((H, W, 3)
        uint8 RGB) and its landmarks ``lm`` ((478, 2+) px)."""
        iod = _iod(lm)
        lip = np.median(_region_pixels(image, np.concatenate([lm[L.UPPER_OUTER, :2], lm[L.UPPER_INNER[::-1], :2]])), 0)
        lower = _region_pixels(image, np.concatenate([lm[L.LOWER_SEMI_OUTER, :2], lm[L.LOWER_OUTER[::-1], :2]]))
        if len(lower):
            lip = 0.5 * lip + 0.5 * np.median(lower, 0)
        h, w = image.shape[:2]
        p = np.round(lm[[50, 280, 4, 5, 195, 117, 346], :2]).astype(int)  # cheeks and nose bridge
        skin = np.median(image[np.clip(p[:, 1], 0, h - 1), np.clip(p[:, 0], 0, w - 1)].astype(np.float32), 0)
        eye = _eye_pixels(image, lm)
        if len(eye) >= 8:
            y = eye @ LUMA
            white = np.median(eye[y >= np.percentile(y, 80)], 0)
            dark = np.median(eye[y <= np.percentile(y, 10)], 0)  # pupil, iris rim, lashes: the photo's black
        else:
            white, dark = skin, skin * 0.15
        own = find_own_teeth(image, lm)
        if own is not None:
            alpha, (x0, y0) = own
            sub = image[y0:y0 + alpha.shape[0], x0:x0 + alpha.shape[1]].astype(np.float32)
            teeth = np.median(sub[alpha > 0.5], 0)
        else:
            # The eye whites' colour (the same grade), a little less saturated, and
            # brighter than the skin: teeth as dark as the skin and lips read as lips
            # (a painting's yellow teeth made MediaPipe see a mouth half as open).
            luma = max(float(white @ LUMA), TEETH_OVER_SKIN * float(skin @ LUMA))
            # ... but no brighter than the face's own highlights: in a soft, evenly lit
            # painting the eye whites and skin sit close together, and teeth above its
            # brightest tones read as a bright row pasted on (Mona Lisa: 201 -> 185).
            face = _region_pixels(image, lm[L.FACE_OVAL, :2])
            if len(face) >= 16:
                hi = float(np.percentile(face @ LUMA, TEETH_MAX_FACE_PCT))
                luma = min(luma, max(hi, float(skin @ LUMA)))
            luma = float(np.clip(luma, 1.0, 235.0))
            grey = float(white @ LUMA)
            teeth = (grey + TEETH_SATURATION * (white - grey)) * luma / max(grey, 1.0)
        # A low-contrast painting's darkest tones (its pupils) are still light: the hole of
        # an open mouth is darker than that, or it does not read as open at all.
        dark = np.minimum(dark, lip * CAVITY_DARK_SHARE)
        cavity = dark + 0.22 * (lip - dark)
        tongue = dark + 0.62 * (lip - dark)
        # Grain: the fine residual of the skin on the cheeks (its std in grey levels).
        g = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
        hp = g - cv2.GaussianBlur(g, (0, 0), 1.2)
        grains = []
        for c in (50, 280, 205, 425):  # cheeks
            x, y = np.round(lm[c, :2]).astype(int)
            r = max(2, int(0.06 * iod))
            patch = hp[max(y - r, 0):y + r, max(x - r, 0):x + r]
            if patch.size > 8:
                grains.append(float(patch.std()))
        grain = float(np.median(grains)) if grains else 0.0
        pal = cls(cavity.astype(np.float32), tongue.astype(np.float32),
                  np.clip(teeth, 0, 255).astype(np.float32), grain)
        return pal.matched_to(image, lm) if calibrate else pal

    def matched_to(self, image: np.ndarray, lm: np.ndarray) -> "MouthPalette":
        """This palette with ``soft_iod`` chosen so an open mouth drawn into ``image``
        has DETAIL_TARGET times the detail of the photo's eyes (bisection on the blur)."""
        iod = _iod(lm)
        eyes = _photo_detail(image, lm, iod)
        if eyes <= 0:
            return self
        up = lm[L.UPPER_INNER, :2].astype(np.float64)
        lo = lm[L.LOWER_INNER, :2].astype(np.float64)
        t = np.linspace(-1, 1, len(up))
        drop = (0.22 * iod * np.clip(1 - np.abs(t) ** 2.2, 0, 1) ** 0.6)[:, None] * np.array([0.0, 1.0])
        lo = np.maximum(lo, up) + drop
        box = np.concatenate([lm[[61, 291, 0, 13], :2], lo[[5]], lm[[17], :2] + drop[[5]]])

        def detail(soft):
            frame = image.copy()
            draw_mouth(frame, up, lo, replace(self, soft_iod=soft), iod)
            lap = cv2.Laplacian(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), cv2.CV_32F)
            return _box_energy(lap, box, 0.05 * iod) / eyes

        return replace(self, soft_iod=match_softness(detail))


def match_softness(detail) -> float:
    """The interior blur (iod) at which ``detail(soft_iod)`` (mouth detail over the
    eyes', falling as the blur grows) reads DETAIL_TARGET: a bisection in log blur."""
    lo_s, hi_s = np.log(SOFT_RANGE_IOD[0]), np.log(SOFT_RANGE_IOD[1])
    for _ in range(6):
        mid = 0.5 * (lo_s + hi_s)
        if detail(float(np.exp(mid))) > DETAIL_TARGET:
            lo_s = mid
        else:
            hi_s = mid
    return float(np.exp(0.5 * (lo_s + hi_s)))


def mouth_detail(frame: np.ndarray, lm: np.ndarray) -> float:
    """Laplacian energy of ``frame`` ((H, W, 3) uint8) in the box of the lips over that
    in the box of the eyes (lm: (468+, 2) px landmark positions in the frame), as
    ../shared/eval/measure.py reads it."""
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    lap = cv2.Laplacian(grey, cv2.CV_32F)
    pad = 0.05 * _iod(lm)
    eyes = _box_energy(lap, lm[[33, 133, 263, 362, 159, 145, 386, 374], :2], pad)
    return _box_energy(lap, lm[[61, 291, 0, 17, 13, 14], :2], pad) / max(eyes, 1e-6)


def _grain_tile() -> np.ndarray:
    """(128, 128) float32 unit-variance grain, fine like a photo's."""
    rng = np.random.default_rng(GRAIN_SEED)
    n = np.pad(rng.standard_normal((128, 128)).astype(np.float32), 8, mode="wrap")  # seamless when tiled
    n = cv2.GaussianBlur(n, (0, 0), 0.6)[8:-8, 8:-8]
    return n / max(float(n.std()), 1e-6)


GRAIN = _grain_tile()


def incisal_depth(x_iod: np.ndarray) -> np.ndarray:
    """Depth of the upper incisal edge below the resting lip line, iod, at x_iod (iod
    from the dental midline): TEETH_SHOW_IOD in front, rising along the smile arc."""
    return TEETH_SHOW_IOD - ARCH_RISE_IOD * smoothstep(0.05, ARCH_SHADE_IOD[1], np.abs(x_iod)) ** 1.5


def _tooth_pattern(x_iod: np.ndarray, edges: np.ndarray, gap_iod: float) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel: darkening of the gaps between teeth (0..1) and the position inside
    the current tooth (-1..1), given x_iod, the distance from the dental midline (iod)."""
    a = np.abs(x_iod)
    all_edges = np.r_[0.0, edges]
    j = np.clip(np.searchsorted(all_edges, a) - 1, 0, len(edges) - 1)
    lo, hi = all_edges[j], all_edges[j + 1]
    dist = np.minimum(a - lo, hi - a)
    gap = np.exp(-(dist / gap_iod) ** 2)
    gap = np.where(a < 0.5 * gap_iod, 0.6 * gap, gap)  # the midline gap is the narrowest
    pos = 2 * (a - lo) / (hi - lo) - 1
    return gap, pos


@dataclass(frozen=True)
class TeethPose:
    """Where the teeth are in an output frame. upper_edge: (11, 2) px, the upper
    incisal edge under each inner-lip column (fixed to the skull); jaw_px: how far the
    lower incisors have dropped from the closed bite, px along the face's down axis;
    own: optional (rgb (h, w, 3) float32, alpha (h, w) float32, M (2, 3)) the portrait's
    own teeth and the affine map from their texture to the output frame."""

    upper_edge: np.ndarray
    jaw_px: float
    own: tuple | None = None


def draw_mouth(frame: np.ndarray, upper: np.ndarray, lower: np.ndarray, pal: MouthPalette, iod_px: float,
               rounding: float = 0.0, *, teeth: TeethPose | None = None, visible=None) -> None:
    """Paint the interior into ``frame`` ((H, W, 3) uint8, modified in place) inside the
    polygon of the warped inner lips. upper, lower: (11, 2) float pixel positions of the
    inner lip contours, corner to corner; iod_px sizes the teeth, which belong to the
    skull and so do not scale with how wide the lips are stretched. rounding: lip
    rounding 0..1 (/uw/, /ow/): pushed-out lips stand in front of the teeth, so less of
    them shows, and what shows is in the lips' shadow. teeth: where the teeth are (see
    ``TeethPose``); without it they hang TEETH_SHOW_IOD below the upper lip and the lower
    ones drop with the opening (a dub, where the skull is not tracked). visible: optional
    callable (x0, y0, x1, y1) -> (y1 - y0, x1 - x0) float32, 1 where the lips are in view
    in that frame box and 0 where a nearer surface hides them (a turned face's cheek):
    the interior is drawn only there."""
    # Only a clear pucker hides them: the rounding an open vowel borrows from a rounded
    # neighbour leaves its teeth alone.
    rounding = float(smoothstep(ROUND_HIDE_FROM, 1.0, float(rounding)))
    left, right = upper[0], upper[-1]
    mid = (left + right) / 2
    width = float(np.linalg.norm(right - left))
    if width < 4:
        return
    ex = (right - left) / width
    ey = np.array([-ex[1], ex[0]])
    vu = (upper - mid) @ ey
    vl = (lower - mid) @ ey
    open_px = float(np.max(vl - vu))
    if open_px < 0.6:
        return  # lips touch everywhere: nothing to show
    s = float(iod_px)
    soft = float(np.clip(pal.soft_iod * s, MIN_SOFT_PX, max(MAX_SOFT_PX, MAX_SOFT_IOD * s)))  # px
    poly = np.concatenate([upper, lower[::-1][1:-1]])
    reach = max(2.0, CORNER_SHADOW * s)
    crop = polygon_crop(poly, frame.shape, int(np.ceil(max(reach, 2 * soft))) + 1, value=255, dtype=np.uint8)
    if crop is None:
        return
    mask, (x0, y0, x1, y1) = crop
    sub = frame[y0:y1, x0:x1]
    alpha = mask.astype(np.float32) / 255.0
    seen = None if visible is None else visible(x0, y0, x1, y1)
    if seen is not None:
        alpha *= seen
        if not alpha.any():
            return

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

    # Teeth frame: the dental midline and the incisal line.
    if teeth is not None:
        te = teeth.upper_edge
        t_mid = te[len(te) // 2]
        x_iod = ((xx - t_mid[0]) * ex[0] + (yy - t_mid[1]) * ex[1]) / s
        tt = ((te - t_mid) @ ex) / s
        order = np.argsort(tt)
        v_inc = np.interp(x_iod, tt[order], ((te - mid) @ ey)[order])  # px, the line TEETH_SHOW_IOD under the lip
        v_inc = v_inc + (incisal_depth(x_iod) - TEETH_SHOW_IOD) * s  # px, upper incisal edge
        jaw = float(teeth.jaw_px)
    else:
        x_iod = u * half / s
        v_inc = vu[len(vu) // 2] + 0.12 * open_px + incisal_depth(x_iod) * s
        jaw = JAW_TEETH_SHARE * open_px
    ax = np.abs(x_iod)
    arch = 1 - smoothstep(ARCH_SHADE_IOD[0], ARCH_SHADE_IOD[1], ax)  # 1 in front .. 0 in the corridor

    # Cavity: darker at the back (centre), the lips' wet inner side near the edges.
    depth = np.clip(edge / np.maximum(gap * 0.5, 1.0), 0, 1)
    col = pal.cavity[None, None, :] * (1.15 - 0.45 * depth * (1 - 0.5 * np.abs(u)))[..., None]
    wet = 0.45 * (1 - smoothstep(0.0, MUCOSA_IOD * s, edge))  # the inner lips, lip-coloured in shade
    col = col * (1 - wet[..., None]) + (0.7 * pal.tongue)[None, None, :] * wet[..., None]

    # Tongue: a broad rounded bulge filling the floor of the mouth, behind the lower teeth.
    tv = (v - (v_lo - 0.12 * gap)) / np.maximum(0.5 * gap, 1.0)
    tongue_a = (1 - smoothstep(0.55, 1.0, np.sqrt((u / 0.7) ** 2 + tv ** 2))) * smoothstep(0.04 * s, 0.12 * s, gap)
    tshade = 0.75 + 0.25 * np.clip(-tv, 0, 1)
    col = col * (1 - tongue_a[..., None]) + pal.tongue[None, None, :] * (tshade * tongue_a)[..., None]

    # Lower incisors: with the jaw, mostly behind the lower lip.
    l_top = v_inc - OVERBITE_IOD * s + jaw
    lgap, lpos = _tooth_pattern(x_iod, LOWER_TOOTH_EDGES, TOOTH_GAP_IOD)
    l_top = l_top + 0.006 * s * lpos ** 2  # rounded tips
    la = smoothstep(l_top - 0.5, l_top + 0.5, v) * (1 - smoothstep(0.12, 0.22, ax))
    la *= 1 - ROUND_LOWER_HIDE * rounding
    # Below the crowns, the gum: the lips' wet pink in shade.
    gum = smoothstep(l_top + LOWER_CROWN_IOD * s - 1.0, l_top + LOWER_CROWN_IOD * s + 1.0, v)
    col = col * (1 - (la * gum)[..., None]) + (0.6 * pal.tongue)[None, None, :] * (la * gum)[..., None]
    la = la * (1 - gum)
    lshade = 0.62 * (1 - 0.25 * lgap) * (0.55 + 0.45 * smoothstep(0, 0.02 * s, v - l_top))  # under the upper teeth
    col = col * (1 - la[..., None]) + pal.teeth[None, None, :] * (lshade * la)[..., None]

    # Upper teeth: from under the upper lip down to the incisal edge.
    ugap, upos = _tooth_pattern(x_iod, UPPER_TOOTH_EDGES, TOOTH_GAP_IOD)
    ubot = v_inc - 0.004 * s * upos ** 2 - ROUND_UPPER_HIDE * rounding * np.maximum(v_inc - v_up, 0)
    ua = (1 - smoothstep(ubot - 0.5, ubot + 0.5, v)) * arch
    ushade = (0.55 + 0.45 * arch) * (1 - 0.3 * ugap) * (1 - 0.06 * upos ** 2)
    ushade = ushade * (0.6 + 0.4 * smoothstep(0, UPPER_LIP_SHADOW_IOD * s, v - v_up))  # the upper lip's shadow
    ushade = ushade * (1 - 0.1 * smoothstep(ubot - 0.015 * s, ubot, v))  # translucent incisal edge
    ushade = ushade * (1 - ROUND_SHADE * rounding)
    ucol = pal.teeth[None, None, :] * ushade[..., None]
    if teeth is not None and teeth.own is not None:
        rgb, oa, M = teeth.own
        M = M.copy()
        M[:, 2] -= (x0, y0)
        size = (x1 - x0, y1 - y0)
        o_rgb = cv2.warpAffine(rgb, M, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        o_a = cv2.warpAffine(oa, M, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        # The photo's teeth already carry their own shading; add the upper lip's shadow.
        lip_sh = (0.7 + 0.3 * smoothstep(0, UPPER_LIP_SHADOW_IOD * s, v - v_up)) * (1 - ROUND_SHADE * rounding)
        ucol = ucol * (1 - o_a[..., None]) + o_rgb * (lip_sh * o_a)[..., None]
        ua = ua * (1 - o_a) + o_a
    col = col * (1 - ua[..., None]) + ucol * ua[..., None]
    # Barely parted lips show a dark slit, not a band of lit teeth (which reads as open).
    col *= (0.45 + 0.55 * smoothstep(0.01 * s, 0.05 * s, gap))[..., None]

    # The inside of a mouth is in the lips' shade and no crisper than the photo: blur it
    # to the photo's softness, then give it the photo's grain.
    col = cv2.GaussianBlur(col.astype(np.float32), (0, 0), soft)
    if pal.grain > 0.2:
        ty, tx = np.arange(y0, y1) % GRAIN.shape[0], np.arange(x0, x1) % GRAIN.shape[1]
        col += (pal.grain * GRAIN[ty][:, tx])[..., None]
    # The lips' inner edge is as soft as the photo (a crisp cut-out edge on a soft
    # painting read twice the detail of its eyes).
    # Up to EDGE_SPILL_PX of blur it stays inside the opening (so a small face's lips keep
    # a clear inner edge for the eye and for MediaPipe); a softer photo's edge spills.
    edge_soft = 0.5 * pal.soft_iod * s
    a = cv2.GaussianBlur(alpha, (0, 0), edge_soft) if edge_soft > 0.3 else alpha
    if edge_soft <= EDGE_SPILL_PX:
        a = a * (alpha > 0)
    out = sub.astype(np.float32) * (1 - a[..., None]) + col * a[..., None]
    # The lips fold into each other at the corners: a small soft shadow just outside
    # each inner corner, deeper the wider the mouth is open.
    depth = 0.35 * smoothstep(0.5, 0.06 * s, open_px)
    for corner in (left, right):
        shade = depth * (1 - smoothstep(0.0, reach, np.hypot(xx - corner[0], yy - corner[1]))) * (1 - a)
        if seen is not None:  # a corner hidden behind the cheek casts no shadow on it
            cx, cy = int(round(corner[0])) - x0, int(round(corner[1])) - y0
            if not (0 <= cy < seen.shape[0] and 0 <= cx < seen.shape[1]) or seen[cy, cx] < 0.5:
                continue
        out *= (1 - shade)[..., None]
    frame[y0:y1, x0:x1] = np.clip(out + 0.5, 0, 255).astype(np.uint8)
