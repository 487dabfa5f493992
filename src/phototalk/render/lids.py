"""Shut eyelids over a warped eye: lid skin from the crease down, and one lash line.

When a lid is warped shut, the band between the crease and the lid margin is the
photo's upper lid, lashes and liner stretched over the eyeball. Shown as it is, it
reads as a slit of open eye (to viewers and to landmark models), and stretched lashes
or liner break into zig-zag streaks. So that band is filled in from the skin around
it (its dark rim lifted first), keeps only a trace of its fine texture, is shaded as
a lid rounded over an eyeball, and gets a smooth lash line along the margin. Shared by
the photo renderer (blinks) and the video editor (``edit --close-eyes``).
"""
from __future__ import annotations

import cv2
import numpy as np

from .mouth import polygon_crop, smoothstep

# Share of the band's fine texture a painted lid keeps, and its cap in 8-bit levels:
# enough grain to read as skin, too little for stretched lashes to show as streaks.
LID_GRAIN, LID_GRAIN_MAX = 0.3, 4.0
LID_COLOR_PULL = 0.33  # share of the sampled lid colour in a shut lid (the rest: the skin around it)
LID_RIM_FLOOR = 0.7  # the band's rim is lifted to at least this share of the lid colour before filling
LID_BELOW_SHADE = 0.93  # a lid is a little darker than the skin under the eye
LID_SHADE = 0.08  # how much darker a shut lid is at the crease and the lashes than mid-lid
LID_FADE = 0.25  # share of the crease-to-margin span over which the paint fades in
LASH_WIDTH, LASH_MIN_PX = 0.035, 1.3  # lash line, in eye widths, and its least width in px
LASH_MAX_SHARE = 0.3  # the lash line is at most this share of the lid colour
LASH_OPACITY = 0.9


def paint_opacity(closure: float) -> float:
    """Opacity of the lid paint at lid closure 0 (open) .. 1 (shut): from 0.15 on, full
    from 0.65 (a half-shut band already shows stretched lashes)."""
    return float(smoothstep(0.15, 0.65, closure))


