"""Stage 1, learned: speech -> mouth channels with a small temporal conv net, trained on
tracks measured from real talking videos (``phototalk extract-track``, ``train-motion``).

The network maps audio features (log-mel, FEAT_HZ frames a second) to the mouth channels
of the MotionTrack (MOUTH_CHANNELS) at the same rate; the result is resampled to the
video's fps. Everything else of the track (head, blinks, brows, gaze, emotion) stays
the analytic model's. The net rarely shuts the lips completely (a closure lasts two or
three frames and its sound is a silence), so /p b m/ closures and the /f v/ lip
contact still come from the phones when there are any, and silence shuts the mouth.

Inference is plain numpy (im2col + matmul per layer, ~1 ms per second of speech);
training too: hand-written backprop and Adam, deterministic for a given seed on one
machine (see ``train``).

Model file (``save_model``/``load_model``): an uncompressed NPZ, no pickled objects —
  ``meta``: a 0-d unicode array holding JSON: format MODEL_FORMAT, feature kind
            (FEATURE_KIND), feat_hz, n_features, channels, layers [{kernel, dilation}],
            training metadata (seed, steps, lr, final loss, data summary, seconds);
  ``feat_mean``, ``feat_std``: (n_features,) float32 input normalisation;
  ``y_scale``: (n_channels,) float32 output scale (prediction = net output * y_scale);
  ``w{k}``: (kernel * c_in, c_out) float32 and ``b{k}``: (c_out,) float32 for layer k
            (im2col layout: tap-major, then input channel).
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..audio.io import Speech
from ..errors import InputError
from .base import register_loader
from .track import MotionTrack, jaw_from_mouth

log = logging.getLogger(__name__)

MODEL_FORMAT = "phototalk.MotionModel/1"
FEATURE_KIND = "logmel40+energy"  # the default features (numpy only); a model names the kind it was trained on
WHISPER_KIND = "whisper-tiny.en-encoder"  # Whisper tiny.en's encoder output, 384 per frame (faster-whisper)
FEATURE_KINDS = (FEATURE_KIND, WHISPER_KIND)
FEAT_HZ = 50.0  # feature frames per second (Whisper's encoder rate, so its features could drop in)
WIN_S = 0.025  # s; analysis window of one feature frame
N_MELS = 40
MEL_FMIN_HZ, MEL_FMAX_HZ = 60.0, 7600.0
ENERGY_RANGE_DB = 40.0  # dB; the energy feature spans this much below the clip's loud speech
MOUTH_CHANNELS = ("mouth_open", "jaw_open", "mouth_wide", "mouth_round")
HIDDEN = 96  # channels of the hidden conv layers
# (kernel, dilation) per layer: the receptive field spans 1 + 2*(2+4+8) + ... = 0.58 s,
# long enough for the lips' lead over the sound and a syllable's context.
LAYERS = ((5, 1), (5, 2), (5, 4), (1, 1))
# Bounds of the predicted channels, in their units (track.CHANNELS): no face opens wider.
CLIP = {"mouth_open": (0.0, 0.6), "jaw_open": (0.0, 0.6), "mouth_wide": (-0.3, 0.3), "mouth_round": (0.0, 1.0)}


# ---------------------------------------------------------------- features
def _mel_filters(sr: int, n_fft: int, n_mels: int = N_MELS) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) float32 triangular mel filterbank (HTK mel scale)."""
    def mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def hz(m):
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    fmax = min(MEL_FMAX_HZ, sr / 2)
    pts = hz(np.linspace(mel(MEL_FMIN_HZ), mel(fmax), n_mels + 2))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    fb = np.zeros((n_mels, len(freqs)), np.float32)
    for k in range(n_mels):
        lo, c, hi = pts[k], pts[k + 1], pts[k + 2]
        fb[k] = np.clip(np.minimum((freqs - lo) / (c - lo), (hi - freqs) / (hi - c)), 0, None)
    return fb


def audio_features(speech: Speech, kind: str = FEATURE_KIND) -> np.ndarray:
    """(n, n_features) float32 features of ``kind`` at FEAT_HZ: ``logmel_features`` or
    ``whisper_features``."""
    if kind == WHISPER_KIND:
        return whisper_features(speech)
    if kind != FEATURE_KIND:
        raise InputError(f"unknown audio feature kind {kind!r} (known: {', '.join(FEATURE_KINDS)})")
    return logmel_features(speech)


def whisper_features(speech: Speech) -> np.ndarray:
    """(n, 384) float32 Whisper tiny.en encoder output at FEAT_HZ (frame j describing
    [j, j + 1) / FEAT_HZ s), from audio.asr's ``encoder_features`` (the bundled model, no
    download)."""
    from ..audio.asr import encoder_features

    n = int(np.ceil(speech.duration_s * FEAT_HZ))
    f = np.asarray(encoder_features(speech), np.float32)
    if len(f) < n:
        f = np.concatenate([f, np.repeat(f[-1:], n - len(f), 0)]) if len(f) else np.zeros((n, 384), np.float32)
    return f[:n]


