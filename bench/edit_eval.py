"""Acceptance measurements for `phototalk edit` and `phototalk dub` (issue 6) on the real
talking videos in ../shared/eval/assets/video, measured with the independent
../shared/eval/measure.py (MediaPipe on the output's pixels, dlib identity, pocketsphinx).

    .venv/bin/python bench/edit_eval.py [--out /tmp/phototalk-edit-eval] [--videos a.mp4 ...]

Per speech video it prints: close-mouth (aperture < 0.04 in the range, correlation with
the original outside it), close-eyes (eye aperture / clip median in the range), pixels
outside the face region (lossless encode: changed pixel count, PSNR), dub with TTS text
(bilabial_closed, vowel_open, identity distance to the original's first frame), dub with
the video's own audio (ref_corr), dub with twice-as-long audio (frame count vs audio
length, PNGs around the loop points).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT.parent / "shared" / "eval" / "assets" / "video"
MEASURE = ROOT.parent / "shared" / "eval" / "measure.py"
SPEECH_VIDEOS = ["hdtf_woman_speech_a.mp4", "man_glasses_speech.mp4", "child_speech.mp4"]
MOUTH_RANGE, EYES_RANGE = (2.0, 5.0), (5.5, 7.0)  # s
DUB_TEXT = ("Before the big meeting, Bob bought a map of the old market and a pot of warm apple pie. "
            "Mom asked him to bring the maps back by evening.")
sys.path.insert(0, str(ROOT / "src"))

# Runs in the evaluation venv: per-frame aperture and eye series with measure.py's own code.
SERIES = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import measure
out = {}
for p in sys.argv[2:]:
    frames, fps, _, _ = measure.decode(p)
    ap, eye, _ = measure.series(measure.landmarks(frames))
    out[p] = {"fps": fps, "ap": [None if x != x else float(x) for x in ap],
              "eye": [None if x != x else float(x) for x in eye]}
print(json.dumps(out))
"""


# Runs in the evaluation venv: dlib identity distance of 12 evenly spaced dub frames to
# (a) the original's first frame, (b) the original frame each was made from; and of the
# original's own same frames to its first frame (the clip's baseline).
IDENTITY = r"""
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import measure
import face_recognition_models as frm, dlib
det = dlib.get_frontal_face_detector()
sp = dlib.shape_predictor(frm.pose_predictor_model_location())
enc = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
def emb(img):
    d = det(img, 1)
    if not d:
        return None
    d = max(d, key=lambda r: r.width() * r.height())
    return np.array(enc.compute_face_descriptor(img, sp(img, d)))
fo, _, _, _ = measure.decode(sys.argv[2])
fd, _, _, _ = measure.decode(sys.argv[3])
n = min(len(fo), len(fd))
idx = np.linspace(0, n - 1, 12).astype(int)
r = emb(fo[0])
dist = lambda a, b: 1.0 if a is None or b is None else float(np.linalg.norm(a - b))
to_first = [dist(emb(fd[i]), r) for i in idx]
paired = [dist(emb(fd[i]), emb(fo[i])) for i in idx]
base = [dist(emb(fo[i]), r) for i in idx]
print(json.dumps({"to_first": float(np.mean(to_first)), "paired": float(np.mean(paired)),
                  "orig_to_first": float(np.mean(base))}))
"""


