"""MotionTrack: the per-frame controls passed from stage 1 (motion) to stage 2 (render).

It is plain arrays with units, so a user can export it, edit it and feed it back.
Frame i shows time i / fps (the frame's start); all arrays have one value per frame.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields

import numpy as np

from ..errors import InputError

FORMAT = "phototalk.MotionTrack/1"

# channel name -> (unit, what it means). The renderer reads exactly these.
CHANNELS = {
    "mouth_open": ("iod", "inner-lip gap at the lip centre, in inter-ocular distances (0 = closed)"),
    "mouth_wide": ("ratio", "relative change of mouth width (+0.1 = 10 % wider, -0.1 = narrower/puckered)"),
    "blink": ("0..1", "eyelid closure, both eyes (1 = fully closed)"),
    "head_yaw": ("rad", "head turn, positive = towards the image's right"),
    "head_pitch": ("rad", "head nod, positive = chin down"),
    "head_roll": ("rad", "head tilt in the image plane, positive = clockwise"),
    "mouth_round": ("0..1", "lip rounding / pucker (/uw/, /ow/, /w/)"),
    "lip_tuck": ("0..1", "lower lip drawn up under the upper teeth (/f/, /v/)"),
}
OPTIONAL = ("mouth_round", "lip_tuck")  # may be absent from a track file: then 0


@dataclass
class MotionTrack:
    """Per-frame face controls; every channel is a (n_frames,) float32 array (units in CHANNELS)."""

    fps: float
    mouth_open: np.ndarray
    mouth_wide: np.ndarray
    blink: np.ndarray
    head_yaw: np.ndarray
    head_pitch: np.ndarray
    head_roll: np.ndarray
    mouth_round: np.ndarray | None = None
    lip_tuck: np.ndarray | None = None

    def __post_init__(self):
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise InputError(f"MotionTrack fps must be positive, got {self.fps}")
        for name in OPTIONAL:
            if getattr(self, name) is None:
                setattr(self, name, np.zeros(len(np.asarray(self.mouth_open).reshape(-1)), np.float32))
        n = None
        for name in CHANNELS:
            a = np.asarray(getattr(self, name), dtype=np.float32).reshape(-1)
            if n is None:
                n = len(a)
            if len(a) != n:
                raise InputError(f"MotionTrack channel {name} has {len(a)} frames, expected {n}")
            if not np.all(np.isfinite(a)):
                raise InputError(f"MotionTrack channel {name} has non-finite values")
            setattr(self, name, a)

    @property
    def n_frames(self) -> int:
        return len(self.mouth_open)

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.fps

    def to_dict(self) -> dict:
        return {"format": FORMAT, "fps": float(self.fps), "n_frames": self.n_frames,
                "units": {k: v[0] for k, v in CHANNELS.items()},
                "channels": {k: [round(float(x), 5) for x in getattr(self, k)] for k in CHANNELS}}

    @classmethod
    def from_dict(cls, d: dict) -> "MotionTrack":
        if d.get("format") != FORMAT:
            raise InputError(f"not a {FORMAT} file (format={d.get('format')!r})")
        ch = d.get("channels", {})
        missing = [k for k in CHANNELS if k not in ch and k not in OPTIONAL]
        if missing:
            raise InputError(f"MotionTrack file lacks channels: {', '.join(missing)}")
        return cls(fps=float(d["fps"]), **{k: np.asarray(ch[k], np.float32) for k in CHANNELS if k in ch})

    def save_json(self, path: str | os.PathLike) -> None:
        from ..video.atomic import atomic_path

        with atomic_path(path) as tmp:
            with open(tmp, "w") as f:
                json.dump(self.to_dict(), f)

    @classmethod
    def load_json(cls, path: str | os.PathLike) -> "MotionTrack":
        try:
            with open(path) as f:
                return cls.from_dict(json.load(f))
        except (OSError, ValueError) as e:
            raise InputError(f"cannot read MotionTrack {path}: {e}") from None


assert [f.name for f in fields(MotionTrack)][1:] == list(CHANNELS)
