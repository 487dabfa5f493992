"""The renderer seam: a portrait rig + one frame's controls -> that frame.

A renderer is built once per portrait (``get_renderer(name)(rig)``; everything that does
not change from frame to frame is precomputed then) and asked for frames of a
MotionTrack. Every renderer must pass tests/test_contracts.py: the rest frame keeps the
mouth shut, the mouth opens as much as asked, a full blink shuts the eyes, and pixels
outside ``movable`` stay the portrait's own, bit for bit.
"""
from __future__ import annotations

from typing import Callable, Protocol, runtime_checkable

import numpy as np

from ..errors import InputError
from ..face.analyze import FaceRig
from ..motion.track import MotionTrack

DEFAULT_RENDERER = "meshwarp"


@runtime_checkable
class Renderer(Protocol):
    """Frames of one portrait.

    image: (H, W, 3) uint8, the portrait at output size; movable: (H, W) bool, the
    pixels a frame may change (everything else is ``image``'s own); last_stats: the
    checks of the last frame rendered (e.g. ``worst inverse error px``), for reports."""

    image: np.ndarray
    movable: np.ndarray
    last_stats: dict

    def render_frame(self, track: MotionTrack, i: int) -> np.ndarray:
        """Frame ``i`` of ``track``: (H, W, 3) uint8 RGB."""
        ...

    def set_region(self, region: str | None = None, box: tuple[int, int, int, int] | None = None) -> None:
        """Animate only ``region`` (face, mouth, eyes, head) or the pixel box (x, y, w, h)."""
        ...


def _meshwarp(rig: FaceRig) -> Renderer:
    from .warp import MeshWarpRenderer

    return MeshWarpRenderer(rig)


_RENDERERS: dict[str, Callable[[FaceRig], Renderer]] = {"meshwarp": _meshwarp}


def register_renderer(name: str, factory: Callable[[FaceRig], Renderer]) -> None:
    """Make ``get_renderer(name)`` return ``factory`` (called with a FaceRig)."""
    _RENDERERS[name] = factory


def renderer_names() -> list[str]:
    return sorted(_RENDERERS)


def get_renderer(name: str | None = None) -> Callable[[FaceRig], Renderer]:
    """The factory of renderer ``name`` (None: the default, MeshWarpRenderer)."""
    key = DEFAULT_RENDERER if name is None else name
    if key not in _RENDERERS:
        raise InputError(f"renderer must be {', '.join(renderer_names())}, got {key!r}")
    return _RENDERERS[key]
