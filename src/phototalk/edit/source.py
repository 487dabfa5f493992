"""Reading a talking video: probe it, then stream its frames upright as RGB.

Frames come out in display orientation (the stream's rotation applied), because the
face mesh only finds upright faces; ``to_stored`` turns an edited frame back so the
output keeps the input's storage layout and rotation flag.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ..errors import InputError

DEFAULT_FPS = 25.0  # used when a stream declares no frame rate


@dataclass(frozen=True)
class VideoInfo:
    """path; width, height: stored frame size in pixels; fps: frames per second;
    rotation_deg: display rotation, counterclockwise degrees (0, 90, 180, 270 / -90);
    has_audio: whether there is an audio stream; duration_s: container duration
    (0 when unknown)."""

    path: str
    width: int
    height: int
    fps: float
    rotation_deg: int
    has_audio: bool
    duration_s: float

    def upright(self, frame: np.ndarray) -> np.ndarray:
        """(h, w, 3) stored frame -> display orientation."""
        k = (self.rotation_deg // 90) % 4
        return np.ascontiguousarray(np.rot90(frame, k)) if k else frame

    def to_stored(self, frame: np.ndarray) -> np.ndarray:
        """Inverse of ``upright``."""
        k = (self.rotation_deg // 90) % 4
        return np.ascontiguousarray(np.rot90(frame, -k)) if k else frame


def _fail(path: str, e: Exception) -> InputError:
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    return InputError(f"cannot decode video {path}: {msg}")


def probe(path: str | os.PathLike) -> VideoInfo:
    """Check that ``path`` is a decodable video and read its geometry.
    Raises a one-line ``InputError`` for a missing, empty, corrupt or audio-only file."""
    import av

    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"video not found: {path}")
    if os.path.isdir(path):
        raise InputError(f"video path is a directory: {path}")
    if os.path.getsize(path) == 0:
        raise InputError(f"video file is empty: {path}")
    try:
        with av.open(path) as c:
            if not c.streams.video:
                raise InputError(f"no video stream in {path}")
            vs = c.streams.video[0]
            rate = vs.average_rate or vs.guessed_rate or vs.base_rate
            fps = float(rate) if rate and 1 <= float(rate) <= 240 else DEFAULT_FPS
            first = next(c.decode(vs), None)
            if first is None:
                raise InputError(f"video has no decodable frames: {path}")
            rot = int(round((first.rotation or 0) / 90.0)) * 90
            dur = float(c.duration) / 1e6 if c.duration else 0.0
            return VideoInfo(path, first.width, first.height, fps, rot, bool(c.streams.audio), dur)
    except InputError:
        raise
    except (av.FFmpegError, ValueError, IndexError, UnicodeDecodeError) as e:
        raise _fail(path, e) from None


def frames(info: VideoInfo) -> Iterator[np.ndarray]:
    """Every frame of the first video stream, upright: (H, W, 3) uint8 RGB each."""
    import av

    try:
        with av.open(info.path) as c:
            c.streams.video[0].thread_type = "AUTO"
            for f in c.decode(video=0):
                yield info.upright(f.to_ndarray(format="rgb24"))
    except (av.FFmpegError, ValueError) as e:
        raise _fail(info.path, e) from None
