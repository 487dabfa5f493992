"""Shut eyelids over a warped eye, made from the portrait's own skin and lashes.

When a lid is warped shut, the band between the crease and the lid margin is the
photo's upper lid, lashes and liner stretched over the eyeball. Shown as it is, it
reads as a slit of open eye (to viewers and to landmark models), and stretched lashes
or liner break into streaks. So that band is covered by lid skin taken from the photo
(``LidSkin``, sampled once per portrait): at the crease the colour of the skin above it
in the frame, towards the margin that of the skin under the eye; the photo's grain at
its own scale and strength, carried with the margin (the texture moves with the lid);
and, once the lids meet, the photo's own lashes turned down over the lower lid and a
dark line where the lids meet. Shaded as a lid rounded over an eyeball. Shared by the
photo renderer (blinks) and the video editor (``edit --close-eyes``).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..core.numeric import smoothstep
from .raster import polygon_crop

LID_COLUMNS = 16  # colour samples along a lid, corner to corner
LID_SKIN_PERCENTILE = 50  # brightness percentile above which the under-eye pixels count as clear skin
LID_BELOW_SHADE = 0.92  # a lid is a little darker than the skin under the eye
BELOW_SHARE = 0.35  # share of the under-eye skin colour at a shut lid's margin (the rest: the skin above)
TOP_BAND = 0.25  # eye heights of skin above the warped crease the lid's top colour comes from
GRAIN_SIGMA = 0.12  # eye heights; detail finer than this is grain (at least GRAIN_SIGMA_MIN px)
GRAIN_SIGMA_MIN = 1.2  # px
GRAIN_ROWS, GRAIN_BELOW = 1.5, 0.6  # eye heights of skin sampled for grain, and how far under the lower lid
GRAIN_CLIP = 2.5  # grain beyond this many robust std is a lash or a crease line, not skin: clipped
LASH_STRIP = 0.25  # eye heights of the photo above the lid margin searched for lashes and liner
LASH_DARK = (0.35, 0.7)  # a lash pixel this share darker than the lid skin starts to show / is opaque
# How much darker a closing lid is at the crease and the lashes than mid-lid, while the eye
# still shows and once the lids meet (between them as the lashes appear): the shut lid is
# rounded over the eyeball and turns away from the light towards both. At 0.08 the shut lid
# was an evenly lit lens between the crease's shadow and the lash line, which MediaPipe
# reads as a slit of eye: Mona Lisa's shut lid read 0.36 of open (0.70 shut: 0.48), the
# webcam man's 0.36 and the smiling woman's 0.37; at 0.3 they read 0.32 (0.36), 0.27-0.31
# and 0.32, other faces as before (0.07-0.20). Darker while the iris still shows, the
# margin's shade reads as a line drawn across the open eye.
LID_SHADE = (0.08, 0.3)
COVER_BELOW = 0.15  # eye heights of skin laid below a shut lid's margin
LID_FADE = 0.45  # share of the crease-to-margin span over which the lid skin fades in
LASH_WIDTH, LASH_MIN_PX = 0.035, 1.3  # line where the lids meet, in eye widths, and its least width in px
LASH_MAX_SHARE = 0.3  # that line is at most this share of the lid colour
LASH_OPACITY = 0.9
SKIN_FROM, SKIN_FULL = 0.25, 0.6  # lid closure where the photo's lid skin starts / fully covers the band
LASHES_FROM, LASHES_FULL = 0.45, 0.8  # closure where the turned-down lashes appear: only as the lids meet


def paint_opacity(closure: float) -> float:
    """Opacity of the lid skin at lid closure 0 (open) .. 1 (shut): a half-shut band
    already shows stretched lashes, so the skin covers it from SKIN_FULL on."""
    return float(smoothstep(SKIN_FROM, SKIN_FULL, closure))


def lash_opacity(closure: float) -> float:
    """Opacity of the turned-down lashes and the line where the lids meet: none while
    the eye still shows (a dark line across a visible iris reads as drawn)."""
    return float(smoothstep(LASHES_FROM, LASHES_FULL, closure))


@dataclass
class LidSkin:
    """One upper lid's skin, sampled from the photo in lid coordinates: columns run
    corner to corner (u 0..1), rows are pixels above (grain) or below (lashes) the
    lid margin.

    color: (LID_COLUMNS, 3) float32 RGB of the lid skin per column;
    grain: (G, U) float32 fine texture of the skin, zero mean, 8-bit levels;
    lashes: (S, U, 3) float32 RGB of the photo above its lid margin, row 0 at the margin;
    lash_alpha: (S, U) float32 0..1, how much darker than the skin each lash pixel is;
    lash: (3,) float32 RGB of the darkest lashes or liner."""
    color: np.ndarray
    grain: np.ndarray
    lashes: np.ndarray
    lash_alpha: np.ndarray
    lash: np.ndarray


def _ring_at(ring: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(len(x),) y of a lid ring ((K, 2) px, left to right in the image) at columns x."""
    o = np.argsort(ring[:, 0])
    return np.interp(x, ring[o, 0], ring[o, 1])


