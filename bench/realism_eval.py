"""Realism check of issue 13: does the face survive a close look?

    .venv/bin/python bench/realism_eval.py [--images ...] [--audio en_vlog_reopening.wav]
        [--speeds 1.0 1.9] [--size 512] [--seconds S] [--out /tmp/phototalk-realism]
        [--sheets] [--emotions] [--eval-python ~/.eval/bin/python]

For every portrait of ../shared/eval/assets/images and every --speed it renders the speech with
`phototalk generate --report`, reads the renderer's own statistics from the report (worst
inverse-consistency in px, visible folded triangles) and measures the video with the
independent ../shared/eval/measure.py (mouth_detail, blink_shape, face re-detection, identity,
blink rate, jitter). --sheets writes ../shared/eval/contact_sheet.py's PNG (largest head turn,
widest mouth, a blink) for the fastest speed, to look at. --emotions renders a sentence rich in
/p b m f v/ in the built-in voice under each emotion on two portraits and checks the lips at the
aligned phones (measure.py --transcript). Prints a table, the pass/fail of issue 13's
thresholds, and writes results.json.
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
ASSETS = ROOT.parent / "shared" / "eval" / "assets"
EVAL = ROOT.parent / "shared" / "eval"
PHOTOTALK = ROOT / ".venv" / "bin" / "phototalk"
EMOTIONS = ("neutral", "happy", "sad", "angry", "surprised")
# Rich in /p b m f v/ and open vowels, so both lip checks have many phones to look at.
SENTENCE = ("Bob may buy a map of five big farms, and Pam found the vast valley, "
            "but maybe a very brave father will move far above the palm.")
QUIET = dict(os.environ, GLOG_minloglevel="2", TF_CPP_MIN_LOG_LEVEL="2")


def generate(args: list[str], report: Path) -> dict:
    subprocess.run([str(PHOTOTALK), "generate", *args, "--report", str(report), "--quiet"], check=True, env=QUIET)
    return json.loads(report.read_text())


def measure(eval_python: str, video: Path, image: Path, transcript: str | None = None) -> dict:
    js = video.with_suffix(".measure.json")
    cmd = [eval_python, str(EVAL / "measure.py"), str(video), "--ref-image", str(image), "--json", str(js)]
    if transcript:
        cmd += ["--transcript", transcript]
    subprocess.run(cmd, check=True, capture_output=True, env=QUIET)
    return json.loads(js.read_text())


def cut_audio(src: Path, seconds: float, dst: Path) -> Path:
    """The first ``seconds`` of the WAV ``src`` (quick runs while iterating)."""
    import wave

    with wave.open(str(src)) as r, wave.open(str(dst), "wb") as w:
        w.setparams(r.getparams())
        w.writeframes(r.readframes(int(seconds * r.getframerate())))
    return dst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", nargs="*", default=None)
    ap.add_argument("--audio", default="en_vlog_reopening.wav")
    ap.add_argument("--speeds", nargs="+", type=float, default=[1.0, 1.9])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--seconds", type=float, default=None, help="use only the first S seconds of the audio")
    ap.add_argument("--out", default="/tmp/phototalk-realism")
    ap.add_argument("--sheets", action="store_true")
    ap.add_argument("--emotions", action="store_true")
    ap.add_argument("--emotion-images", nargs="+", default=["photo_woman_frontal.png", "photo_asian_woman_frontal.png"])
    ap.add_argument("--eval-python", default=os.path.expanduser("~/.eval/bin/python"))
    a = ap.parse_args()
    if not ASSETS.is_dir():
        print(f"no evaluation assets at {ASSETS}", file=sys.stderr)
        return 1
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    images = sorted((ASSETS / "images").iterdir()) if not a.images else [ASSETS / "images" / i for i in a.images]
    audio = ASSETS / "audio" / a.audio
    if a.seconds:
        audio = cut_audio(audio, a.seconds, out / f"{audio.stem}_{a.seconds:g}s.wav")
    rows = []
    for img in images:
        for speed in a.speeds:
            video = out / f"{img.stem}__speed{speed:g}.mp4"
            rep = generate(["-i", str(img), "-a", str(audio), "-o", str(video), "--size", str(a.size),
                            "--speed", f"{speed:g}"], video.with_suffix(".report.json"))
            m = measure(a.eval_python, video, img)
            r = rep.get("render", {})
            bs = m.get("blink_shape") or {}
            row = {"image": img.name, "speed": speed, "frames": rep.get("n_frames"),
                   "inv_err_px": r.get("worst_inverse_error_px"), "folds": r.get("folded_triangles_max"), **m}
            rows.append(row)
            print(f"{img.stem[:26]:26s} v{speed:<4g} inv {row['inv_err_px'] if row['inv_err_px'] is not None else -1:5.2f}px "
                  f"folds {row['folds'] if row['folds'] is not None else -1:3} detail {m.get('mouth_detail') or 0:5.2f} "
                  f"blink {m['blink_per_min']:4.1f}/min below {bs.get('below_half_frames', 0):.1f}"
                  f"±{bs.get('below_half_spread', 0):.1f} close {bs.get('closing_frames', 0):.1f} "
                  f"reopen {bs.get('reopening_frames', 0):.1f} face {m['face_rate']:.3f} "
                  f"id {m.get('id_dist_mean') or 9:.3f} jitter {m.get('jitter', 0):.4f}", flush=True)
            if a.sheets and speed == max(a.speeds):
                subprocess.run([a.eval_python, str(EVAL / "contact_sheet.py"), str(video),
                                str(out / f"{img.stem}__sheet.png"), "--ref-image", str(img)],
                               check=True, capture_output=True, env=QUIET)
    emo_rows = []
    if a.emotions:
        for name in a.emotion_images:
            img = ASSETS / "images" / name
            for emo in EMOTIONS:
                video = out / f"{img.stem}__{emo}.mp4"
                generate(["-i", str(img), "--text", SENTENCE, "-o", str(video), "--size", str(a.size),
                          "--emotion", emo], video.with_suffix(".report.json"))
                m = measure(a.eval_python, video, img, SENTENCE)
                emo_rows.append({"image": name, "emotion": emo, **m})
                print(f"{img.stem[:26]:26s} {emo:9s} bilabial_closed {m.get('bilabial_closed') or 0:.2f} "
                      f"({m.get('n_bilabial')}) vowel_open {m.get('vowel_open') or 0:.2f} ({m.get('n_vowel')})",
                      flush=True)
    (out / "results.json").write_text(json.dumps({"videos": rows, "emotions": emo_rows}, indent=1))

    def ok(r, key, lo=-np.inf, hi=np.inf):
        v = r.get(key)
        return v is not None and lo <= v <= hi

    shapes = [r.get("blink_shape") or {} for r in rows]
    checks = {
        "worst inverse error <= 0.5 px": all(ok(r, "inv_err_px", hi=0.5) for r in rows),
        "no visible folds": all(ok(r, "folds", hi=0) for r in rows),
        "mouth_detail 0.4-1.25": all(ok(r, "mouth_detail", 0.4, 1.25) for r in rows),
        "blink below-half 2-5 frames": all(2 <= s.get("below_half_frames", 0) <= 5 for s in shapes),
        "blink spread > 0": all(s.get("below_half_spread", 0) > 0 for s in shapes),
        "blink reopening > closing": all(s.get("reopening_frames", 0) > s.get("closing_frames", 0) for s in shapes),
        "face re-detected >= 99 %": all(ok(r, "face_rate", 0.99) for r in rows),
        "identity distance <= 0.35": all(ok(r, "id_dist_mean", hi=0.35) for r in rows),
        "blinks 8-25/min": all(ok(r, "blink_per_min", 8, 25) for r in rows),
        "jitter <= 0.0085": all(ok(r, "jitter", hi=0.0085) for r in rows),
    }
    if emo_rows:
        checks["every emotion: bilabial_closed >= 0.9"] = all(ok(r, "bilabial_closed", 0.9) for r in emo_rows)
        checks["every emotion: vowel_open >= 0.8"] = all(ok(r, "vowel_open", 0.8) for r in emo_rows)
    for k, v in checks.items():
        print(f"{'PASS' if v else 'FAIL'}  {k}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