def logmel_features(speech: Speech) -> np.ndarray:
    """(n, N_MELS + 1) float32 features at FEAT_HZ (frame j centred at (j + 0.5) / FEAT_HZ s):
    log-mel energies with the clip's mean per band removed (so a microphone's colour and
    the recording level do not matter), and the frame's level in dB relative to the
    clip's loud speech, scaled to 0..1 over ENERGY_RANGE_DB."""
    from ..audio.features import frame_windows, n_frames

    y, sr = np.asarray(speech.samples, np.float32), int(speech.sr)
    n = n_frames(speech.duration_s, FEAT_HZ)
    w = frame_windows(y, sr, FEAT_HZ, n, WIN_S)
    n_fft = 1 << int(np.ceil(np.log2(w.shape[1])))
    spec = np.abs(np.fft.rfft(w * np.hanning(w.shape[1]).astype(np.float32), n=n_fft, axis=1)) ** 2
    logmel = np.log10(spec @ _mel_filters(sr, n_fft).T + 1e-10).astype(np.float32)
    db = 10 * np.log10(np.mean(w.astype(np.float64) ** 2, axis=1) + 1e-10)
    loud = np.percentile(db, 95) if len(db) else 0.0
    energy = np.clip((db - loud + ENERGY_RANGE_DB) / ENERGY_RANGE_DB, 0.0, 1.2)
    # Mean over the voiced frames only: a clip with long silences would otherwise shift every band.
    voiced = energy > 0.25
    ref = logmel[voiced].mean(0) if voiced.sum() >= 5 else logmel.mean(0)
    return np.concatenate([logmel - ref, energy[:, None].astype(np.float32)], 1).astype(np.float32)


def resample(x: np.ndarray, src_hz: float, dst_hz: float, n: int, *, src_offset: float = 0.5,
             dst_offset: float = 0.0) -> np.ndarray:
    """(n, ...) ``x`` ((m, ...), frame j at (j + src_offset) / src_hz s) linearly
    interpolated at times (i + dst_offset) / dst_hz (ends held)."""
    x = np.asarray(x, np.float32)
    ts = (np.arange(len(x)) + src_offset) / src_hz
    td = (np.arange(n) + dst_offset) / dst_hz
    if x.ndim == 1:
        return np.interp(td, ts, x).astype(np.float32)
    return np.stack([np.interp(td, ts, x[:, k]) for k in range(x.shape[1])], 1).astype(np.float32)


# ---------------------------------------------------------------- the network
def _im2col(x: np.ndarray, kernel: int, dilation: int) -> np.ndarray:
    """(B, T, kernel * C) 'same'-padded dilated windows of x (B, T, C), tap-major."""
    if kernel == 1:
        return x
    pad = dilation * (kernel - 1) // 2
    xp = np.pad(x, ((0, 0), (pad, pad), (0, 0)))
    t = x.shape[1]
    return np.concatenate([xp[:, k * dilation:k * dilation + t] for k in range(kernel)], 2)


def _col2im(dcols: np.ndarray, kernel: int, dilation: int, c: int) -> np.ndarray:
    """Adjoint of ``_im2col``: (B, T, kernel * c) -> (B, T, c)."""
    if kernel == 1:
        return dcols
    pad = dilation * (kernel - 1) // 2
    b, t, _ = dcols.shape
    dxp = np.zeros((b, t + 2 * pad, c), np.float32)
    for k in range(kernel):
        dxp[:, k * dilation:k * dilation + t] += dcols[:, :, k * c:(k + 1) * c]
    return dxp[:, pad:pad + t]