def identity(eval_py: str, orig, dub) -> dict:
    r = subprocess.run([eval_py, "-c", IDENTITY, str(MEASURE.parent), str(orig), str(dub)], capture_output=True,
                       text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def series(eval_py: str, *paths) -> dict:
    r = subprocess.run([eval_py, "-c", SERIES, str(MEASURE.parent), *map(str, paths)], capture_output=True,
                       text=True, check=True)
    d = json.loads(r.stdout.strip().splitlines()[-1])
    return {p: {k: (np.array(v, float) if isinstance(v, list) else v) for k, v in d[str(p)].items()} for p in paths}


def measure(eval_py: str, video, *args) -> dict:
    r = subprocess.run([eval_py, str(MEASURE), str(video), *map(str, args)], capture_output=True, text=True,
                       check=True)
    return json.loads(r.stdout[r.stdout.index("{"):])


def write_wav(path: Path, y: np.ndarray, sr: int) -> Path:
    from phototalk.audio.io import write_wav as write

    write(path, y, sr)
    return path


def decode(path):
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def save_png(frame, path):
    from PIL import Image

    Image.fromarray(frame).save(path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="/tmp/phototalk-edit-eval")
    ap.add_argument("--eval-python", default=os.path.expanduser("~/.eval/bin/python"))
    ap.add_argument("--videos", nargs="*", default=SPEECH_VIDEOS)
    ap.add_argument("--skip-dub", action="store_true")
    ap.add_argument("--ease", type=float, default=0.12, help="edit's --ease (seconds)")
    a = ap.parse_args()
    if not ASSETS.is_dir():
        print(f"no evaluation videos at {ASSETS}", file=sys.stderr)
        return 1
    from phototalk.audio.io import load_speech
    from phototalk.edit import dub_video, edit_video
    from phototalk.render.video_rig import face_region_mask
    from phototalk.edit.source import frames, probe
    from phototalk.edit.tracking import track_faces

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {}
    for name in a.videos:
        src = ASSETS / name
        stem = Path(name).stem
        r: dict = {}
        # --- edit: mouth and eyes, lossless so the untouched pixels can be compared exactly
        ed = out / f"{stem}_edit.mp4"
        res = edit_video(src, ed, close_mouth=[f"{MOUTH_RANGE[0]}-{MOUTH_RANGE[1]}"],
                         close_eyes=[f"{EYES_RANGE[0]}-{EYES_RANGE[1]}"], lossless=True, ease_s=a.ease)
        s = series(a.eval_python, src, ed)
        so, se = s[src], s[ed]
        fps = so["fps"]
        t = np.arange(len(se["ap"])) / fps
        inm = (t >= MOUTH_RANGE[0]) & (t <= MOUTH_RANGE[1])
        ine = (t >= EYES_RANGE[0]) & (t <= EYES_RANGE[1])
        n = min(len(so["ap"]), len(se["ap"]))
        outside = ~inm[:n]
        ok = outside & np.isfinite(so["ap"][:n]) & np.isfinite(se["ap"][:n])
        r["mouth_closed_frac"] = float(np.mean(np.nan_to_num(se["ap"][inm], nan=1.0) < 0.04))
        r["mouth_ap_max_in_range"] = float(np.nanmax(se["ap"][inm]))
        r["mouth_corr_outside"] = float(np.corrcoef(so["ap"][:n][ok], se["ap"][:n][ok])[0, 1])
        ramp = a.ease + 1 / fps
        far = ok & ~((t[:n] >= MOUTH_RANGE[0] - ramp) & (t[:n] <= MOUTH_RANGE[1] + ramp))
        r["mouth_corr_outside_excl_ramps"] = float(np.corrcoef(so["ap"][:n][far], se["ap"][:n][far])[0, 1])
        med = float(np.nanmedian(so["eye"]))
        ratio = se["eye"][ine] / med
        r["eye_ratio_max_in_range"] = float(np.nanmax(ratio))
        r["eye_ratio_median_in_range"] = float(np.nanmedian(ratio))
        r["eye_below_30pct_frac"] = float(np.mean(np.nan_to_num(ratio, nan=1.0) < 0.3))
        # --- pixels outside the face region (the anchor ring's hull from our own tracking)
        info = probe(src)
        orig = list(frames(info))
        track = track_faces(iter(orig), info.fps)
        edited = decode(ed)
        changed = total = 0
        sse = 0.0
        for i, (fo, fe) in enumerate(zip(orig, edited)):
            keep = ~face_region_mask(track.landmarks[i], fo.shape[:2]) if track.found[i] else np.ones(fo.shape[:2], bool)
            diff = fo[keep].astype(np.int32) - fe[keep].astype(np.int32)
            changed += int(np.any(diff != 0, axis=-1).sum())
            total += int(keep.sum())
            sse += float((diff.astype(np.float64) ** 2).sum())
        r["outside_face_pixels"] = total
        r["outside_face_changed"] = changed
        r["outside_face_psnr_db"] = float("inf") if sse == 0 else float(10 * np.log10(255 ** 2 / (sse / (3 * total))))
        r["edit_frames"] = [len(orig), len(edited)]
        for i in (int(3.5 * fps), int(6.2 * fps)):
            save_png(np.concatenate([orig[i], edited[i]], 1), out / f"{stem}_edit_{i:04d}.png")
        if not a.skip_dub:
            first = out / f"{stem}_first.png"
            save_png(orig[0], first)
            # --- dub with TTS text
            dt = out / f"{stem}_dub_text.mp4"
            dub_video(src, dt, text=DUB_TEXT)
            m = measure(a.eval_python, dt, "--transcript", DUB_TEXT, "--ref-image", first)
            r.update({f"dub_text_{k}": m.get(k) for k in ("bilabial_closed", "n_bilabial", "vowel_open", "n_vowel",
                                                           "id_dist_mean", "id_dist_max", "face_rate",
                                                           "mouth_detail")})
            r.update({f"dub_text_id_{k}": v for k, v in identity(a.eval_python, src, dt).items()})
            # --- dub with its own audio
            do = out / f"{stem}_dub_own.mp4"
            dub_video(src, do, audio=src)
            m = measure(a.eval_python, do, "--ref-video", src)
            r.update({f"dub_own_{k}": m.get(k) for k in ("ref_corr", "ref_lag", "av_corr")})
            m0 = measure(a.eval_python, src, "--ref-video", src)
            # --- dub with twice-as-long audio: the clip's speech twice
            sp = load_speech(src)
            long_wav = write_wav(out / f"{stem}_long.wav", np.concatenate([sp.samples, sp.samples]), sp.sr)
            dl = out / f"{stem}_dub_long.mp4"
            res = dub_video(src, dl, audio=long_wav)
            frames_long = decode(dl)
            r["dub_long_frames"] = len(frames_long)
            r["dub_long_audio_frames"] = 2 * len(sp.samples) / sp.sr * info.fps
            r["dub_long_src_frames"] = len(orig)
            k = len(orig) - 1  # first turn of the ping-pong
            steps = [float(np.abs(frames_long[i + 1].astype(int) - frames_long[i].astype(int)).mean())
                     for i in range(len(frames_long) - 1)]
            r["dub_long_mean_step"] = float(np.mean(steps))
            r["dub_long_steps_at_turn"] = steps[k - 1:k + 1]
            save_png(np.concatenate(frames_long[k - 1:k + 2], 1), out / f"{stem}_dub_long_turn.png")
            r["orig_self_ref_corr"] = m0.get("ref_corr")
        report[name] = r
        print(name, json.dumps(r, indent=1), flush=True)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
