"""Head motion that leans towards the camera on a portrait that is already turned or tilted.

A motion model draws the head's sway relative to the photo, not knowing how the face in it
sits. On a portrait already turned (yaw) or tilted (roll), a swing further the same way takes
the face further from frontal and upright than anything in the photo: the far cheek
foreshortens more, and a face recogniser trained on near-frontal, upright faces loses it
(dlib's detector on photo_man_webcam.jpg, tilted -6 deg: score 0.6 upright-ward at +4..6 deg
of roll, below 0 - missed - at -4 deg; on photo_woman_slight_turn.jpg, turned +9 deg, the
identity distance reads 0.23-0.26 at +12 deg of yaw against 0.14-0.17 at -12 deg).

So once the portrait is known, ``toward_frontal`` bends the track's yaw and roll: motion
back towards frontal/upright keeps its full size, motion away from it (further to the
photo's side, or on past frontal to the other side, where the photo's foreshortened far
cheek would be stretched) shrinks by a gain that falls with how far the photo already is
from frontal (``far_side_gain``) and bends towards FAR_LIMIT_RAD beyond the photo, with
smooth changes of slope so the head's acceleration stays continuous; the roll also leans
upright for good (ROLL_UPRIGHT_SHARE). Pitch is left alone: the landmarks give no reliable
"level" reference for it (MediaPipe's forehead-to-chin depth reads -5..25 deg on the ten
evaluation portraits, most of them near level). The head still moves both ways on every axis.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..face import landmarks as L
from .expressive import GAZE_VOR, soft_limit
from .track import MotionTrack

# Mirror pairs of MediaPipe mesh points (image-left point, image-right point on a frontal
# face): eye corners, lid middles, brows, mouth corners, nose wings, cheek and jaw contour.
# Spread over the face so one badly placed point moves the estimate little.
MIRROR_PAIRS = np.array([(33, 263), (133, 362), (159, 386), (145, 374), (70, 300), (105, 334), (61, 291),
                         (98, 327), (50, 280), (234, 454), (127, 356), (93, 323), (132, 361), (58, 288),
                         (172, 397)])
# rad; a photo turned or tilted less than this is taken as frontal (estimation noise): its
# motion is left as it is
FRONTAL_RAD = np.radians(2.0)
# rad beyond FRONTAL_RAD at which motion away from frontal keeps half its size
FAR_HALF_RAD = np.radians(4.0)
# Motion away from frontal keeps at least this share, so even a profile-like painting still
# turns both ways visibly.
FAR_GAIN_MIN = 0.35
# rad; beyond the photo's own pose, the turn further away bends (continuous slope) from
# FAR_KNEE_RAD towards FAR_LIMIT_RAD: at --speed 1.9 the shrunken sway still took
# photo_man_webcam 6-7 deg further away from frontal, where dlib lost it again.
FAR_KNEE_RAD, FAR_LIMIT_RAD = np.radians(2.0), np.radians(4.5)
# rad; the width of the smooth changes of slope: a kink would jolt the head's speed
# (measure.py's landmark jitter) every time the sway crosses it.
BEND_WIDTH_RAD = np.radians(1.5)
# Share of the photo's tilt the head takes back for the whole clip: dlib's frontal detector
# is trained on upright faces; -6 deg of tilt in photo_man_webcam.jpg plus a -2..-4 deg sway
# lost the face in 8-14 % of the frames (with the yaw bent: 0.4 of the way upright left
# 2.4-4.8 % at --speed 1, 0.6 left 0.8 %). (No such lean for the yaw: turning a turned face
# towards the camera for good would stretch its foreshortened far cheek for the whole clip.)
ROLL_UPRIGHT_SHARE = 0.6


def portrait_pose(landmarks: np.ndarray) -> tuple[float, float]:
    """(yaw, roll) in radians of the head in a portrait, from its (478, 3) or (468, 3)
    MediaPipe landmarks in pixels (z away from the viewer, the renderer's axes): 0, 0 for a
    frontal, upright face; signs as MotionTrack's head_yaw (+ = nose towards the image's
    right) and head_roll (+ = clockwise).

    yaw: the mirror pairs' left-to-right vectors lie in the image plane on a frontal face
    and tip in depth on a turned one; roll: the slope of the line through the eye corners."""
    lm = np.asarray(landmarks, np.float64)
    across = lm[MIRROR_PAIRS[:, 1]] - lm[MIRROR_PAIRS[:, 0]]  # (k, 3)
    yaw = float(np.arctan2(across[:, 2].sum(), across[:, 0].sum()))
    eyes = lm[L.EYE_OUTER_R, :2] - lm[L.EYE_OUTER_L, :2]  # image-left to image-right eye corner
    roll = float(np.arctan2(eyes[1], eyes[0]))
    return yaw, roll


def far_side_gain(photo_rad: float) -> float:
    """Share of its size a motion away from frontal keeps on a photo turned ``photo_rad``:
    1 up to FRONTAL_RAD, then falling (continuously) to FAR_GAIN_MIN."""
    return max(FAR_GAIN_MIN, 1.0 / (1.0 + max(0.0, abs(photo_rad) - FRONTAL_RAD) / FAR_HALF_RAD))


def _log_cosh(x: np.ndarray) -> np.ndarray:
    a = np.abs(x)
    return a + np.log1p(np.exp(-2.0 * a)) - np.log(2.0)


def bend_away(x: np.ndarray, photo_rad: float, lean: float = 0.0) -> np.ndarray:
    """``x`` (any shape, rad of motion relative to a photo turned ``photo_rad``) shifted
    by ``lean`` x ``photo_rad`` towards frontal and bent: slope 1 while the head turns back
    towards frontal, ``far_side_gain(photo_rad)`` while it turns further away from it, on
    the photo's side or past frontal on the other; the slopes change smoothly over
    BEND_WIDTH_RAD. Further away on the photo's side it bends towards FAR_LIMIT_RAD.
    With ``lean`` 0, 0 stays 0 (the photo's own pose)."""
    g = far_side_gain(photo_rad)
    if g == 1.0:
        return x
    w, a = BEND_WIDTH_RAD, abs(photo_rad)
    u = -np.sign(photo_rad) * (np.asarray(x, np.float64) - lean * photo_rad) / w  # + towards frontal
    # slope in u: g + (1 - g) (S(u) - S(u - a/w)), S(z) = (1 + tanh z) / 2; integrated from 0
    f = w * (g * u + (1 - g) / 2 * (_log_cosh(u) - _log_cosh(u - a / w) + _log_cosh(np.full_like(u, a / w))))
    f = np.where(f < 0, -soft_limit(-f, FAR_KNEE_RAD, FAR_LIMIT_RAD), f)
    return (-np.sign(photo_rad) * f).astype(np.asarray(x).dtype)


def toward_frontal(track: MotionTrack, pose: tuple[float, float]) -> MotionTrack:
    """``track`` with its head yaw and roll bent towards frontal and upright for a portrait
    whose head sits at ``pose`` ((yaw, roll) rad, see ``portrait_pose``); the eyes cancel
    GAZE_VOR of the yaw's change (all of it with --gaze camera), as they cancelled the
    drawn turn. A track
    whose head does not move at all (--still) is returned as it is: a still head stays
    exactly as the photo holds it."""
    if not (np.any(track.head_yaw) or np.any(track.head_pitch) or np.any(track.head_roll)):
        return track
    yaw0, roll0 = pose
    yaw = bend_away(track.head_yaw, yaw0)
    roll = bend_away(track.head_roll, roll0, ROLL_UPRIGHT_SHARE)
    gaze = track.gaze_yaw
    if gaze is not None:
        # eyes that cancel the whole turn (--gaze camera) keep holding eye contact
        vor = 1.0 if np.allclose(gaze, -track.head_yaw) else GAZE_VOR
        gaze = (gaze - vor * (yaw - track.head_yaw)).astype(np.float32)
    return replace(track, head_yaw=yaw, head_roll=roll, gaze_yaw=gaze)