@dataclass
class MotionNet:
    """A stack of 1-D dilated convolutions (ReLU between them) from normalised features
    (B, T, n_features) to scaled channels (B, T, n_channels), and what it was trained on."""

    weights: list[np.ndarray]  # per layer (kernel * c_in, c_out) float32
    biases: list[np.ndarray]  # per layer (c_out,) float32
    layers: tuple[tuple[int, int], ...]
    feat_mean: np.ndarray
    feat_std: np.ndarray
    y_scale: np.ndarray
    channels: tuple[str, ...] = MOUTH_CHANNELS
    meta: dict = field(default_factory=dict)

    @classmethod
    def init(cls, n_features: int, rng: np.random.Generator, *, hidden: int = HIDDEN, layers=LAYERS,
             channels=MOUTH_CHANNELS) -> "MotionNet":
        ws, bs = [], []
        c_in = n_features
        for k, (kernel, _) in enumerate(layers):
            c_out = len(channels) if k == len(layers) - 1 else hidden
            fan_in = kernel * c_in
            ws.append((rng.standard_normal((fan_in, c_out)) * np.sqrt(2.0 / fan_in)).astype(np.float32))
            bs.append(np.zeros(c_out, np.float32))
            c_in = c_out
        return cls(ws, bs, tuple(layers), np.zeros(n_features, np.float32), np.ones(n_features, np.float32),
                   np.ones(len(channels), np.float32), tuple(channels))

    @property
    def n_params(self) -> int:
        return int(sum(w.size for w in self.weights) + sum(b.size for b in self.biases))

    def forward(self, x: np.ndarray, keep: bool = False):
        """Net output (B, T, n_channels) for normalised x (B, T, n_features); with keep,
        also the per-layer (im2col input, pre-activation) for ``backward``."""
        cache = []
        h = x
        for k, ((kernel, dil), w, b) in enumerate(zip(self.layers, self.weights, self.biases)):
            cols = _im2col(h, kernel, dil)
            z = cols @ w + b
            if keep:
                cache.append((cols, z, h.shape[2]))
            h = np.maximum(z, 0.0) if k < len(self.layers) - 1 else z
        return (h, cache) if keep else h

    def backward(self, dy: np.ndarray, cache) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Gradients (dW per layer, db per layer) of a loss with d loss / d output ``dy``."""
        dws, dbs = [None] * len(self.weights), [None] * len(self.biases)
        g = dy
        for k in range(len(self.weights) - 1, -1, -1):
            cols, z, c_in = cache[k]
            if k < len(self.weights) - 1:
                g = g * (z > 0)
            dws[k] = np.einsum("btc,btd->cd", cols, g, optimize=True).astype(np.float32)
            dbs[k] = g.sum((0, 1)).astype(np.float32)
            if k:
                kernel, dil = self.layers[k]
                g = _col2im(g @ self.weights[k].T, kernel, dil, c_in)
        return dws, dbs

    def hidden(self, feats: np.ndarray) -> np.ndarray:
        """(T, c) activations feeding the last layer, for raw features (T, n_features)."""
        h = ((feats - self.feat_mean) / self.feat_std)[None]
        for k, ((kernel, dil), w, b) in enumerate(zip(self.layers[:-1], self.weights[:-1], self.biases[:-1])):
            h = np.maximum(_im2col(h, kernel, dil) @ w + b, 0.0)
        return h[0]

    def predict(self, feats: np.ndarray) -> np.ndarray:
        """(T, n_channels) channel values in their units for raw features (T, n_features)."""
        x = ((feats - self.feat_mean) / self.feat_std)[None].astype(np.float32)
        return self.forward(x)[0] * self.y_scale


# ---------------------------------------------------------------- file format
def save_model(net: MotionNet, path: str | os.PathLike) -> None:
    """Write ``net`` as an uncompressed NPZ (see the module docstring), atomically."""
    from ..core.atomic import atomic_path

    meta = {"format": MODEL_FORMAT, "feature_kind": net.meta.get("feature_kind", FEATURE_KIND), "feat_hz": FEAT_HZ,
            "n_features": int(net.weights[0].shape[0] // net.layers[0][0]), "channels": list(net.channels),
            "layers": [{"kernel": k, "dilation": d} for k, d in net.layers], "n_params": net.n_params,
            **{k: v for k, v in net.meta.items() if k not in ("format", "channels", "layers", "feature_kind")}}
    arrays = {"meta": np.array(json.dumps(meta)), "feat_mean": net.feat_mean, "feat_std": net.feat_std,
              "y_scale": net.y_scale}
    for k, (w, b) in enumerate(zip(net.weights, net.biases)):
        arrays[f"w{k}"], arrays[f"b{k}"] = w.astype(np.float32), b.astype(np.float32)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:  # a file object: np.savez would append .npz to a bare path
            np.savez(f, **arrays)


def read_npz(path: str | os.PathLike, what: str, fmt: str, build: Callable):
    """``build(meta, npz)`` for an NPZ file with a JSON ``meta`` entry of format ``fmt``
    and this phototalk's audio features (FEATURE_KIND at FEAT_HZ); pickles are refused.
    Anything unreadable is a one-line InputError naming ``what``."""
    import zipfile

    from ..validate import input_file

    path = input_file(path, what)
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"][()]))
            if not isinstance(meta, dict) or meta.get("format") != fmt:
                raise InputError(f"{path} is not a {fmt} file (format="
                                 f"{meta.get('format') if isinstance(meta, dict) else None!r})")
            kinds = meta.get("feature_kinds", [meta.get("feature_kind")])
            if not set(kinds) & set(FEATURE_KINDS) or float(meta.get("feat_hz")) != FEAT_HZ:
                raise InputError(f"{path} holds {', '.join(map(str, kinds))} features at {meta.get('feat_hz')} Hz; "
                                 f"this phototalk computes {' or '.join(FEATURE_KINDS)} at {FEAT_HZ:g} Hz")
            return build(meta, z)
    except InputError:
        raise
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, json.JSONDecodeError) as e:
        raise InputError(f"cannot read {what} {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") \
            from None


def load_model(path: str | os.PathLike) -> MotionNet:
    """Read a model file written by ``save_model``; one-line InputError when it is not one."""
    def build(meta, z):
        layers = tuple((int(l["kernel"]), int(l["dilation"])) for l in meta["layers"])
        return MotionNet([np.asarray(z[f"w{k}"], np.float32) for k in range(len(layers))],
                         [np.asarray(z[f"b{k}"], np.float32) for k in range(len(layers))], layers,
                         np.asarray(z["feat_mean"], np.float32), np.asarray(z["feat_std"], np.float32),
                         np.asarray(z["y_scale"], np.float32), tuple(meta["channels"]), meta)

    net = read_npz(path, "motion model", MODEL_FORMAT, build)
    meta, layers, ws, bs = net.meta, net.layers, net.weights, net.biases
    c_in = int(meta.get("n_features", -1))
    for (kernel, _), w, b in zip(layers, ws, bs):
        if w.ndim != 2 or w.shape[0] != kernel * c_in or b.shape != (w.shape[1],) or not np.all(np.isfinite(w)):
            raise InputError(f"motion model {path}: layer shapes do not fit together")
        c_in = w.shape[1]
    if c_in != len(net.channels) or not set(net.channels) <= set(MOUTH_CHANNELS) or \
            net.feat_mean.shape != (ws[0].shape[0] // layers[0][0],):
        raise InputError(f"motion model {path}: channels or normalisation do not fit the layers")
    return net


# ---------------------------------------------------------------- training
@dataclass
class Clip:
    """One training clip: features (T, n_features) at FEAT_HZ, targets (T, n_channels) in
    the channels' units, mask (T,) bool where the face was measured."""

    name: str
    feats: np.ndarray
    targets: np.ndarray
    mask: np.ndarray
    kind: str = FEATURE_KIND  # of the features


