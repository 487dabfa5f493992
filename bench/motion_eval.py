"""Natural-motion acceptance (issue 5), measured on rendered videos with the independent
../shared/eval/measure.py (MediaPipe landmarks on the output frames):

    .venv/bin/python bench/motion_eval.py [--images A.png B.jpg ...] [--audio a.wav b.wav ...]
        [--size 512] [--out /tmp/phototalk-motion] [--eval-python ~/.eval/bin/python]
        [--skip pose speed seeds emotions emotion_video]

1. pose: every image x audio at speed 1 -> head pose std (yaw, pitch, roll, deg),
   blinks/min, landmark jitter; pass bands yaw 2-8, pitch 2-6, roll 0.5-4, blinks 8-25,
   jitter <= 0.0085.
2. speed: --speed 0.5 / 1.0 / 1.5 on the first audio -> measured yaw std must grow.
3. seeds: seed 1 twice (sha256 must match) and seed 2 -> Pearson correlation of the
   measured yaw, pitch and roll series of seed 1 vs seed 2 (want < 0.5).
4. emotions: each preset rendered without speech at strength 1, landmarks re-detected
   on the frame: mouth width, corner drop (+ = corners below the lip middle), brow and
   inner-brow height above the eyes, inner-brow gap, eye opening — each relative to
   neutral, in inter-ocular distances.
5. emotion_video: the first image speaking 4 s of the first audio with each --emotion at
   strength 1 (same seed): the same metrics averaged over all frames, minus neutral's —
   the expression must survive speech.
Writes results.json in --out and prints a table per part.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT.parent / "shared" / "eval" / "assets"
MEASURE = ROOT.parent / "shared" / "eval" / "measure.py"
sys.path.insert(0, str(ROOT / "src"))

# Runs in the eval venv: measure.py's report plus the per-frame pose series it is built on.
MEASURE_CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import measure as M
frames, fps, _, _ = M.decode(sys.argv[2])
lms = M.landmarks(frames)
out = M.measure(sys.argv[2])
out["pose_series_deg"] = M.rigid_angles(lms).tolist()
print(json.dumps(out))
"""


def measure(eval_python: str, video: Path) -> dict:
    env = dict(os.environ, GLOG_minloglevel="2", TF_CPP_MIN_LOG_LEVEL="2")
    r = subprocess.run([eval_python, "-c", MEASURE_CHILD, str(MEASURE.parent), str(video)], check=True,
                       capture_output=True, text=True, env=env)
    return json.loads(r.stdout.strip().splitlines()[-1])


def sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def render(img: Path, aud: Path, out: Path, size: int, **opts) -> Path:
    import phototalk

    if not out.exists():
        phototalk.generate(img, aud, out, size=size, **opts)
    return out


def face_metrics(lm) -> dict:
    iod = np.linalg.norm(lm[33] - lm[263])
    lip_mid = (lm[13] + lm[14]) / 2
    el = np.linalg.norm(lm[159] - lm[145]) / np.linalg.norm(lm[33] - lm[133])
    er = np.linalg.norm(lm[386] - lm[374]) / np.linalg.norm(lm[263] - lm[362])
    return {"mouth_width": np.linalg.norm(lm[61] - lm[291]) / iod,
            "corner_drop": ((lm[61] + lm[291]) / 2 - lip_mid)[1] / iod,
            "brow_height": ((lm[159] - lm[105])[1] + (lm[386] - lm[334])[1]) / 2 / iod,
            "inner_brow_height": ((lm[159] - lm[107])[1] + (lm[386] - lm[336])[1]) / 2 / iod,
            "inner_brow_gap": np.linalg.norm(lm[107] - lm[336]) / iod,
            "eye_open": (el + er) / 2}


