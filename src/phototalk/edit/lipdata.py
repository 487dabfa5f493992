"""Training data for the learned motion model: the mouth channels of a MotionTrack
measured on a real talking video with phototalk's own face tracker, beside the audio
features of its soundtrack (``phototalk extract-track``).

A clip file is an uncompressed NPZ (no pickled objects):
  ``meta``: 0-d unicode JSON {format CLIP_FORMAT, name, source, fps, n_frames,
            feature_kind, feat_hz, channels};
  ``found``: (n_frames,) bool, a face was measured in video frame i (shown at i / fps);
  one (n_frames,) float32 array per measured channel (learned.MOUTH_CHANNELS, in the
            MotionTrack's units; NaN where no face);
  ``feats``: (n_feat_frames, 41) float32 log-mel features (learned.logmel_features), and with
            ``--features whisper`` ``feats_whisper``: (n_feat_frames, 384) Whisper encoder features.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..face import landmarks as L
from .tracking import FaceTrack

CLIP_FORMAT = "phototalk.LipClip/1"
FEATURE_ARRAYS = {"logmel40+energy": "feats", "whisper-tiny.en-encoder": "feats_whisper"}  # kind -> NPZ entry
MOUTH_CORNER_L, MOUTH_CORNER_R = 61, 291  # outer lip corners of the face mesh
ROUND_FULL = 0.12  # a mouth this much narrower than the speaker's rest width reads as fully rounded
REST_PERCENTILE = 5  # the jaw's rest (closed) position: this percentile of its chin distance


def measure_mouth(track: FaceTrack) -> dict[str, np.ndarray]:
    """Mouth channels (each (n,) float32, NaN without a face) of a tracked video, in the
    MotionTrack's units: mouth_open = inner-lip gap at the centre / inter-ocular distance
    (outer eye corners, as edit.pipeline.speaker_scale and the evaluation measure it);
    jaw_open = drop of the chin below its rest position (eye midpoint to chin, iod);
    mouth_wide = corner-to-corner width relative to the speaker's median - 1;
    mouth_round = narrowing below the median width, 0..1 at ROUND_FULL."""
    lm = track.landmarks[..., :2].astype(np.float64)
    iod = np.linalg.norm(lm[:, L.EYE_OUTER_L] - lm[:, L.EYE_OUTER_R], axis=1)
    iod = np.where(iod > 1e-6, iod, np.nan)
    gap = np.linalg.norm(lm[:, L.LIP_CENTER_UPPER] - lm[:, L.LIP_CENTER_LOWER], axis=1) / iod
    eyes = 0.5 * (lm[:, L.EYE_OUTER_L] + lm[:, L.EYE_OUTER_R])
    chin = np.linalg.norm(lm[:, L.CHIN] - eyes, axis=1) / iod
    width = np.linalg.norm(lm[:, MOUTH_CORNER_L] - lm[:, MOUTH_CORNER_R], axis=1) / iod
    ok = np.isfinite(gap)
    out = {k: np.full(len(gap), np.nan, np.float32) for k in ("mouth_open", "jaw_open", "mouth_wide", "mouth_round")}
    if not ok.any():
        return out
    rel = width / np.median(width[ok]) - 1.0
    out["mouth_open"][ok] = gap[ok]
    out["jaw_open"][ok] = np.maximum(chin[ok] - np.percentile(chin[ok], REST_PERCENTILE), 0.0)
    out["mouth_wide"][ok] = np.clip(rel[ok], -0.3, 0.3)
    out["mouth_round"][ok] = np.clip(-rel[ok] / ROUND_FULL, 0.0, 1.0)
    return out


def extract_clip(video: str | os.PathLike, *, name: str | None = None, whisper: bool = False) -> dict:
    """Track the face of ``video`` (every frame), measure its mouth channels and compute
    its soundtrack's audio features (log-mel; with ``whisper`` also Whisper's encoder's). Returns the clip as a dict of the NPZ's entries
    (``meta`` as a dict). Raises InputError/FaceError on a bad video or one without sound."""
    from ..audio.io import load_speech
    from ..motion.learned import FEAT_HZ, FEATURE_KIND, MOUTH_CHANNELS, WHISPER_KIND, audio_features
    from .pipeline import _track
    from .source import probe

    from ..validate import input_file

    path = input_file(video, "video")
    info = probe(path)
    if not info.has_audio:
        raise InputError(f"{path} has no soundtrack: nothing to learn lips from")
    speech = load_speech(path)
    track, _ = _track(info)
    ch = measure_mouth(track)
    feats = {FEATURE_KIND: audio_features(speech)}
    if whisper:
        feats[WHISPER_KIND] = audio_features(speech, WHISPER_KIND)
    meta = {"format": CLIP_FORMAT, "name": name or Path(path).stem, "source": os.path.basename(path),
            "fps": float(info.fps), "n_frames": int(track.n_frames), "feature_kinds": list(feats),
            "feat_hz": FEAT_HZ, "channels": list(MOUTH_CHANNELS), "duration_s": round(speech.duration_s, 3)}
    return {"meta": meta, "found": track.found & np.isfinite(ch["mouth_open"]), **ch,
            **{FEATURE_ARRAYS[k]: v for k, v in feats.items()}}


def save_clip(clip: dict, path: str | os.PathLike) -> None:
    """Write a clip dict (``extract_clip``) as NPZ, atomically."""
    from ..core.atomic import atomic_path

    arrays = {k: v for k, v in clip.items() if k != "meta"}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, meta=np.array(json.dumps(clip["meta"])), **arrays)


def load_clip(path: str | os.PathLike, kind: str | None = None):
    """A ``learned.Clip`` (features of ``kind``, default log-mel, and targets at FEAT_HZ)
    from a clip NPZ."""
    from ..motion.learned import FEATURE_KIND, MOUTH_CHANNELS, clip_from_track, read_npz

    kind = kind or FEATURE_KIND

    def build(meta, z):
        if FEATURE_ARRAYS.get(kind) not in z.files:
            raise InputError(f"{path} has no {kind} features (`phototalk extract-track --features` makes them)")
        ch = {c: np.asarray(z[c], np.float32) for c in MOUTH_CHANNELS}
        return clip_from_track(str(meta["name"]), np.asarray(z[FEATURE_ARRAYS[kind]], np.float32), ch,
                               np.asarray(z["found"], bool), float(meta["fps"]), kind=kind)

    return read_npz(path, "track data", CLIP_FORMAT, build)