def clip_from_track(name: str, feats: np.ndarray, track: dict[str, np.ndarray], found: np.ndarray, fps: float,
                    channels=MOUTH_CHANNELS, kind: str = FEATURE_KIND) -> Clip:
    """A Clip from features at FEAT_HZ and per-video-frame channels (n,) at ``fps`` (frame
    i at i / fps s, ``found`` (n,) bool where a face was measured)."""
    n = len(feats)
    y = np.stack([np.nan_to_num(np.asarray(track[c], np.float32)) for c in channels], 1)
    targets = resample(y, fps, FEAT_HZ, n, src_offset=0.0, dst_offset=0.5)
    ok = resample(found.astype(np.float32), fps, FEAT_HZ, n, src_offset=0.0, dst_offset=0.5) > 0.99
    return Clip(name, feats.astype(np.float32), targets, ok, kind)


SYNC_MAX_LAG_S = 0.3  # s; the largest offset between a clip's sound and picture ``sync_clips`` corrects
SYNC_RIDGE = 1e4


def linear_layer(n_features: int) -> tuple[int, int]:
    """(taps, spacing) of the linear model and the sync probe: +-0.4 s of context either
    way; wide features (Whisper's 384) get fewer, wider-spaced taps (5 taps 0.08 s apart)
    so the ridge system stays ~2k unknowns."""
    return LINEAR_LAYER if n_features <= 64 else (5, 4)


def _probe_rows(c: Clip) -> np.ndarray:
    return _im2col(c.feats[None], *linear_layer(c.feats.shape[1]))[0]


def best_lag(p: np.ndarray, y: np.ndarray, max_lag: int) -> tuple[float, int]:
    """(correlation, lag) maximising corr(p[t], y[t + lag]) over |lag| <= max_lag (frames)."""
    best = (-2.0, 0)
    for lag in range(-max_lag, max_lag + 1):
        a, b = (p[:len(p) - lag], y[lag:]) if lag >= 0 else (p[-lag:], y[:lag])
        if len(a) > 2 and a.std() > 0 and b.std() > 0:
            best = max(best, (float(np.corrcoef(a, b)[0, 1]), lag))
    return best


