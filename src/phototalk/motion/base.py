"""The motion-model seam: speech -> MotionTrack, chosen by name or by a model file.

A motion model is any callable with ``MotionModel``'s signature. ``get_motion_model``
returns one for a name ("analytic", the default: rules over phones and prosody) or for
a path to a learned model file, which the loader registered for its suffix opens
(``register_loader``; issue 15's learned model registers ".npz" / ".safetensors").
Every model must pass tests/test_contracts.py (seed determinism, silence keeps the mouth
shut, output length and channel ranges).
"""
from __future__ import annotations

import os
from typing import Callable, Protocol, runtime_checkable

from ..audio.io import Speech
from ..errors import InputError
from .track import MotionTrack

DEFAULT_MODEL = "analytic"


@runtime_checkable
class MotionModel(Protocol):
    """Speech -> per-frame face controls.

    speech: mono samples at ``speech.sr``; fps: frames per second of the track, which
    covers the speech (n = round(duration x fps) frames, see ``audio.features.n_frames``);
    seed: same seed, same track; phones: timed ARPAbet phones [(label, start_s, end_s)]
    or None (then the mouth follows loudness); speed, still, emotion, emotion_strength,
    gaze, singing: as the generate options of the same names."""

    def __call__(self, speech: Speech, fps: float, *, seed: int = 0, phones=None, speed: float = 1.0,
                 still: bool = False, emotion: str = "neutral", emotion_strength: float = 1.0,
                 gaze: str = "natural", singing: str = "auto") -> MotionTrack: ...


def _analytic() -> MotionModel:
    from .analytic import analytic_motion

    return analytic_motion


_NAMED: dict[str, Callable[[], MotionModel]] = {"analytic": _analytic}
_LOADERS: dict[str, Callable[[str], MotionModel]] = {}  # file suffix -> loader(path)


def register_model(name: str, factory: Callable[[], MotionModel]) -> None:
    """Make ``get_motion_model(name)`` return ``factory()``."""
    _NAMED[name] = factory


def register_loader(suffix: str, loader: Callable[[str], MotionModel]) -> None:
    """Make ``get_motion_model(path)`` open files ending in ``suffix`` (".npz") with ``loader(path)``."""
    _LOADERS[suffix.lower()] = loader


def model_names() -> list[str]:
    return sorted(_NAMED)


def _load_builtin_loaders() -> None:
    """Import the modules that register loaders for model files (they may be absent)."""
    try:
        from . import learned  # noqa: F401  (issue 15: registers its suffixes on import)
    except ImportError:
        pass


def get_motion_model(name_or_path: str | os.PathLike | None = None) -> MotionModel:
    """The motion model called ``name_or_path`` ("analytic"; None = the default), or the
    learned model stored in that file. Raises InputError for an unknown name or file type."""
    key = DEFAULT_MODEL if name_or_path is None else os.fspath(name_or_path)
    if key in _NAMED:
        return _NAMED[key]()
    suffix = os.path.splitext(key)[1].lower()
    if suffix:
        if suffix not in _LOADERS:
            _load_builtin_loaders()
        if suffix in _LOADERS:
            from ..validate import input_file

            return _LOADERS[suffix](input_file(key, "motion model"))
        raise InputError(f"--motion-model: no loader for {suffix} files (known: "
                         f"{', '.join(sorted(_LOADERS)) or 'none installed'})")
    raise InputError(f"--motion-model must be {', '.join(model_names())} or a model file, got {key!r}")
