"""Quality sweep: render every portrait of ../shared/eval/assets with given speech clips
and measure each video with ../shared/eval/measure.py (independent of our code).

    .venv/bin/python bench/eval_sweep.py [--audio en_radio_holidays.wav zh_news.wav] [--size 512]
        [--eval-python ~/.eval/bin/python] [--out /tmp/phototalk-sweep] [--silence]

--silence also renders each portrait with a clip that has 2 s of silence in the middle
and reports the fraction of silent frames whose measured aperture is < 0.04.
Prints a table and the pass/fail of issue #2's thresholds; writes results.json.
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
MEASURE = ROOT.parent / "shared" / "eval" / "measure.py"
sys.path.insert(0, str(ROOT / "src"))


def speech_with_silence(src: Path, dst: Path, gap_s: float = 2.0) -> tuple[float, float]:
    """Write first 3 s of ``src`` + ``gap_s`` of digital silence + next 3 s; return the gap."""
    from phototalk.audio.io import load_speech, write_wav

    y = load_speech(src).samples
    sr = 16000
    out = np.concatenate([y[:3 * sr], np.zeros(int(gap_s * sr), np.float32), y[3 * sr:6 * sr]])
    write_wav(dst, out, sr)
    return 3.0, 3.0 + gap_s


def measure(eval_python: str, video: Path, image: Path) -> dict:
    env = dict(os.environ, GLOG_minloglevel="2", TF_CPP_MIN_LOG_LEVEL="2")
    js = video.with_suffix(".json")
    subprocess.run([eval_python, str(MEASURE), str(video), "--ref-image", str(image), "--json", str(js)],
                   check=True, capture_output=True, env=env)
    return json.loads(js.read_text())


SILENT_SCRIPT = """
import sys, json, numpy as np
sys.path.insert(0, sys.argv[1])
import measure as M
frames, fps, _, _ = M.decode(sys.argv[2])
ap, _, _ = M.series(M.landmarks(frames))
print(json.dumps({"ap": [None if a != a else float(a) for a in ap], "fps": fps}))
"""


def silent_aperture(eval_python: str, video: Path, t0: float, t1: float) -> float:
    """Fraction of frames inside [t0, t1) whose re-detected aperture is < 0.04, measured
    by measure.py in its own environment (eval_python: phototalk's venv has no MediaPipe)."""
    env = dict(os.environ, GLOG_minloglevel="2", TF_CPP_MIN_LOG_LEVEL="2")
    r = subprocess.run([eval_python, "-c", SILENT_SCRIPT, str(MEASURE.parent), str(video)], check=True,
                       capture_output=True, text=True, env=env)
    d = json.loads(r.stdout.strip().splitlines()[-1])
    ap = np.array([np.nan if a is None else a for a in d["ap"]], float)
    idx = np.arange(len(ap)) / d["fps"]
    sel = (idx >= t0 + 0.1) & (idx < t1 - 0.1)  # a lip release may legitimately start at the edge
    a = ap[sel]
    return float(np.mean(np.nan_to_num(a, nan=1.0) < 0.04))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--audio", nargs="+", default=["en_radio_holidays.wav", "zh_news.wav"])
    ap.add_argument("--images", nargs="*", default=None)
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--eval-python", default=os.path.expanduser("~/.eval/bin/python"))
    ap.add_argument("--out", default="/tmp/phototalk-sweep")
    ap.add_argument("--silence", action="store_true")
    a = ap.parse_args()
    if not ASSETS.is_dir():
        print(f"no evaluation assets at {ASSETS}", file=sys.stderr)
        return 1
    import phototalk

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    images = sorted((ASSETS / "images").iterdir()) if not a.images else [ASSETS / "images" / i for i in a.images]
    audios = [ASSETS / "audio" / x for x in a.audio]
    if a.silence:
        gap_wav = out / "speech_gap.wav"
        gap = speech_with_silence(audios[0], gap_wav)
    rows = []
    for img in images:
        for aud in audios + ([gap_wav] if a.silence else []):
            video = out / f"{img.stem}__{aud.stem}.mp4"
            t = time.time()
            res = phototalk.generate(img, aud, video, size=a.size)
            gen_s = time.time() - t
            m = measure(a.eval_python, video, img)
            row = {"image": img.name, "audio": aud.name, "gen_s": round(gen_s, 2), "frames": res.n_frames,
                   "expected_frames": round(res.duration_s * res.fps), **m}
            if aud.stem == "speech_gap":
                row["silent_closed"] = silent_aperture(a.eval_python, video, *gap)
            rows.append(row)
            print(f"{img.name:32s} {aud.name:24s} face {m['face_rate']:.3f} id {m.get('id_dist_mean') or -1:.3f} "
                  f"blink {m['blink_per_min']:5.1f} open {m.get('open_frac') or 0:.2f} "
                  f"flicker {m.get('border_flicker', 0):.3f} jitter {m.get('jitter', 0):.4f} "
                  f"detail {m.get('mouth_detail') or 0:.2f} pose {np.round(m.get('pose_std_deg') or [0], 1)}"
                  + (f" silent_closed {row['silent_closed']:.2f}" if "silent_closed" in row else ""), flush=True)
    (out / "results.json").write_text(json.dumps(rows, indent=1))
    speech_rows = [r for r in rows if r["audio"] != "speech_gap.wav"]
    checks = {
        "face_rate >= 0.99": all(r["face_rate"] >= 0.99 for r in rows),
        "id_dist_mean <= 0.35": all((r["id_dist_mean"] or 9) <= 0.35 for r in rows),
        "blinks 8-25/min": all(8 <= r["blink_per_min"] <= 25 for r in speech_rows),
        "open_frac >= 0.5": all((r.get("open_frac") or 0) >= 0.5 for r in speech_rows),
        "border_flicker < 0.5": all(r["border_flicker"] < 0.5 for r in rows),
        "frames = audio ± 1": all(abs(r["frames"] - r["expected_frames"]) <= 1 for r in rows),
    }
    if a.silence:
        checks["silent mouth closed >= 0.9"] = all(r["silent_closed"] >= 0.9 for r in rows if "silent_closed" in r)
    for k, v in checks.items():
        print(f"{'PASS' if v else 'FAIL'}  {k}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