def sync_clips(clips: list[Clip], *, rounds: int = 2) -> tuple[list[Clip], dict[str, int]]:
    """``clips`` with each clip's targets shifted to where its lips match its sound, and
    the shifts (feature frames; target t comes from t + lag). Real clips carry sound and
    picture offsets of up to ~0.3 s, and a mouth moving at the syllable rate (4-5 Hz) is
    anti-correlated with itself 0.1 s away, so unaligned clips teach the net to cancel out.
    The offset of each clip is where a linear probe trained on the *other* clips (log-mel
    context -> opening) best correlates with it, refined over ``rounds``."""
    if len(clips) < 2:
        return clips, {c.name: 0 for c in clips}
    max_lag = int(round(SYNC_MAX_LAG_S * FEAT_HZ))
    rows = [_probe_rows(c) for c in clips]
    mu = np.concatenate(rows).mean(0)
    sd = np.concatenate(rows).std(0) + 1e-3
    rows = [((r - mu) / sd).astype(np.float64) for r in rows]
    ys = []
    for c in clips:
        y = c.targets[:, 0].astype(np.float64)
        ys.append(np.where(c.mask, (y - y[c.mask].mean()) / (y[c.mask].std() + 1e-6), 0.0))
    gram = [r[c.mask].T @ r[c.mask] for r, c in zip(rows, clips)]
    lags = [0] * len(clips)
    for _ in range(rounds):
        xty = [r[c.mask].T @ np.roll(y, -lag)[c.mask] for r, y, c, lag in zip(rows, ys, clips, lags)]
        g_all, x_all = sum(gram), sum(xty)
        new = []
        for k, c in enumerate(clips):
            w = np.linalg.solve(g_all - gram[k] + SYNC_RIDGE * np.eye(len(mu)), x_all - xty[k])
            new.append(best_lag(rows[k] @ w, ys[k], max_lag)[1])
        lags = new
    return [shift_clip(c, lag) for c, lag in zip(clips, lags)], {c.name: int(lag) for c, lag in zip(clips, lags)}


def shift_clip(c: Clip, lag: int) -> Clip:
    """``c`` with targets[t] = old targets[t + lag] (frames shifted in lose their mask)."""
    if lag == 0:
        return c
    y, m = np.roll(c.targets, -lag, axis=0), np.roll(c.mask, -lag)
    if lag > 0:
        m[-lag:] = False
    else:
        m[:-lag] = False
    return Clip(c.name, c.feats, y, m, c.kind)


def normalise_speakers(clips: list[Clip]) -> list[Clip]:
    """``clips`` with each clip's channels brought to the pooled mean and spread of all
    clips: how wide a person opens their mouth is theirs, not the sound's, and the net
    would otherwise learn it from the voice's timbre (and miss it on a new voice)."""
    ys = np.concatenate([c.targets[c.mask] for c in clips])
    mean, std = ys.mean(0), ys.std(0) + 1e-6
    out = []
    for c in clips:
        y = c.targets[c.mask]
        if len(y) < 10:
            out.append(c)
            continue
        t = (c.targets - y.mean(0)) / (y.std(0) + 1e-6) * std + mean
        out.append(Clip(c.name, c.feats, t.astype(np.float32), c.mask, c.kind))
    return out


Progress = Callable[[int, int, float], None]  # (step, steps, loss)


def _kind_of(clips: list[Clip]) -> str:
    kinds = {c.kind for c in clips}
    if len(kinds) != 1:
        raise InputError(f"the clips hold different audio features ({', '.join(sorted(kinds))})")
    return kinds.pop()