def emotions(images: list[Path], size: int) -> dict:
    from phototalk.face import mesh
    from phototalk.motion.expressive import PRESETS
    from phototalk.pipeline import prepare_rig
    from phototalk.render.warp import MeshWarpRenderer

    res = {}
    for img in images:
        r = MeshWarpRenderer(prepare_rig(img, size=size))
        rows = {}
        for name, p in PRESETS.items():
            frame = r.render(mouth_open=p.jaw, brow_up=p.brow_up, brow_inner=p.brow_inner,
                             brow_squeeze=p.brow_squeeze, eye_squint=p.eye_squint, smile=p.smile, cheek=p.cheek)
            lm = mesh.faces_in_image(frame)[0][:, :2]
            rows[name] = face_metrics(lm)
        base = rows["neutral"]
        res[img.name] = {e: {k: round(float(v - base[k]), 4) for k, v in m.items()} for e, m in rows.items()
                         if e != "neutral"}
        res[img.name]["neutral_abs"] = {k: round(float(v), 4) for k, v in base.items()}
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", nargs="+", default=["photo_woman_frontal.png", "photo_asian_woman_frontal.png",
                                                    "photo_man_frontal_halfbody.jpg"])
    ap.add_argument("--audio", nargs="+", default=["en_radio_holidays.wav", "en_vlog_reopening.wav", "zh_news.wav"])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--out", default="/tmp/phototalk-motion")
    ap.add_argument("--eval-python", default=os.path.expanduser("~/.eval/bin/python"))
    ap.add_argument("--skip", nargs="*", default=[])
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    images = [ASSETS / "images" / i for i in a.images]
    audios = [ASSETS / "audio" / x for x in a.audio]
    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}

    def save():
        results_path.write_text(json.dumps(results, indent=1))

    cache = results.setdefault("measured", {})

    def measured(video: Path) -> dict:
        """measure.py's report of ``video`` (kept in results.json, keyed by file name)."""
        if video.name not in cache:
            cache[video.name] = measure(a.eval_python, video)
            save()
        return cache[video.name]

    if "pose" not in a.skip:
        rows = []
        for img in images:
            for aud in audios:
                t = time.time()
                v = render(img, aud, out / f"{img.stem}__{aud.stem}__s1.mp4", a.size, seed=1)
                m = measured(v)
                row = {"image": img.name, "audio": aud.name, "pose_std_deg": m["pose_std_deg"],
                       "blink_per_min": m["blink_per_min"], "jitter": m["jitter"], "face_rate": m["face_rate"]}
                rows.append(row)
                y, p, r = m["pose_std_deg"]
                ok = (2 <= y <= 8) and (2 <= p <= 6) and (0.5 <= r <= 4) and (8 <= m["blink_per_min"] <= 25) \
                    and m["jitter"] <= 0.0085
                print(f"{img.name:32s} {aud.name:24s} yaw {y:4.1f} pitch {p:4.1f} roll {r:4.1f} "
                      f"blinks {m['blink_per_min']:5.1f} jitter {m['jitter']:.4f} {'ok' if ok else 'OUT'} "
                      f"({time.time() - t:.0f} s)", flush=True)
        results["pose"] = rows
        save()
    if "speed" not in a.skip:
        rows = []
        for img in images:
            aud = audios[0]
            stds = []
            for s in (0.5, 1.0, 1.5):
                name = f"{img.stem}__{aud.stem}__s1" + ("" if s == 1.0 else f"__speed{s}") + ".mp4"
                v = render(img, aud, out / name, a.size, seed=1, speed=s)
                stds.append(measured(v)["pose_std_deg"])
            yaw = [round(x[0], 2) for x in stds]
            rows.append({"image": img.name, "audio": aud.name, "pose_std_by_speed": stds, "yaw": yaw})
            print(f"speed 0.5/1.0/1.5  {img.name:32s} yaw std {yaw}  {'monotonic' if yaw[0] < yaw[1] < yaw[2] else 'NOT'}",
                  flush=True)
        results["speed"] = rows
        save()
    if "seeds" not in a.skip:
        rows = []
        for img in images:
            for aud in audios:
                v1 = render(img, aud, out / f"{img.stem}__{aud.stem}__s1.mp4", a.size, seed=1)
                v1b = out / f"{img.stem}__{aud.stem}__s1_again.mp4"
                if v1b.exists():
                    v1b.unlink()
                render(img, aud, v1b, a.size, seed=1)
                v2 = render(img, aud, out / f"{img.stem}__{aud.stem}__s2.mp4", a.size, seed=2)
                same = sha256(v1) == sha256(v1b)
                p1 = np.array(measured(v1)["pose_series_deg"])
                p2 = np.array(measured(v2)["pose_series_deg"])
                n = min(len(p1), len(p2))
                corr = [float(np.corrcoef(p1[:n, k], p2[:n, k])[0, 1]) for k in range(3)]
                rows.append({"image": img.name, "audio": aud.name, "sha_equal": same, "corr_ypr": corr})
                print(f"seeds {img.name:32s} {aud.name:24s} same-seed sha256 equal: {same}  "
                      f"corr seed1/seed2 yaw {corr[0]:+.2f} pitch {corr[1]:+.2f} roll {corr[2]:+.2f}", flush=True)
                v1b.unlink()
        results["seeds"] = rows
        save()
    if "emotions" not in a.skip:
        res = emotions(images, a.size)
        results["emotions"] = res
        save()
        for img, rows in res.items():
            print(img, "neutral:", rows["neutral_abs"])
            for e, d in rows.items():
                if e != "neutral_abs":
                    print(f"   {e:10s}", "  ".join(f"{k} {v:+.3f}" for k, v in d.items()))
    if "emotion_video" not in a.skip:
        from phototalk.audio.io import load_speech
        from phototalk.motion.expressive import PRESETS

        sys.path.insert(0, str(ROOT / "tests"))
        import pixels
        from conftest import write_wav

        img = images[0]
        clip = write_wav(out / "clip4.wav", load_speech(audios[0]).samples[:4 * 16000], 16000)
        means = {}
        for e in PRESETS:
            v = render(img, clip, out / f"{img.stem}__emotion_{e}.mp4", a.size, seed=3, emotion=e, emotion_strength=1.0)
            frames, _ = pixels.decode(v)
            ms = [face_metrics(lm) for lm in pixels.landmarks(frames) if lm is not None]
            means[e] = {k: float(np.mean([m[k] for m in ms])) for k in ms[0]}
        rows = {e: {k: round(v - means["neutral"][k], 4) for k, v in m.items()} for e, m in means.items()
                if e != "neutral"}
        results["emotion_video"] = {"image": img.name, "neutral_abs": means["neutral"], "delta": rows}
        save()
        print(f"emotion over a 4-s spoken clip, {img.name} (mean over frames, minus neutral):")
        for e, d in rows.items():
            print(f"   {e:10s}", "  ".join(f"{k} {v:+.3f}" for k, v in d.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
