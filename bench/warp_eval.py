"""Fold- and tear-free head motion (issue 13), measured on the renderer's own maps:

    .venv/bin/python bench/warp_eval.py [--seconds 10] [--speeds 1.0 1.9] [--size 512]
        [--images A.png ...] [--every 1] [--sheets DIR] [--cli DIR]

For every portrait of ../shared/eval/assets/images x en_vlog_reopening.wav (cut to
--seconds) and each --speed, renders every --every-th frame of the track `generate` would
use and prints the worst inverse-consistency (px: how far an output pixel's source point
lands from it when mapped forward by the renderer's forward model), the most triangles
folded while visible, the most face triangles hidden (turned away), the largest |yaw| and
the mean render ms per frame. On the frame of largest |yaw| it also checks the face's
pixels independently of the rasteriser: each source point is located in the source
triangulation (scipy) and mapped by that triangle's deformed corners ("indep" column).
--sheets DIR: a PNG per portrait at the last speed: the photo, the frame of largest |yaw|,
and 2x close-ups of both faces. --cli DIR: instead run `phototalk generate --report` on
each pair (the full pipeline, encode included) and print the reports' figures.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT.parent / "shared" / "eval" / "assets"
sys.path.insert(0, str(ROOT / "src"))
CACHE = Path("/tmp/phototalk-warp-eval")


def cut_audio(seconds: float) -> Path:
    from phototalk.audio.io import load_speech

    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import write_wav

    out = CACHE / f"vlog_{seconds:g}s.wav"
    if not out.exists():
        y = load_speech(ASSETS / "audio" / "en_vlog_reopening.wav").samples
        write_wav(out, y[:int(seconds * 16000)], 16000)
    return out


def track_for(audio: Path, speed: float, image: Path, size: int):
    """The MotionTrack `generate` makes for this audio and speed (it does not depend on
    the portrait; one short generate run saves it)."""
    from phototalk.motion.track import MotionTrack
    from phototalk.pipeline import generate

    path = CACHE / f"track_{audio.stem}_{speed:g}.json"
    if not path.exists():
        generate(image, audio, str(CACHE / "track.mp4"), size=128, speed=speed, save_track=str(path))
    return MotionTrack.load_json(path)


def rig_for(image: Path, size: int):
    from phototalk.face.analyze import FaceRig
    from phototalk.pipeline import prepare_rig

    path = CACHE / f"rig_{image.stem}_{size}.npz"
    if path.exists():
        return FaceRig.load_npz(path)
    rig = prepare_rig(image, size=size)
    rig.save_npz(path)
    return rig


def independent_face_error(r, track, i: int) -> float:
    """Worst |forward(q) - x| (px) over the face's pixels of frame i, with the source
    triangle of q found by scipy's point location instead of the rasteriser's labels."""
    from scipy.spatial import Delaunay

    qx, qy, covered, pos, _ = r.last_map
    x0, y0, _, _ = r.roi
    tri = Delaunay(r.verts[:, :2])
    yy, xx = np.nonzero(covered)
    q = np.stack([qx[yy, xx] + x0, qy[yy, xx] + y0], 1).astype(np.float64)
    s = tri.find_simplex(q)
    ok = s >= 0
    T = tri.transform[s[ok]]
    b2 = np.einsum("nij,nj->ni", T[:, :2], q[ok] - T[:, 2])
    bary = np.concatenate([b2, 1 - b2.sum(1, keepdims=True)], 1)
    if not ok.all():  # a face pixel sampling outside the face mesh
        return float("inf")
    corners = tri.simplices[s[ok]]
    fwd = np.einsum("ni,nij->nj", bary, pos[corners])
    return float(np.hypot(fwd[:, 0] - (xx[ok] + x0), fwd[:, 1] - (yy[ok] + y0)).max())


def contact_sheet(r, img: np.ndarray, frame: np.ndarray, path: Path) -> None:
    from PIL import Image

    x, y, w, h = r.region_box("face")
    pad = int(0.15 * max(w, h))
    x0, y0 = max(0, x - pad), max(0, y - pad)
    x1, y1 = min(img.shape[1], x + w + pad), min(img.shape[0], y + h + pad)

    def zoom(a):
        c = Image.fromarray(a[y0:y1, x0:x1])
        return np.array(c.resize((2 * c.width, 2 * c.height), Image.LANCZOS))

    top = np.concatenate([img, frame], 1)
    bottom = np.concatenate([zoom(img), zoom(frame)], 1)
    width = max(top.shape[1], bottom.shape[1])
    pad_to = lambda a: np.pad(a, ((0, 0), (0, width - a.shape[1]), (0, 0)))
    Image.fromarray(np.concatenate([pad_to(top), pad_to(bottom)], 0)).save(path)


def run_direct(a, images, audio) -> None:
    from phototalk.render.warp import MeshWarpRenderer

    print(f"{'portrait':32s} {'speed':>5s} {'frames':>6s} {'worst px':>9s} {'p99 px':>7s} {'folds':>6s} "
          f"{'hidden':>6s} {'|yaw|°':>6s} {'indep px':>8s} {'ms/frame':>8s}")
    for img in images:
        rig = rig_for(img, a.size)
        r = MeshWarpRenderer(rig)
        for speed in a.speeds:
            track = track_for(audio, speed, img, a.size)
            idx = list(range(0, track.n_frames, a.every))
            errs, folds, hidden, t = [], [], [], 0.0
            yaw = np.abs(track.head_yaw)
            big = int(np.argmax(yaw))
            big_frame = None
            for i in sorted(set(idx + [big])):
                t0 = time.perf_counter()
                frame = r.render_frame(track, i)
                t += time.perf_counter() - t0
                st = r.last_stats
                errs.append(st["inverse_error_px"])
                folds.append(st["folded_triangles"])
                hidden.append(st["hidden_triangles"])
                if i == big:
                    big_frame = frame
                    indep = independent_face_error(r, track, i)
            print(f"{img.stem:32s} {speed:5.1f} {len(errs):6d} {max(errs):9.3f} {np.percentile(errs, 99):7.3f} "
                  f"{max(folds):6d} {max(hidden):6d} {np.degrees(yaw[big]):6.1f} {indep:8.4f} "
                  f"{1000 * t / len(errs):8.1f}", flush=True)
            if a.sheets and speed == a.speeds[-1]:
                Path(a.sheets).mkdir(parents=True, exist_ok=True)
                contact_sheet(r, rig.image, big_frame, Path(a.sheets) / f"{img.stem}_speed{speed:g}.png")


def run_cli(a, images, audio) -> None:
    out = Path(a.cli)
    out.mkdir(parents=True, exist_ok=True)
    print(f"{'portrait':32s} {'speed':>5s} {'frames':>6s} {'worst px':>9s} {'folds':>6s} {'hidden':>6s} "
          f"{'render+enc fps':>14s} {'first frame s':>13s}")
    for img in images:
        for speed in a.speeds:
            rep = out / f"{img.stem}_{speed:g}.json"
            subprocess.run([str(ROOT / ".venv" / "bin" / "phototalk"), "generate", "-i", str(img), "-a", str(audio),
                            "-o", str(out / f"{img.stem}_{speed:g}.mp4"), "--size", str(a.size), "--speed",
                            str(speed), "--report", str(rep), "-q"], check=True)
            j = json.loads(rep.read_text())
            rs, t = j["render"], j["timings_s"]
            print(f"{img.stem:32s} {speed:5.1f} {j['frames']:6d} {rs['worst_inverse_error_px']:9.3f} "
                  f"{rs['folded_triangles_max']:6d} {rs['hidden_triangles_max']:6d} "
                  f"{j['frames'] / (t['render'] + t['encode']):14.1f} {j['first_frame_s']:13.2f}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--speeds", type=float, nargs="+", default=[1.0, 1.9])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--images", nargs="+", help="file names in the assets' images (default: all)")
    ap.add_argument("--every", type=int, default=1, help="render every N-th frame")
    ap.add_argument("--sheets", help="write contact sheets (largest |yaw| frame) here")
    ap.add_argument("--cli", help="run `phototalk generate --report` into this folder instead")
    a = ap.parse_args()
    if not ASSETS.exists():
        print(f"needs {ASSETS}", file=sys.stderr)
        return 2
    CACHE.mkdir(exist_ok=True)
    os.environ.setdefault("GLOG_minloglevel", "2")
    images = [ASSETS / "images" / n for n in a.images] if a.images else sorted((ASSETS / "images").iterdir())
    audio = cut_audio(a.seconds)
    (run_cli if a.cli else run_direct)(a, images, audio)
    return 0


if __name__ == "__main__":
    sys.exit(main())