def lid_skin(image: np.ndarray, margin: np.ndarray, lower: np.ndarray, gap: float) -> LidSkin:
    """Sample one upper lid's skin from ``image`` ((H, W, 3) uint8, the open eye).

    margin: (K, 2) px, the lid margin corner to corner; lower: (L, 2) px, the lower lid;
    gap: the eye's height in px. The skin under the eye gives the lid's colour and grain
    (the band above a lid holds liner, eyeshadow and the crease's shadow; the skin above
    the crease gives the lid's top colour, see ``paint_shut_lid``), the strip above the
    margin its lashes."""
    h, w = image.shape[:2]
    img = image.astype(np.float32)
    gap = max(float(gap), 2.0)
    x = np.arange(np.floor(margin[:, 0].min()), np.ceil(margin[:, 0].max()) + 1, dtype=np.float32)
    y_m = _ring_at(margin, x)
    # Grain: the photo's fine texture at its own scale, from the skin under the eye (a
    # patch as tall as a shut lid, clear of lashes and brows; a thin band above the lid
    # would tile into stripes). Outliers (a mole, a lash) are clipped.
    sigma = max(GRAIN_SIGMA_MIN, GRAIN_SIGMA * gap)
    g = int(np.round(GRAIN_ROWS * gap)) + 2
    y_l = _ring_at(lower, x) + GRAIN_BELOW * gap
    gy = (y_l[None, :] + np.arange(g, dtype=np.float32)[:, None]).astype(np.float32)
    x0, x1 = int(max(x[0] - 3 * sigma - 2, 0)), int(min(x[-1] + 3 * sigma + 3, w))
    y0, y1 = int(max(y_l.min() - 3 * sigma - 2, 0)), int(min(y_l.max() + g + 3 * sigma + 3, h))
    if x1 - x0 < 2 or y1 - y0 < 2:
        grain = np.zeros((g, len(x)), np.float32)
    else:
        sub = img[y0:y1, x0:x1].mean(2)
        hp = sub - cv2.GaussianBlur(sub, (0, 0), sigma)
        gx = np.broadcast_to(x[None, :] - x0, gy.shape).astype(np.float32)
        grain = cv2.remap(hp, gx, gy - y0, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        grain -= np.median(grain)
        robust = 1.4826 * float(np.median(np.abs(grain))) + 1e-3
        grain = np.clip(grain, -GRAIN_CLIP * robust, GRAIN_CLIP * robust).astype(np.float32)
    # Colour: per column, the skin under the eye at its brighter half (no freckle, no
    # shadow), smoothed along the lid. The band above a lid holds liner, eyeshadow and
    # the crease's shadow: a lid unfolded over the eye is mostly skin like the rest.
    patch = cv2.remap(img, np.broadcast_to(x[None, :], gy.shape).astype(np.float32), gy, cv2.INTER_LINEAR,
                      borderMode=cv2.BORDER_REPLICATE)
    lum = patch.mean(2)
    edges = np.linspace(0, len(x), LID_COLUMNS + 1).astype(int)
    color = np.zeros((LID_COLUMNS, 3), np.float32)
    for k in range(LID_COLUMNS):
        a, b = edges[k], max(edges[k + 1], edges[k] + 1)
        lum_k, px = lum[:, a:b].ravel(), patch[:, a:b].reshape(-1, 3)
        sel = lum_k >= np.percentile(lum_k, LID_SKIN_PERCENTILE)
        color[k] = px[sel].mean(0)
    color = cv2.GaussianBlur(color[None], (0, 0), 1.5)[0] * LID_BELOW_SHADE
    # Lashes and liner: the strip just above the open lid's margin, and how dark it is
    # against the lid skin of its column.
    s = int(max(3, np.round(LASH_STRIP * gap)))
    ly = (y_m[None, :] - np.arange(s, dtype=np.float32)[:, None]).astype(np.float32)
    lashes = cv2.remap(img, np.broadcast_to(x[None, :], ly.shape).astype(np.float32), ly, cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE)
    skin_lum = np.interp(np.arange(len(x)), (edges[:-1] + edges[1:]) / 2, color.mean(1))
    dark = 1 - lashes.mean(2) / np.maximum(skin_lum[None, :], 1.0)
    # Lashes are dark and nearly grey; a coloured iris the margin landmarks cut into is not.
    chroma = (lashes.max(2) - lashes.min(2)) / np.maximum(lashes.mean(2), 1.0)
    lash_alpha = (smoothstep(LASH_DARK[0], LASH_DARK[1], dark) * (1 - smoothstep(0.3, 0.8, chroma))).astype(np.float32)
    flat = lashes.reshape(-1, 3)
    lum_l = flat.sum(1)
    lash = flat[lum_l <= np.percentile(lum_l, 20)].mean(0).astype(np.float32)
    return LidSkin(color=color, grain=grain, lashes=lashes.astype(np.float32), lash_alpha=lash_alpha, lash=lash)


def match_eyes(skins: list[LidSkin]) -> None:
    """Give both lids one skin tone (in place): each keeps its own brightness (the light
    on its side of the face) but takes the pair's mean chromaticity, so the two shut lids
    do not come out in different hues from what each eye's band happened to hold."""
    if len(skins) != 2:
        return
    means = [s.color.mean(0) for s in skins]
    chroma = np.mean([m / max(float(m.mean()), 1.0) for m in means], axis=0)
    for s, m in zip(skins, means):
        target = chroma * float(m.mean())
        s.color = (s.color * (target / np.maximum(m, 1.0))[None, :]).astype(np.float32)


def smooth_margin(margin: np.ndarray, ex: np.ndarray, ey: np.ndarray) -> np.ndarray:
    """(16, 2) the lid margin ((K, 2) px, corner to corner) as a parabola in the face's
    frame: a shut lid is one smooth arc, while the dropped landmarks of a narrow or
    irregular eye zig-zag."""
    x, y = margin @ ex, margin @ ey
    if np.ptp(x) < 2:
        return margin
    xs = np.linspace(x.min(), x.max(), 16)
    ys = np.polyval(np.polyfit(x, y, 2), xs)
    return xs[:, None] * ex[None, :] + ys[:, None] * ey[None, :]


def paint_shut_lid(frame: np.ndarray, crease: np.ndarray, margin: np.ndarray, ex: np.ndarray, ey: np.ndarray,
                   gap: float, skin: LidSkin, closure: float) -> None:
    """Lay one closing lid's skin into ``frame`` (H, W, 3 uint8, in place).

    crease: (K, 2) px, the warped crease ring; margin: (M, 2) px, the warped lid margin
    corner to corner; ex, ey: the face's right and down axes; gap: the open eye's height
    in px; skin: ``lid_skin`` of this lid; closure: 0 open .. 1 shut."""
    opacity, lash_op = paint_opacity(closure), lash_opacity(closure)
    if opacity <= 0:
        return
    margin = smooth_margin(margin, ex, ey)
    eye_w = float(np.linalg.norm(margin[-1] - margin[0]))
    width = max(LASH_MIN_PX, LASH_WIDTH * eye_w)
    n_lash = skin.lashes.shape[0]
    # The skin reaches a lash width below the margin (the arc smooths the dropped
    # landmarks and the photo's own lid edge must not show under it), the lashes
    # their strip's length below it once the lids meet.
    below = width + (n_lash if lash_op > 0 else 0)
    poly = np.concatenate([crease, (margin + below * ey)[::-1]])
    crop = polygon_crop(poly, frame.shape, 4, (3, 3))
    if crop is None:
        return
    mask, (x0, y0, x1, y1) = crop
    xx = np.arange(x0, x1, dtype=np.float32)
    yy = np.arange(y0, y1, dtype=np.float32)[:, None]
    top_y = _ring_at(crease, xx)[None, :]
    bot_y = _ring_at(margin, xx)[None, :]
    frac = (yy - top_y) / np.maximum(bot_y - top_y, 1.0)  # 0 at the crease, 1 at the margin
    u = np.clip((xx - margin[:, 0].min()) / max(np.ptp(margin[:, 0]), 1.0), 0, 1)  # (w,) corner to corner
    # Skin coverage: from the crease down to a lash width past the margin and, once the
    # lids meet, over the strip of eye white the lower lid's landmarks (inside the visible
    # eye) leave below it, fading into the lower lid.
    reach = width + lash_op * COVER_BELOW * gap
    lid_mask = mask * (1 - smoothstep(reach, reach + width + 1.0, yy - bot_y))
    a = cv2.GaussianBlur(lid_mask * smoothstep(0.0, LID_FADE, frac), (0, 0), max(0.7, 0.08 * gap)) * opacity
    # The lid skin: its colour column by column, lit mid-lid and a little darker towards
    # the crease and the lashes (the eyeball under it), and the photo's grain carried
    # with the margin (rows counted up from it, mirrored to tile the band).
    color = np.stack([np.interp(u, np.linspace(0, 1, len(skin.color)), skin.color[:, c]) for c in range(3)], -1)
    # At the crease the lid meets the skin above it at that skin's own colour (in this
    # frame, per column), so no edge shows where the skin fades in.
    k = np.arange(1, max(2, int(np.round(TOP_BAND * gap))) + 1, dtype=np.float32)
    ty = (top_y - k[:, None]).astype(np.float32)
    above = cv2.remap(frame, np.broadcast_to(xx[None, :], ty.shape).astype(np.float32), ty, cv2.INTER_LINEAR,
                      borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    top_color = cv2.GaussianBlur(np.median(above, 0)[None], (0, 0), max(1.0, 0.1 * eye_w))[0]
    color = top_color[None] + (color - top_color)[None] * (BELOW_SHARE * smoothstep(0.0, 1.0, frac))[..., None]
    shade = 1 - (LID_SHADE[0] + (LID_SHADE[1] - LID_SHADE[0]) * lash_op) * (1 - np.sin(np.pi * np.clip(frac, 0, 1)))
    g_h, g_w = skin.grain.shape
    d = np.abs(bot_y - yy)  # px from the margin
    period = 2 * max(g_h - 1, 1)
    row = np.abs((d % period) - (g_h - 1)) if g_h > 1 else np.zeros_like(d)
    row = (g_h - 1) - row  # 0 at the margin, mirrored back and forth
    col = np.broadcast_to(u[None, :] * (g_w - 1), row.shape).astype(np.float32)
    grain = cv2.remap(skin.grain, col, row.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    lid = color * shade[..., None] + grain[..., None]
    sub = frame[y0:y1, x0:x1].astype(np.float32)
    out = sub * (1 - a[..., None]) + lid * a[..., None]
    if lash_op > 0:
        # The photo's own lashes, turned down over the lower lid as on a shut eye: row j
        # below the margin shows the strip j px above the open lid's margin.
        j = np.clip(yy - bot_y - 0.5 * width, -1, None)
        inside = (j >= 0) & (j < n_lash) & (mask > 0)
        lrow = np.clip(j, 0, n_lash - 1).astype(np.float32)
        lcol = np.broadcast_to(u[None, :] * (skin.lashes.shape[1] - 1), lrow.shape).astype(np.float32)
        lash_rgb = cv2.remap(skin.lashes, lcol, lrow, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        la = cv2.remap(skin.lash_alpha, lcol, lrow, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        la = LASH_OPACITY * la * inside * lash_op * (1 - j / n_lash)  # thinning towards the tips
        out = out * (1 - la[..., None]) + lash_rgb * la[..., None]
        # The line where the lids meet: however fair the lashes it is dark, and it is what
        # marks an eye as shut, to a viewer and to a landmark model.
        t = np.linspace(-1, 1, len(margin))[:, None]
        half = 0.5 * width * (0.4 + 0.6 * (1 - t ** 2)) * ey[None, :]
        crescent = np.concatenate([margin - half, (margin + half)[::-1]]) - [x0, y0]
        line = np.zeros(mask.shape, np.float32)
        cv2.fillPoly(line, [np.round(crescent * 8).astype(np.int32)], 1.0, cv2.LINE_AA, 3)
        line = cv2.GaussianBlur(line, (0, 0), 0.7) * (LASH_OPACITY * lash_op)
        lash = np.minimum(skin.lash, LASH_MAX_SHARE * skin.color.mean(0))
        out = out * (1 - line[..., None]) + lash * line[..., None]
    frame[y0:y1, x0:x1] = np.clip(out + 0.5, 0, 255).astype(np.uint8)
