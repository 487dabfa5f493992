"""Measuring rendered videos on their pixels for tests: the face mesh (MediaPipe's models,
phototalk.face.mesh, in video mode) on every decoded frame (the same landmarks a viewer's
eye would judge), independent of the renderer's own landmark bookkeeping."""
from __future__ import annotations

import numpy as np


def decode(path) -> tuple[list[np.ndarray], float]:
    import av

    with av.open(str(path)) as c:
        fps = float(c.streams.video[0].average_rate)
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)], fps


def streams(path) -> dict:
    """{'video': seconds, 'audio': seconds} of each stream present."""
    import av

    with av.open(str(path)) as c:
        return {s.type: float(s.duration * s.time_base) for s in c.streams if s.duration}


def landmarks(frames) -> list[np.ndarray | None]:
    """(478, 2) pixel landmarks per frame, or None where no face is found."""
    from phototalk.face.mesh import FaceTracker

    tracker = FaceTracker()
    out = []
    for f in frames:
        lm = tracker.process(f)
        out.append(None if lm is None else lm[:, :2])
    return out


def aperture(lm) -> float:
    """Inner-lip gap / outer-eye-corner distance (nan without a face)."""
    if lm is None:
        return np.nan
    return float(np.linalg.norm(lm[13] - lm[14]) / np.linalg.norm(lm[33] - lm[263]))


def eye_open(lm) -> float:
    """Mean eyelid gap / eye width of both eyes (nan without a face)."""
    if lm is None:
        return np.nan
    l = np.linalg.norm(lm[159] - lm[145]) / np.linalg.norm(lm[33] - lm[133])
    r = np.linalg.norm(lm[386] - lm[374]) / np.linalg.norm(lm[263] - lm[362])
    return float((l + r) / 2)