def _median_at(image: np.ndarray, pts: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    p = np.round(pts).astype(int)
    p[:, 0] = np.clip(p[:, 0], 0, w - 1)
    p[:, 1] = np.clip(p[:, 1], 0, h - 1)
    return np.median(image[p[:, 1], p[:, 0]].astype(np.float32), axis=0)


def lid_color(image: np.ndarray, fold: np.ndarray, crease: np.ndarray, lower: np.ndarray, gap: float,
              ey: np.ndarray) -> np.ndarray:
    """(3,) float32 RGB a shut lid shows: the brighter of the skin between the fold and
    crease rings ((K, 2) px each) and, a shade darker, the skin below the lower lid
    ((M, 2) px; ``gap`` the eye's height in px, ``ey`` the face's down axis). The lid
    over the eyeball catches more light than the socket around an open eye, and the
    darker sample is the one touched by liner, eyeshadow or under-eye shadow."""
    a = _median_at(image, 0.4 * fold + 0.6 * crease)
    b = LID_BELOW_SHADE * _median_at(image, lower + 1.4 * max(gap, 2.0) * ey)
    return a if a.sum() >= b.sum() else b


def lash_color(image: np.ndarray, margin: np.ndarray, ey: np.ndarray) -> np.ndarray:
    """(3,) float32 RGB of the upper lash line: the darker pixels on and just above the
    open lid's margin ((K, 2) px): lashes, liner or the lid's shadow."""
    h, w = image.shape[:2]
    p = np.round(np.concatenate([margin + k * ey for k in (-2.0, -1.0, 0.0)])).astype(int)
    p[:, 0] = np.clip(p[:, 0], 0, w - 1)
    p[:, 1] = np.clip(p[:, 1], 0, h - 1)
    c = image[p[:, 1], p[:, 0]].astype(np.float32)
    return c[c.sum(1) <= np.percentile(c.sum(1), 30)].mean(0)


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
                   gap: float, color: np.ndarray, lash: np.ndarray, opacity: float) -> None:
    """Paint one shut (or shutting) lid into ``frame`` (H, W, 3 uint8, in place).

    crease: (K, 2) px, the warped crease ring; margin: (M, 2) px, the warped lid margin
    corner to corner; ex, ey: the face's right and down axes; gap: the open eye's height
    in px; color, lash: RGB of lid skin and lash line; opacity: ``paint_opacity``."""
    if opacity <= 0:
        return
    margin = smooth_margin(margin, ex, ey)
    eye_w = float(np.linalg.norm(margin[-1] - margin[0]))
    width = max(LASH_MIN_PX, LASH_WIDTH * eye_w)
    # The paint reaches a lash width below the margin: the arc smooths the dropped
    # landmarks, and the photo's own lid edge must not show under it.
    poly = np.concatenate([crease, (margin + width * ey)[::-1]])
    crop = polygon_crop(poly, frame.shape, 4, (3, 3))
    if crop is None:
        return
    mask, (x0, y0, x1, y1) = crop
    xx = np.arange(x0, x1, dtype=np.float32)
    yy = np.arange(y0, y1, dtype=np.float32)[:, None]
    top_y = np.interp(xx, *(crease[np.argsort(crease[:, 0])].T))[None, :]
    bot_y = np.interp(xx, *(margin[np.argsort(margin[:, 0])].T))[None, :]
    frac = (yy - top_y) / np.maximum(bot_y - top_y, 1.0)  # 0 at the crease, 1 at the margin
    a = cv2.GaussianBlur(mask * smoothstep(0.0, LID_FADE, frac), (0, 0), max(0.7, 0.06 * gap)) * opacity
    sub = frame[y0:y1, x0:x1].astype(np.float32)
    local = cv2.GaussianBlur(sub, (0, 0), max(1.0, 0.25 * gap))
    grain = np.clip(LID_GRAIN * (sub - local), -LID_GRAIN_MAX, LID_GRAIN_MAX)
    # Lit mid-lid, a little darker towards the crease and the lashes (the eyeball under it).
    shade = 1 - LID_SHADE * (1 - np.sin(np.pi * np.clip(frac, 0, 1)))
    # The band filled in from the skin around it, so it meets socket and cheek at their
    # own colour; liner, lashes or a brow on its rim would fill it grey, so the rim is
    # lifted first. Then pulled a third of the way to the sampled lid colour.
    hole = (cv2.GaussianBlur(mask, (0, 0), 1.0) > 0.02).astype(np.uint8)
    rim = np.maximum(sub, LID_RIM_FLOOR * color).astype(np.uint8)
    fill = cv2.inpaint(rim, hole, 3, cv2.INPAINT_TELEA).astype(np.float32)
    fill = cv2.GaussianBlur(fill, (0, 0), max(1.0, 0.15 * gap))
    skin = (1 - LID_COLOR_PULL) * fill + LID_COLOR_PULL * color
    out = sub * (1 - a[..., None]) + (skin * shade[..., None] + grain) * a[..., None]
    # The lash line: a dark crescent along the margin, thickest mid-lid.
    t = np.linspace(-1, 1, len(margin))[:, None]
    half = 0.5 * width * (0.4 + 0.6 * (1 - t ** 2)) * ey[None, :]
    crescent = np.concatenate([margin - half, (margin + half)[::-1]]) - [x0, y0]
    line = np.zeros(mask.shape, np.float32)
    cv2.fillPoly(line, [np.round(crescent * 8).astype(np.int32)], 1.0, cv2.LINE_AA, 3)
    line = cv2.GaussianBlur(line, (0, 0), 0.7) * (LASH_OPACITY * opacity)
    # However fair the lashes, the line where the lids meet is dark: it is what marks
    # an eye as shut, to a viewer and to a landmark model.
    lash = np.minimum(lash, LASH_MAX_SHARE * color)
    out = out * (1 - line[..., None]) + lash * line[..., None]
    frame[y0:y1, x0:x1] = np.clip(out + 0.5, 0, 255).astype(np.uint8)
