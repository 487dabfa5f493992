"""MotionTrack -> Apple ARKit blendshapes, written as a Live Link Face CSV.

Live Link Face (Epic Games' iOS capture app) records one row per frame: a ``Timecode``
(HH:MM:SS:FF.mmm), ``BlendShapeCount`` (61), the 52 ARKit blendshape weights (0..1) in
Unreal's ``EARFaceBlend`` order, then head and eye rotations. Animators import these
files into Unreal, Blender or Maya, so a phototalk performance can drive a 3-D rig.

The mapping from our controls is a linear retarget with each control's full range
mapped to a weight of 1 and clipped; head and eye rotations are written in radians
(our convention: yaw + = towards the image's right, pitch + = chin/eyes down).
"""
from __future__ import annotations

import csv
import os

import numpy as np

from .track import MotionTrack

BLENDSHAPES = (
    "EyeBlinkLeft", "EyeLookDownLeft", "EyeLookInLeft", "EyeLookOutLeft", "EyeLookUpLeft", "EyeSquintLeft",
    "EyeWideLeft", "EyeBlinkRight", "EyeLookDownRight", "EyeLookInRight", "EyeLookOutRight", "EyeLookUpRight",
    "EyeSquintRight", "EyeWideRight", "JawForward", "JawLeft", "JawRight", "JawOpen", "MouthClose", "MouthFunnel",
    "MouthPucker", "MouthLeft", "MouthRight", "MouthSmileLeft", "MouthSmileRight", "MouthFrownLeft",
    "MouthFrownRight", "MouthDimpleLeft", "MouthDimpleRight", "MouthStretchLeft", "MouthStretchRight",
    "MouthRollLower", "MouthRollUpper", "MouthShrugLower", "MouthShrugUpper", "MouthPressLeft", "MouthPressRight",
    "MouthLowerDownLeft", "MouthLowerDownRight", "MouthUpperUpLeft", "MouthUpperUpRight", "BrowDownLeft",
    "BrowDownRight", "BrowInnerUp", "BrowOuterUpLeft", "BrowOuterUpRight", "CheekPuff", "CheekSquintLeft",
    "CheekSquintRight", "NoseSneerLeft", "NoseSneerRight", "TongueOut",
)
ROTATIONS = ("HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
             "RightEyeYaw", "RightEyePitch", "RightEyeRoll")
HEADER = ("Timecode", "BlendShapeCount") + BLENDSHAPES + ROTATIONS
assert len(BLENDSHAPES) == 52

JAW_FULL_IOD = 0.35  # jaw_open (iod) that counts as JawOpen = 1
EYE_LOOK_FULL_RAD = np.radians(25.0)  # eye turn that counts as EyeLook* = 1
STRETCH_FULL = 0.2  # mouth_wide that counts as MouthStretch = 1


def blendshapes(track: MotionTrack) -> np.ndarray:
    """(n_frames, 52) float32 ARKit weights in 0..1, columns in BLENDSHAPES order."""
    n = track.n_frames
    W = {name: np.zeros(n, np.float32) for name in BLENDSHAPES}
    pos = lambda x: np.clip(x, 0, 1)  # noqa: E731
    sq = track.eye_squint
    for side in ("Left", "Right"):
        W[f"EyeBlink{side}"] = pos(track.blink)
        W[f"EyeSquint{side}"] = pos(sq)
        W[f"EyeWide{side}"] = pos(-sq)
        W[f"EyeLookDown{side}"] = pos(track.gaze_pitch / EYE_LOOK_FULL_RAD)
        W[f"EyeLookUp{side}"] = pos(-track.gaze_pitch / EYE_LOOK_FULL_RAD)
        W[f"MouthSmile{side}"] = pos(track.smile)
        W[f"MouthFrown{side}"] = pos(-track.smile)
        W[f"MouthStretch{side}"] = pos(track.mouth_wide / STRETCH_FULL)
        W[f"CheekSquint{side}"] = pos(track.cheek)
        W[f"BrowDown{side}"] = pos(np.maximum(track.brow_squeeze, -track.brow_up))
        W[f"BrowOuterUp{side}"] = pos(track.brow_up)
    # Gaze towards the image's right is towards the subject's left: the subject's left
    # eye looks out, the right eye looks in.
    look = track.gaze_yaw / EYE_LOOK_FULL_RAD
    W["EyeLookOutLeft"], W["EyeLookInLeft"] = pos(look), pos(-look)
    W["EyeLookInRight"], W["EyeLookOutRight"] = pos(look), pos(-look)
    W["JawOpen"] = pos(track.jaw_open / JAW_FULL_IOD)
    W["MouthClose"] = pos((track.jaw_open - track.mouth_open) / JAW_FULL_IOD)  # lips shut over an open jaw
    W["MouthFunnel"] = pos(0.6 * track.mouth_round)
    W["MouthPucker"] = pos(track.mouth_round)
    W["MouthRollLower"] = pos(track.lip_tuck)
    W["BrowInnerUp"] = pos(np.maximum(track.brow_inner, track.brow_up))
    return np.stack([W[name] for name in BLENDSHAPES], 1).astype(np.float32)


def timecode(i: int, fps: float) -> str:
    """Live Link Face's HH:MM:SS:FF.mmm timecode of frame ``i`` counted from 0."""
    t = i / fps
    whole = int(t)
    frame = (t - whole) * fps
    ff = int(frame)
    sub = int(round((frame - ff) * 1000))
    if sub == 1000:
        ff, sub = ff + 1, 0
    return f"{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}:{ff:02d}.{sub:03d}"


def write_arkit_csv(track: MotionTrack, path: str | os.PathLike) -> None:
    """Write ``track`` as a Live Link Face CSV: header HEADER, one row per frame."""
    from ..core.atomic import atomic_path

    bs = blendshapes(track)
    rot = np.stack([track.head_yaw, track.head_pitch, track.head_roll,
                    track.gaze_yaw, track.gaze_pitch, np.zeros(track.n_frames, np.float32),
                    track.gaze_yaw, track.gaze_pitch, np.zeros(track.n_frames, np.float32)], 1)
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(HEADER)
            for i in range(track.n_frames):
                w.writerow([timecode(i, track.fps), len(BLENDSHAPES) + len(ROTATIONS)]
                           + [f"{v:.6f}" for v in bs[i]] + [f"{v:.6f}" for v in rot[i]])
