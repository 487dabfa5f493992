"""MotionTrack: the per-frame controls passed from stage 1 (motion) to stage 2 (render).

It is plain arrays with units, so a user can export it, edit it and feed it back.
Frame i shows time i / fps (the frame's start); all arrays have one value per frame.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields

import numpy as np

from ..core.numeric import range_weight, smooth
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
    "brow_up": ("-1..1", "both brows raised (+1 = about 0.1 iod) or lowered (-1)"),
    "brow_inner": ("0..1", "inner brow ends raised (sadness, concern)"),
    "brow_squeeze": ("0..1", "brows drawn together and down (anger, concentration)"),
    "eye_squint": ("-1..1", "lids narrowed (+, smiling or angry eyes) or widened (-, surprise)"),
    "smile": ("-1..1", "mouth corners up and out (+) or down (-, sad)"),
    "cheek": ("0..1", "cheeks raised, pushing the lower lids up (a Duchenne smile)"),
    "gaze_yaw": ("rad", "eyes turned in the head, positive = towards the image's right"),
    "gaze_pitch": ("rad", "eyes turned in the head, positive = looking down"),
    "breath": ("-1..1", "chest and shoulders rise with breathing (+1 = full inhale)"),
    "jaw_open": ("iod", "jaw drop under the lip centre, in inter-ocular distances; the heavy jaw moves more "
                 "slowly than the lips, so it stays a little open through a quick lip closure (/p b m/) "
                 "and the lips make the difference"),
}
# Largest magnitude a value read from a track file may have, by unit: far past anything a
# face does (a mouth 2 inter-ocular distances open, a head turned 90 degrees), but a
# typo like 1e30 is refused instead of tearing the frame apart.
MAX_ABS_BY_UNIT = {"iod": 2.0, "ratio": 1.0, "0..1": 2.0, "-1..1": 2.0, "rad": np.pi / 2}
# May be absent from a track file (older files, hand-written ones): then 0.
OPTIONAL = ("mouth_round", "lip_tuck", "brow_up", "brow_inner", "brow_squeeze", "eye_squint", "smile", "cheek",
            "gaze_yaw", "gaze_pitch", "breath")
# May be absent too; then the jaw follows the lips exactly (a copy of mouth_open).
FOLLOWS_MOUTH = ("jaw_open",)
JAW_SMOOTH_S = 0.06  # s; Gaussian sigma of the jaw's lag behind the lips (jaw_from_mouth)


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
    brow_up: np.ndarray | None = None
    brow_inner: np.ndarray | None = None
    brow_squeeze: np.ndarray | None = None
    eye_squint: np.ndarray | None = None
    smile: np.ndarray | None = None
    cheek: np.ndarray | None = None
    gaze_yaw: np.ndarray | None = None
    gaze_pitch: np.ndarray | None = None
    breath: np.ndarray | None = None
    jaw_open: np.ndarray | None = None

    def __post_init__(self):
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise InputError(f"MotionTrack fps must be positive, got {self.fps}")
        for name in OPTIONAL:
            if getattr(self, name) is None:
                setattr(self, name, np.zeros(len(np.asarray(self.mouth_open).reshape(-1)), np.float32))
        if self.jaw_open is None:
            self.jaw_open = np.array(self.mouth_open, np.float32).reshape(-1)
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
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise InputError(f"not a {FORMAT} file (format={d.get('format') if isinstance(d, dict) else None!r})")
        ch = d.get("channels", {})
        if not isinstance(ch, dict):
            raise InputError("MotionTrack file: 'channels' must be an object")
        missing = [k for k in CHANNELS if k not in ch and k not in OPTIONAL and k not in FOLLOWS_MOUTH]
        if missing:
            raise InputError(f"MotionTrack file lacks channels: {', '.join(missing)}")
        fps = _num(d.get("fps"), "MotionTrack fps")
        return cls(fps=fps, **{k: channel_values(k, v) for k, v in ch.items() if _channel_name(k, "MotionTrack file")})

    def save_json(self, path: str | os.PathLike) -> None:
        from ..core.atomic import atomic_path

        with atomic_path(path) as tmp:
            with open(tmp, "w") as f:
                json.dump(self.to_dict(), f)

    @classmethod
    def load_json(cls, path: str | os.PathLike) -> "MotionTrack":
        from ..validate import read_json

        return cls.from_dict(read_json(path, "MotionTrack file"))


assert [f.name for f in fields(MotionTrack)][1:] == list(CHANNELS)


def jaw_from_mouth(mouth_open: np.ndarray, fps: float) -> np.ndarray:
    """(n,) float32 jaw opening for a lip opening ``mouth_open`` (n,) iod at ``fps``: the
    same curve low-passed (JAW_SMOOTH_S), since the jaw is far heavier than the lips. The
    lips still reach every target, closures included; the chin and the skin below the
    mouth no longer jump with each quick closure."""
    return np.maximum(_jaw_lag(mouth_open, fps), 0.0).astype(np.float32)


def _jaw_lag(x: np.ndarray, fps: float) -> np.ndarray:
    return smooth(np.asarray(x, np.float32), JAW_SMOOTH_S * fps)


# ---------------------------------------------------------------- editing: --track-in
MAX_RANGES = 10_000  # ranges in one track file
RANGE_FADE_S = 0.06  # s; a range override eases in and out over this much outside its span
# Range shorthands: {"mouth": "closed", "start_s": .., "end_s": ..} sets several channels.
SHORTHANDS = {
    ("mouth", "closed"): {"mouth_open": 0.0, "mouth_wide": 0.0, "mouth_round": 0.0, "lip_tuck": 0.0},
    ("eyes", "closed"): {"blink": 1.0},
    ("eyes", "open"): {"blink": 0.0},
}


def _num(x, what: str) -> float:
    try:
        ok = not isinstance(x, bool) and isinstance(x, (int, float)) and bool(np.isfinite(float(x)))
    except OverflowError:  # an int too large for a float
        ok = False
    if not ok:
        shown = repr(x) if len(repr(x)) < 40 else repr(x)[:37] + "..."
        raise InputError(f"{what} must be a finite number, got {shown}")
    return float(x)


def _channel_name(name, where: str) -> bool:
    if not isinstance(name, str) or name not in CHANNELS:
        shown = repr(name) if len(repr(name)) < 40 else repr(name)[:37] + "..."
        raise InputError(f"{where}: unknown channel {shown} (known: {', '.join(CHANNELS)})")
    return True


def channel_values(name: str, vals) -> np.ndarray:
    """(n,) float64 values of channel ``name`` from a track file: a non-empty list of
    finite numbers (not booleans, not nested), at most the ``max_track_values`` limit
    long, each within MAX_ABS_BY_UNIT of its unit. Raises a one-line InputError."""
    from ..validate import limit, over_limit

    if not isinstance(vals, list) or not vals:
        raise InputError(f"track channel {name} must be a non-empty list of numbers")
    if len(vals) > limit("max_track_values"):
        raise over_limit("max_track_values", f"track channel {name} has {len(vals):,} values")
    if not all(type(v) in (int, float) for v in vals):  # bool, str, None, list, dict
        bad = next(v for v in vals if type(v) not in (int, float))
        raise InputError(f"track channel {name} must be a list of numbers, found {type(bad).__name__}")
    try:
        v = np.array(vals, np.float64)
    except OverflowError:
        raise InputError(f"track channel {name} holds a number too large") from None
    bound = MAX_ABS_BY_UNIT[CHANNELS[name][0]]
    if not np.all(np.abs(v) <= bound):  # also refuses nan and inf
        raise InputError(f"track channel {name} has values outside -{bound:.3g}..{bound:.3g} "
                         f"({CHANNELS[name][0]}) or not finite")
    return v


def _range_value(name: str, v: float, k: int) -> float:
    bound = MAX_ABS_BY_UNIT[CHANNELS[name][0]]
    if abs(v) > bound:
        raise InputError(f"track range {k}: value {v:g} for {name} is outside -{bound:.3g}..{bound:.3g} "
                         f"({CHANNELS[name][0]})")
    return v


def apply_overrides(track: MotionTrack, spec: dict) -> MotionTrack:
    """Return ``track`` with the controls in ``spec`` (a full or partial MotionTrack
    dict) put over it. ``spec`` may hold:

    * ``"channels": {name: [v0, v1, ...]}`` — values at ``spec["fps"]`` from t = 0; they
      replace the generated channel over the time they cover (resampled to the track's
      fps), so a file with only head pose drives only the head;
    * ``"ranges": [{"channel": name | "channels": [names], "start_s": a, "end_s": b,
      "value": v}]`` — hold a channel at v from a to b s, easing in and out over
      RANGE_FADE_S outside the range; or a shorthand instead of channel and value:
      ``"mouth": "closed"`` (lips shut and at rest), ``"eyes": "closed"`` or ``"open"``
      (one range may hold both ``"mouth"`` and ``"eyes"``).
    Raises InputError with a one-line message on anything malformed."""
    if not isinstance(spec, dict):
        raise InputError("a track file must hold a JSON object")
    fmt = spec.get("format")
    if fmt is not None and fmt != FORMAT:
        raise InputError(f"not a {FORMAT} file (format={fmt!r})")
    unknown = set(spec) - {"format", "fps", "n_frames", "units", "channels", "ranges"}
    if unknown:
        raise InputError(f"track file has unknown keys: {', '.join(sorted(unknown))} "
                         "(expected channels and/or ranges)")
    ch = spec.get("channels") or {}
    ranges = spec.get("ranges") or []
    if not isinstance(ch, dict) or not isinstance(ranges, list):
        raise InputError("track file: 'channels' must be an object and 'ranges' a list")
    if not ch and not ranges:
        raise InputError("track file has neither 'channels' nor 'ranges': nothing to apply")
    if len(ranges) > MAX_RANGES:  # each range costs a pass over every frame
        raise InputError(f"track file has {len(ranges)} ranges (at most {MAX_RANGES})")
    arrays = {name: np.array(getattr(track, name), np.float32) for name in CHANNELS}
    mouth_before = arrays["mouth_open"].copy()
    n, fps = track.n_frames, track.fps
    t = np.arange(n) / fps
    if ch:
        if "fps" not in spec:
            raise InputError("track file with 'channels' needs 'fps'")
        src_fps = _num(spec["fps"], "track file fps")
        if src_fps <= 0:
            raise InputError(f"track file fps must be positive, got {src_fps:g}")
        for name, vals in ch.items():
            _channel_name(name, "track file")
            v = channel_values(name, vals)
            ts = np.arange(len(v)) / src_fps
            cover = t <= ts[-1] + 0.5 / src_fps
            arrays[name][cover] = np.interp(t[cover], ts, v).astype(np.float32)
    for k, r in enumerate(ranges):
        if not isinstance(r, dict):
            raise InputError(f"track range {k} must be an object with channel, start_s, end_s, value")
        short = [(part, r[part]) for part in ("mouth", "eyes") if part in r]
        if short:  # "mouth" and "eyes" may share one range
            values = {}
            for part, want in short:
                if not isinstance(want, str) or (part, want) not in SHORTHANDS:
                    raise InputError(f"track range {k}: {part} may be "
                                     + " or ".join(repr(v) for p, v in SHORTHANDS if p == part)
                                     + f", got {want!r}")
                values.update(SHORTHANDS[part, want])
        else:
            names = r.get("channels", [r.get("channel")])
            if isinstance(names, str):
                names = [names]
            if not isinstance(names, list) or not names:
                raise InputError(f"track range {k}: 'channels' must be a non-empty list of channel names")
            for name in names:
                _channel_name(name, f"track range {k}")
            v = _num(r.get("value"), f"track range {k} value")
            values = {name: _range_value(name, v, k) for name in names}
        a = _num(r.get("start_s"), f"track range {k} start_s")
        b = _num(r.get("end_s"), f"track range {k} end_s")
        if not a < b:
            raise InputError(f"track range {k}: start_s ({a:g}) must be before end_s ({b:g})")
        # Weight 1 inside [a, b], easing to 0 over RANGE_FADE_S on both sides (as edit's ranges).
        w = range_weight(t, a, b, RANGE_FADE_S)
        for name, v in values.items():
            arrays[name] = (arrays[name] * (1 - w) + v * w).astype(np.float32)
    # A changed lip opening carries the jaw with it (with the jaw's lag), unless the
    # file sets the jaw itself.
    change = arrays["mouth_open"] - mouth_before
    if "jaw_open" not in ch and np.any(change):
        arrays["jaw_open"] = np.maximum(arrays["jaw_open"] + _jaw_lag(change, fps), 0.0).astype(np.float32)
    return MotionTrack(fps=fps, **arrays)


def load_overrides(path: str | os.PathLike) -> dict:
    """Read and check a --track-in file (JSON object; see ``apply_overrides``) within the
    limits of ``validate.read_json`` (bytes, nesting) and ``channel_values``."""
    from ..validate import read_json

    spec = read_json(path, "track file")
    # Check it now against a one-frame dummy, so a bad file fails before any work.
    dummy = MotionTrack(fps=25.0, **{k: np.zeros(1, np.float32) for k in CHANNELS})
    apply_overrides(dummy, spec)
    return spec