def train(clips: list[Clip], *, seed: int = 0, steps: int = 1500, lr: float = 2e-3, batch: int = 16,
          window_s: float = 2.56, weight_decay: float = 1e-4, hidden: int = HIDDEN, feature_noise: float = 0.1,
          init: MotionNet | None = None, progress: Progress | None = None) -> MotionNet:
    """Train a MotionNet on ``clips`` with Adam (cosine-decayed ``lr``, decoupled
    ``weight_decay``) for ``steps`` steps of ``batch`` random windows of ``window_s``,
    masked MSE on the scaled channels, Gaussian ``feature_noise`` on the normalised
    inputs. ``init``: start from this net (fine-tuning; its normalisation is kept).
    Same clips, seed and machine -> bit-identical weights (numpy's generator drives every
    draw; the matmuls are deterministic for a fixed thread count)."""
    if not clips:
        raise InputError("no training clips")
    rng = np.random.default_rng(seed)
    allf = np.concatenate([c.feats for c in clips])
    ally = np.concatenate([c.targets[c.mask] for c in clips])
    if len(ally) < 10:
        raise InputError(f"only {len(ally)} frames with a measured face to train on")
    if init is None:
        net = MotionNet.init(allf.shape[1], rng, hidden=hidden)
        net.feat_mean = allf.mean(0).astype(np.float32)
        net.feat_std = np.maximum(allf.std(0), 1e-3).astype(np.float32)
        net.y_scale = np.maximum(ally.std(0), 1e-3).astype(np.float32)
        net.biases[-1] = (ally.mean(0) / net.y_scale).astype(np.float32)  # start at the mean opening
    else:
        net = MotionNet([w.copy() for w in init.weights], [b.copy() for b in init.biases], init.layers,
                        init.feat_mean, init.feat_std, init.y_scale, init.channels, dict(init.meta))
    win = max(8, int(round(window_s * FEAT_HZ)))
    params = net.weights + net.biases
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    b1, b2, eps = 0.9, 0.999, 1e-8
    lengths = np.array([len(c.feats) for c in clips], np.float64)
    pick_p = lengths / lengths.sum()  # clips drawn in proportion to their length
    t0 = time.perf_counter()
    loss_avg = None
    for step in range(1, steps + 1):
        xs, ys, ms = [], [], []
        for ci in rng.choice(len(clips), size=batch, p=pick_p):
            c = clips[ci]
            a = int(rng.integers(0, max(1, len(c.feats) - win + 1)))
            f, y, mk = c.feats[a:a + win], c.targets[a:a + win], c.mask[a:a + win]
            pad = win - len(f)
            if pad:
                f = np.pad(f, ((0, pad), (0, 0)))
                y, mk = np.pad(y, ((0, pad), (0, 0))), np.pad(mk, (0, pad))
            xs.append(f), ys.append(y), ms.append(mk)
        x = (np.stack(xs) - net.feat_mean) / net.feat_std
        x = (x + feature_noise * rng.standard_normal(x.shape)).astype(np.float32)
        y = np.stack(ys) / net.y_scale
        mk = np.stack(ms).astype(np.float32)[..., None]
        out, cache = net.forward(x, keep=True)
        err = (out - y) * mk
        denom = max(float(mk.sum()) * y.shape[2], 1.0)
        loss = float((err ** 2).sum() / denom)
        dws, dbs = net.backward((2.0 / denom * err).astype(np.float32), cache)
        rate = lr * 0.5 * (1 + np.cos(np.pi * (step - 1) / steps))
        for k, (p, g) in enumerate(zip(params, dws + dbs)):
            m[k] = b1 * m[k] + (1 - b1) * g
            v[k] = b2 * v[k] + (1 - b2) * g * g
            mh, vh = m[k] / (1 - b1 ** step), v[k] / (1 - b2 ** step)
            if p.ndim == 2:
                p *= np.float32(1 - rate * weight_decay)
            p -= (rate * mh / (np.sqrt(vh) + eps)).astype(np.float32)
        loss_avg = loss if loss_avg is None else 0.98 * loss_avg + 0.02 * loss
        if progress is not None:
            progress(step, steps, loss_avg)
    net.meta = {**(init.meta if init is not None else {}),
                "feature_kind": _kind_of(clips), "seed": int(seed), "steps": int(steps), "lr": float(lr),
                "batch": int(batch),
                "window_s": float(window_s), "weight_decay": float(weight_decay),
                "feature_noise": float(feature_noise), "final_loss": round(float(loss_avg), 5),
                "train_seconds": round(time.perf_counter() - t0, 2), "fine_tuned": init is not None,
                "data": {"clips": [c.name for c in clips], "n_clips": len(clips),
                         "seconds": round(float(lengths.sum() / FEAT_HZ), 2),
                         "measured_seconds": round(float(len(ally) / FEAT_HZ), 2)}}
    return net


LINEAR_LAYER = (21, 2)  # (taps, spacing): the linear model sees +-0.4 s of features
LINEAR_RIDGE = 1e4  # ridge strength, in units of the normalised features' squared sum


