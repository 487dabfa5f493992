"""Eyelids and blinks (issue 13): shut lids made from the photo's own skin, blinks that
vary from one to the next and reopen more slowly than they close."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from phototalk.motion.analytic import blink_curve
from phototalk.render.lids import lid_skin, match_eyes, paint_shut_lid

from conftest import asset

FPS = 25
SKIN = np.array([196.0, 150.0, 128.0])
GRAIN_SIGMA = 7.0  # 8-bit levels of the synthetic photo's grain
EX, EY = np.array([1.0, 0.0]), np.array([0.0, 1.0])


def _blinks(b: np.ndarray) -> list[np.ndarray]:
    """The closure values of each blink (runs of b > 0) in a blink channel."""
    on = b > 0
    cuts = np.nonzero(np.diff(on.astype(int)))[0] + 1
    return [r for r in np.split(b, cuts) if r[0] > 0]


@pytest.mark.parametrize("seed", range(3))
def test_blinks_vary_and_reopen_more_slowly_than_they_close(seed):
    """Real blinks: below half-open 1.5-6 frames at 25 fps, varying from blink to blink,
    the lids falling faster than they rise, and some blinks stopping short of shut.
    Every blink used to be one template (the same frame count every time)."""
    blinks = _blinks(blink_curve(FPS * 120, FPS, np.random.default_rng(seed)))
    assert len(blinks) >= 25
    full = [b for b in blinks if b.max() > 0.9]
    below_half = np.array([np.count_nonzero(b > 0.5) for b in full])
    # Over half shut 3-6 frames in the channel: MediaPipe, slower than the lids, reads
    # 2-5 frames below half-open on rendered videos (measure.py's blink_shape).
    assert 3 <= below_half.mean() <= 6 and below_half.std() > 0.3, below_half
    # Frames from a fifth shut to the deepest point, and from there back to a fifth: a
    # lid less than a fifth shut reads 0.85-0.9 of open to MediaPipe (measure.py counts
    # from 0.9), the exponential rise's last tenth is a slow settle it does not see.
    closing = np.array([int(np.argmax(b)) - int(np.argmax(b >= 0.2)) for b in full])
    reopening = np.array([int(np.argmax(b[np.argmax(b):] < 0.2)) for b in full])
    assert reopening.mean() > closing.mean() + 1, (closing, reopening)
    assert closing.max() <= 4 and 3 <= reopening.mean() <= 7
    partial = [b for b in blinks if b.max() <= 0.9]
    assert 0.05 <= len(partial) / len(blinks) <= 0.4
    assert all(b.max() >= 0.45 for b in partial)  # still a visible blink


@pytest.mark.parametrize("seed", range(3))
def test_full_blinks_rest_shut_long_enough_for_deep_set_eyes(seed):
    """MediaPipe reads a deep-set or low-contrast eye (Mona Lisa's shadowed sockets) below
    half-open only while the lid is past ~0.8 shut. A full blink stays there 2 frames or
    more at 25 fps (mean >= 2.2), while past half shut, what most faces read, it stays
    at most 5. With the old 0.01-0.04 s rest the blinks stayed past 0.8 for 1.6-1.9
    frames on average (a third of them 1 frame): measure.py read Mona Lisa's blinks 1.7
    frames below half at --speed 1.9, one of three too short to count."""
    full = [b for b in _blinks(blink_curve(FPS * 120, FPS, np.random.default_rng(seed))) if b.max() > 0.9]
    shut = np.array([np.count_nonzero(b > 0.8) for b in full])
    assert shut.mean() >= 2.2 and np.mean(shut >= 2) >= 0.9, shut
    assert max(np.count_nonzero(b > 0.5) for b in full) <= 5


def test_short_clips_blinks_differ_where_deep_set_eyes_read_them():
    """The full blinks of an 8- or 10-s clip differ in frames past 0.8 shut too (what a
    deep-set eye reads), not only past half shut: before, 22 of 55 such clips had all
    their full blinks alike there (measure.py's blink_shape spread 0 on such a face)."""
    alike = clips = 0
    for n in (200, 250):
        for seed in range(40):
            full = [b for b in _blinks(blink_curve(n, FPS, np.random.default_rng(seed))) if b.max() > 0.9]
            if len(full) >= 2:
                clips += 1
                alike += len({np.count_nonzero(b > 0.8) for b in full}) == 1
    assert clips >= 40 and alike <= 0.15 * clips, (alike, clips)


def test_same_seed_same_blinks():
    a = blink_curve(FPS * 30, FPS, np.random.default_rng(7))
    b = blink_curve(FPS * 30, FPS, np.random.default_rng(7))
    assert np.array_equal(a, b) and not np.array_equal(a, blink_curve(FPS * 30, FPS, np.random.default_rng(8)))


def _ring(cx: float, cy: float, half_w: float, height: float, n: int) -> np.ndarray:
    """(n, 2) px points of an arc over an eye, corner to corner, bulging by ``height``."""
    t = np.linspace(-1, 1, n)
    return np.stack([cx + half_w * t, cy - height * (1 - t ** 2)], 1)


def _portrait(shadow: tuple[bool, bool] = (False, False)) -> tuple[np.ndarray, list[dict]]:
    """A grainy skin image with two open eyes (white, dark iris, dark lash line), the
    ones flagged in ``shadow`` with a dark eyeshadow band between fold and crease.
    Returns the (H, W, 3) uint8 image and per eye its rings (px)."""
    rng = np.random.default_rng(0)
    h, w = 200, 320
    img = SKIN[None, None, :] + rng.normal(0, GRAIN_SIGMA, (h, w, 1)) * np.array([1.0, 0.9, 0.85])
    eyes = []
    for cx, shade in zip((100.0, 220.0), shadow):
        margin = _ring(cx, 90, 30, 12, 9)
        lower = _ring(cx, 92, 30, -6, 9)
        fold, crease = _ring(cx, 84, 28, 12, 7), _ring(cx, 74, 30, 12, 7)
        if shade:
            band = np.concatenate([crease, fold[::-1]])
            cv2.fillPoly(img, [np.round(band).astype(np.int32)], (120.0, 80.0, 70.0), cv2.LINE_AA)
        opening = np.concatenate([margin, lower[::-1]])
        cv2.fillPoly(img, [np.round(opening).astype(np.int32)], (235.0, 232.0, 228.0), cv2.LINE_AA)
        cv2.circle(img, (int(cx), 86), 9, (60.0, 40.0, 30.0), -1, cv2.LINE_AA)
        cv2.polylines(img, [np.round(margin).astype(np.int32)], False, (35.0, 25.0, 22.0), 2, cv2.LINE_AA)
        eyes.append(dict(margin=margin, lower=lower, fold=fold, crease=crease, gap=18.0))
    return np.clip(img + 0.5, 0, 255).astype(np.uint8), eyes


def _shut(img: np.ndarray, eyes: list[dict]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Paint both lids shut (the margin dropped onto the lower lid; the crease stays, as
    the warped frame above the renderer's lowered crease is the skin above the photo's
    crease); returns the frame and per eye a mask of the lid's middle (clear of
    its fading rim and of the lash line)."""
    skins = [lid_skin(img, e["margin"], e["lower"], e["gap"]) for e in eyes]
    match_eyes(skins)
    frame = img.copy()
    masks = []
    for e, skin in zip(eyes, skins):
        margin = e["margin"] + [0.0, 1.0] * (e["lower"] - e["margin"])
        crease = e["crease"]
        paint_shut_lid(frame, crease, margin, EX, EY, e["gap"], skin, 1.0)
        m = np.zeros(img.shape[:2], bool)
        cx = e["margin"][:, 0].mean()
        for x in range(int(cx - 15), int(cx + 15)):
            yt = np.interp(x, crease[:, 0], crease[:, 1])
            yb = np.interp(x, margin[:, 0], margin[:, 1])
            m[int(np.ceil(yt + 0.5 * (yb - yt))):int(np.floor(yb - 3)), x] = True
        masks.append(m)
    return frame, masks


def _grain(frame: np.ndarray) -> np.ndarray:
    lum = frame.astype(np.float32).mean(2)
    return lum - cv2.GaussianBlur(lum, (0, 0), 2.0)


def test_shut_lid_carries_the_photos_grain():
    """The shut lid is the photo's skin, grain included: its fine texture is as strong as
    the skin around the eye. A filled-in patch with a trace of grain reads as smooth
    plaster on a grainy photo."""
    img, eyes = _portrait()
    frame, masks = _shut(img, eyes)
    skin = _grain(img)[150:190, 20:300].std()
    for m in masks:
        assert m.sum() > 150
        ratio = _grain(frame)[m].std() / skin
        assert 0.6 <= ratio <= 1.5, ratio
        # No eye white or iris left under the lid.
        assert frame[m].astype(float).mean(0) @ [1, 1, 1] / 3 < 215


def test_both_shut_lids_alike_and_skin_coloured():
    """One eye wears a dark eyeshadow band above its lashes, the other not: the shut lids
    still come out in one skin tone, close to the face's skin (the old lid sampled the
    band and painted the two eyes differently)."""
    img, eyes = _portrait(shadow=(True, False))
    frame, masks = _shut(img, eyes)
    c = [frame[m].astype(float).mean(0) for m in masks]
    assert np.abs(c[0] - c[1]).max() < 12, c
    for ci in c:
        assert np.abs(ci - SKIN).max() < 30, ci


@pytest.mark.parametrize("name", ["painting_mona_lisa.jpg", "photo_woman_frontal.png"])
def test_onset_draws_no_dark_line_across_the_open_eye(name):
    """Less than half shut, the iris still shows: what covers it is the photo's own lid
    coming down (and lid skin over the stretched band), not a dark lash line drawn across
    the open eye. The old paint put 36 such pixels on the woman at closure 0.45, 5 on
    Mona Lisa."""
    from PIL import Image

    from phototalk.pipeline import prepare_rig
    from phototalk.render.warp import MeshWarpRenderer

    r = MeshWarpRenderer(prepare_rig(np.array(Image.open(asset("images", name)).convert("RGB")), size=512))
    painted = r.render(blink=0.45)
    r._paint_lids = lambda *a, **k: None  # the same frame without the lid paint
    bare = r.render(blink=0.45)
    x, y, w, h = r.region_box("eyes")
    a, b = (f[y:y + h, x:x + w].astype(int).sum(2) for f in (painted, bare))
    # Pixels the paint made clearly darker, down to dark-line levels (not skin over eye white).
    line = np.count_nonzero((a < b - 30) & (a < 0.7 * np.median(b)))
    assert line <= 0.0005 * w * h, line


def test_rendered_blinks_reopen_more_slowly_than_they_close_on_landmarks():
    """measure.py's blink_shape on a rendered clip (the astronaut at 256 px, three blinks
    of quick, middle and slow tempo, landmarks re-detected per frame): every blink goes
    below half the median openness, each one's reopening (deepest frame back to 0.9 of
    the median) is longer than its closing, and the blinks do not all last alike. With the old (1 - r)^2 rise a quick blink read as long closing as
    reopening (smiling portrait at --speed 1.9: closing 3.7, reopening 2.7 frames)."""
    from skimage import data

    import pixels
    from phototalk.motion.analytic import (BLINK_CLOSE_S, BLINK_HOLD_S, BLINK_RISE_TAU_S, blink_shape)
    from phototalk.pipeline import prepare_rig
    from phototalk.render.warp import MeshWarpRenderer

    r = MeshWarpRenderer(prepare_rig(data.astronaut(), size=256))
    t = np.arange(int(3.9 * FPS)) / FPS
    closure = np.zeros(len(t))
    for start, tempo in ((0.42, 0.0), (1.61, 0.5), (2.83, 1.0)):
        k = [lo + tempo * (hi - lo) for lo, hi in (BLINK_CLOSE_S, BLINK_HOLD_S, BLINK_RISE_TAU_S)]
        closure = np.maximum(closure, blink_shape(t - start, *k))
    eye = np.array([pixels.eye_open(lm) for lm in pixels.landmarks([r.render(blink=float(c)) for c in closure])])
    assert np.isfinite(eye).all()
    med = np.median(eye)
    low = eye < 0.5 * med
    runs = np.split(np.arange(len(eye)), np.nonzero(np.diff(low.astype(int)))[0] + 1)
    events = []
    for run in (r_ for r_ in runs if low[r_[0]]):
        m = run[0] + int(np.argmin(eye[run]))
        a = m
        while a > 0 and eye[a] < 0.9 * med:
            a -= 1
        b = m
        while b < len(eye) - 1 and eye[b] < 0.9 * med:
            b += 1
        events.append((m - a, b - m, len(run)))
    ev = np.array(events)
    assert len(ev) == 3, (ev, np.round(eye / med, 2))
    # Every blink, the quick one included (the old rise read 4 / 4 frames on its middle
    # blink, 3 frames longer reopening than closing on average; now 2/5, 2/6, 1/9).
    assert (ev[:, 1] > ev[:, 0]).all() and ev[:, 1].mean() >= ev[:, 0].mean() + 3, (ev, np.round(eye / med, 2))
    assert 2 <= ev[:, 2].mean() <= 5 and ev[:, 2].std() > 0, ev


def test_painted_shut_lid_reads_shut_on_a_deep_set_painted_eye():
    """Mona Lisa's nearly and fully shut lids (0.7-1.0 closure), facing and turned ~7°,
    as the landmark model reads them: an evenly lit lid between the socket's shadow and
    the lash line read as a slit of eye, 0.38 of open on average (measure.py, on the
    encoded clip at --speed 1.9, read one blink's shut frames 0.51-0.58: never below
    half); the lid rounded over the eyeball, darker at the crease and the lashes, reads
    0.35. (A small margin: MediaPipe reads this painting's shut eye as a narrow eye
    whatever the lid's tone, grain, lash line or drop.)"""
    from PIL import Image

    import pixels
    from phototalk.pipeline import prepare_rig
    from phototalk.render.warp import MeshWarpRenderer

    r = MeshWarpRenderer(prepare_rig(np.array(Image.open(asset("images", "painting_mona_lisa.jpg")).convert("RGB")),
                                     size=512))
    reads = []
    for yaw in (0.0, -0.116):
        frames = [r.render(yaw=yaw)] + [r.render(blink=c, yaw=yaw) for c in (0.7, 0.8, 0.9, 1.0)]
        eye = np.array([pixels.eye_open(lm) for lm in pixels.landmarks(frames)])
        assert np.isfinite(eye).all()
        reads += list(eye[1:] / eye[0])
    assert np.mean(reads) <= 0.365 and max(reads) < 0.5, np.round(reads, 2)