def fit_linear(clips: list[Clip], *, ridge: float = LINEAR_RIDGE, seed: int = 0) -> MotionNet:
    """A one-layer MotionNet (a single dilated linear convolution, LINEAR_LAYER) fitted in
    closed form by ridge regression: deterministic, seconds on a CPU, and with ~3.4k
    weights it does not learn the training speakers' voices. ``seed`` is recorded only."""
    t0 = time.perf_counter()
    allf = np.concatenate([c.feats for c in clips])
    kernel, dil = linear_layer(allf.shape[1])
    ys = np.concatenate([c.targets[c.mask] for c in clips])
    if len(ys) < 10:
        raise InputError(f"only {len(ys)} frames with a measured face to train on")
    mean, std = allf.mean(0).astype(np.float32), np.maximum(allf.std(0), 1e-3).astype(np.float32)
    y_scale = np.maximum(ys.std(0), 1e-3).astype(np.float32)
    gram, xty, sx, sy, m = 0.0, 0.0, 0.0, 0.0, 0
    for c in clips:
        cols = _im2col(((c.feats - mean) / std)[None], kernel, dil)[0][c.mask].astype(np.float64)
        y = c.targets[c.mask] / y_scale
        gram, xty = gram + cols.T @ cols, xty + cols.T @ y
        sx, sy, m = sx + cols.sum(0), sy + y.sum(0), m + len(y)
    # Centre in closed form (the bias is not penalised): Sxx - m mu mu^T, Sxy - m mu ybar^T.
    mx, my = sx / m, sy / m
    a = gram - m * np.outer(mx, mx) + ridge * np.eye(len(mx))
    w = np.linalg.solve(a, xty - m * np.outer(mx, my))
    # Ridge shrinks the prediction towards the mean (to ~0.5 of the real spread on held-out
    # speakers): stretch it back to the training targets' spread, so the mouth moves as far
    # as real mouths do (the closures and silences are set afterwards anyway).
    pred_var = np.einsum("kc,kl,lc->c", w, gram / m - np.outer(mx, mx), w)
    w = w / np.sqrt(np.maximum(pred_var, 1e-9))  # the targets are scaled to std 1 (y_scale)
    b = my - mx @ w
    net = MotionNet([w.astype(np.float32)], [b.astype(np.float32)], ((kernel, dil),), mean, std, y_scale)
    net.meta = {"arch": "linear", "feature_kind": _kind_of(clips), "seed": int(seed), "ridge": float(ridge),
                "train_seconds": round(time.perf_counter() - t0, 2),
                "data": {"clips": [c.name for c in clips], "n_clips": len(clips),
                         "seconds": round(float(len(allf) / FEAT_HZ), 2),
                         "measured_seconds": round(float(m / FEAT_HZ), 2)}}
    return net


def refit_head(net: MotionNet, clips: list[Clip], *, strength: float = 1e5) -> MotionNet:
    """``net`` with its last layer refitted by ridge regression to ``clips`` (one
    speaker's own video): min |H W - Y|^2 + strength * n_frames/1000 * |W - W0|^2, so a
    few seconds of video move it only as far as they have evidence for. Closed form,
    deterministic, a fraction of a second."""
    kernel, dil = net.layers[-1]
    hs = np.concatenate([_im2col(net.hidden(c.feats)[None], kernel, dil)[0][c.mask] for c in clips]
                        ).astype(np.float64)
    ys = np.concatenate([c.targets[c.mask] for c in clips]).astype(np.float64) / net.y_scale
    if len(hs) < 25:
        raise InputError(f"only {len(hs)} frames with a measured face: too little to personalise from")
    h1 = np.concatenate([hs, np.ones((len(hs), 1))], 1)
    w0 = np.concatenate([net.weights[-1], net.biases[-1][None]], 0).astype(np.float64)
    lam = strength * len(hs) / 1000.0
    a = h1.T @ h1 + lam * np.eye(h1.shape[1])
    w = np.linalg.solve(a, h1.T @ ys + lam * w0)
    out = MotionNet([x.copy() for x in net.weights], [x.copy() for x in net.biases], net.layers, net.feat_mean,
                    net.feat_std, net.y_scale, net.channels, dict(net.meta))
    out.weights[-1], out.biases[-1] = w[:-1].astype(np.float32), w[-1].astype(np.float32)
    out.meta["personalised_on"] = [c.name for c in clips]
    return out


# ---------------------------------------------------------------- motion
# A quiet stretch shorter than this is left to the net (a stop's hold, a soft consonant, a
# breath between words): the loudness gate marks ~17% of real speech frames silent, and
# shutting all of them cut the held-out speakers' lip correlation (track) from 0.67 to 0.54.
# Chosen by nested leave-one-speaker-out CV on the training speakers (candidates 0.15, 0.25,
# 0.4, 0.6, 1.0 s): every one of the 11 outer folds picked 0.6 s.
PAUSE_MIN_S = 0.6  # s
PAUSE_EASE_S = 0.06  # s; the lips close and reopen over this long at a pause's edges


def pause_gate(silent: np.ndarray, fps: float, min_s: float = PAUSE_MIN_S) -> np.ndarray:
    """(n,) float32 in 0..1: 0 inside runs of ``silent`` ((n,) bool, frames at ``fps``)
    lasting at least ``min_s``, rising linearly to 1 over PAUSE_EASE_S outside them."""
    from .visemes import seconds_to

    pause = np.zeros(len(silent), bool)
    edges = np.flatnonzero(np.diff(np.r_[0, silent.astype(np.int8), 0]))
    for a, b in zip(edges[::2], edges[1::2]):
        if (b - a) / fps >= min_s:
            pause[a:b] = True
    return np.clip(seconds_to(pause, fps) / PAUSE_EASE_S, 0.0, 1.0).astype(np.float32)


def mouth_channels(net: MotionNet, speech: Speech, fps: float, n: int, phones=None,
                   feats: np.ndarray | None = None, pause_s: float | None = None) -> dict[str, np.ndarray]:
    """Mouth channels (each (n,) float32, frame i at i / fps) predicted by ``net`` for
    ``speech``: shut in silence, and with ``phones`` [(ARPAbet, start_s, end_s)] the lips
    meet at /p b m/ (easing over CLOSURE_EASE_S) and touch the teeth at /f v/. ``feats``:
    the speech's features of the net's kind at FEAT_HZ when already computed. Quiet
    stretches of at least ``pause_s`` (default PAUSE_MIN_S) shut the mouth."""
    from .analytic import mouth_from_loudness, mouth_from_phones
    from .visemes import CLOSURE_EASE_S, seconds_to

    if feats is None:
        feats = audio_features(speech, net.meta.get("feature_kind", FEATURE_KIND))
    pred = net.predict(feats)
    y = resample(pred, FEAT_HZ, fps, n, src_offset=0.5, dst_offset=0.0)
    ctl = {c: np.zeros(n, np.float32) for c in MOUTH_CHANNELS}
    for k, c in enumerate(net.channels):
        ctl[c] = np.clip(y[:, k], *CLIP[c]).astype(np.float32)
    quiet = mouth_from_loudness(speech, fps, n) <= 0
    gate = pause_gate(quiet, fps, PAUSE_MIN_S if pause_s is None else pause_s)
    ctl["lip_tuck"] = np.zeros(n, np.float32)
    if phones:
        # Where the lips must meet (/p b m/ closures, the /f v/ contact) every mouth channel
        # eases into the analytic model's, over CLOSURE_EASE_S: the shape around a closure
        # is the one the renderer is known to shut (a pursed or narrow shape from the net
        # parts the rendered lips even at mouth_open 0).
        ana = mouth_from_phones(speech, fps, n, phones)
        meet = ana.pop("lips_meet")
        ease = np.clip(seconds_to(meet, fps) / CLOSURE_EASE_S, 0.0, 1.0)
        for c in ("mouth_open", "mouth_wide", "mouth_round", "lip_tuck"):
            ctl[c] = (ana[c] + (ctl[c] - ana[c]) * ease).astype(np.float32)
        # A quiet stretch touching a closure is the stop's hold: shut there too.
        near = seconds_to(meet, fps) <= 2 * CLOSURE_EASE_S
        gate = np.where(quiet & near, 0.0, gate).astype(np.float32)
    for c in ("mouth_open", "mouth_wide", "mouth_round", "lip_tuck"):
        ctl[c] = (ctl[c] * gate).astype(np.float32)
    # The jaw follows the final lips as in the analytic model (lagging through a quick
    # closure): the net's own jaw, open through a /b/, kept the rendered lips apart there.
    ctl["jaw_open"] = jaw_from_mouth(ctl["mouth_open"], fps)
    if phones:  # and no wider at a closure than the analytic jaw (a wide vowel next to it drags it open)
        ana_jaw = jaw_from_mouth(np.where(quiet, 0.0, ana["mouth_open"]), fps)
        ctl["jaw_open"] = np.minimum(ctl["jaw_open"], ana_jaw + (ctl["jaw_open"] - ana_jaw) * ease).astype(np.float32)
    return ctl


class LearnedMotion:
    """A MotionModel (``motion.base``): the analytic track with its mouth channels replaced
    by ``net``'s (``mouth_channels``)."""

    def __init__(self, net: MotionNet, name: str = "learned"):
        self.net = net
        self.name = name

    def __call__(self, speech: Speech, fps: float, **kw) -> MotionTrack:
        return learned_motion(speech, fps, net=self.net, **kw)


def learned_motion(speech: Speech, fps: float, *, net: MotionNet, seed: int = 0, phones=None, speed: float = 1.0,
                   still: bool = False, emotion: str = "neutral", emotion_strength: float = 1.0,
                   gaze: str = "natural", singing: str = "auto") -> MotionTrack:
    """As ``analytic.analytic_motion`` (same arguments, same seed -> same track), with the
    mouth channels predicted by ``net`` (see ``mouth_channels``)."""
    from .analytic import analytic_motion

    track = analytic_motion(speech, fps, seed=seed, phones=phones, speed=speed, still=still, emotion=emotion,
                            emotion_strength=emotion_strength, gaze=gaze, singing=singing)
    ctl = mouth_channels(net, speech, fps, track.n_frames, phones)
    for c, v in ctl.items():
        setattr(track, c, v)
    return track


def load_motion(path: str | os.PathLike) -> LearnedMotion:
    """A LearnedMotion from a model file (``--motion-model PATH``)."""
    return LearnedMotion(load_model(path), name=os.fspath(path))


# ``--motion-model MODEL.npz`` opens this file type through the motion-model seam.
register_loader(".npz", load_motion)
