"""Speed and memory benchmark: per-stage times, frames per second, peak memory.

    .venv/bin/python bench/run.py [--image IMG] [--quick]

Every measurement runs in a fresh process (so peak RSS is that run's own):
  1. per-stage table and end-to-end fps at --size 512 and 1024 on ~8 s of speech ("analysis"
     includes phone recognition running beside it; "phones" is what was left to wait for);
  2. peak RSS for 10 s and 120 s of speech at 512 (streaming: should barely differ);
  3. the CLI's wall time for 8 s of speech at --size 512, start-up included.
Speech is ../shared/eval/assets/audio/en_radio_holidays.wav when present (looped for
longer clips), else espeak-ng speech; the portrait is skimage's astronaut unless
--image is given.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT.parent / "shared" / "eval" / "assets" / "audio" / "en_radio_holidays.wav"

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import phototalk
t_import = time.perf_counter() - t0
img, audio, out, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
res = phototalk.generate(img, audio, out, size=size)
print(json.dumps({"import_s": t_import, "timings": res.timings_s, "first_frame_s": res.first_frame_s,
                  "since_start_first_frame_s": t_import + res.first_frame_s,
                  "frames": res.n_frames, "size": [res.width, res.height],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_speech(seconds: float, path: Path) -> Path:
    """A WAV of ``seconds`` of real speech (looped) or, without ../shared, of TTS."""
    sys.path.insert(0, str(ROOT / "src"))
    import numpy as np

    from phototalk.audio.io import load_speech

    if SPEECH.exists():
        y, sr = load_speech(SPEECH).samples, 16000
    else:
        from phototalk.audio.tts import synthesize

        s = synthesize("The quick brown fox jumps over the lazy dog, and then it rests for a while. " * 4)
        y, sr = s.samples, s.sr
    n = int(seconds * sr)
    y = np.tile(y, n // len(y) + 1)[:n]
    from phototalk.audio.io import write_wav

    write_wav(path, y, sr)
    return path


def child(img: str, audio: Path, size: int, tmp: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), GLOG_minloglevel="2")
    out = subprocess.run([sys.executable, "-c", CHILD, img, str(audio), str(tmp / f"b{size}.mp4"), str(size)],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", help="portrait (default: skimage's astronaut)")
    ap.add_argument("--quick", action="store_true", help="skip the 120 s memory run")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="phototalk-bench-"))
    img = a.image
    if img is None:
        from PIL import Image
        from skimage import data

        img = str(tmp / "astronaut.png")
        Image.fromarray(data.astronaut()).save(img)
    s8 = make_speech(8.0, tmp / "s8.wav")

    print(f"portrait: {img}\nspeech: {'real (en_radio_holidays.wav)' if SPEECH.exists() else 'espeak-ng'}\n")
    rows = {}
    for size in (512, 1024):
        rows[size] = child(img, s8, size, tmp)
    stages = ["audio", "analysis", "phones", "motion", "render_setup", "render", "encode", "total"]
    print(f"{'stage (8 s of speech)':24s}" + "".join(f"{f'{s}px':>12s}" for s in rows))
    for st in stages:
        print(f"{st:24s}" + "".join(f"{r['timings'][st] * 1000:10.0f}ms" for r in rows.values()))
    print(f"{'render ms/frame':24s}" + "".join(f"{r['timings']['render'] / r['frames'] * 1000:12.1f}" for r in rows.values()))
    print(f"{'encode ms/frame':24s}" + "".join(f"{r['timings']['encode'] / r['frames'] * 1000:12.1f}" for r in rows.values()))
    print(f"{'fps (render+encode)':24s}" + "".join(
        f"{r['frames'] / (r['timings']['render'] + r['timings']['encode']):12.1f}" for r in rows.values()))
    print(f"{'fps (whole generate)':24s}" + "".join(f"{r['frames'] / r['timings']['total']:12.1f}" for r in rows.values()))
    print(f"{'first frame after call':24s}" + "".join(f"{r['first_frame_s']:11.2f}s" for r in rows.values()))
    print(f"{'first frame after start':24s}" + "".join(f"{r['since_start_first_frame_s']:11.2f}s" for r in rows.values()))
    print(f"{'output size':24s}" + "".join(f"{'x'.join(map(str, r['size'])):>12s}" for r in rows.values()))

    print()
    mem = {}
    for secs in ((10,) if a.quick else (10, 120)):
        r = child(img, make_speech(secs, tmp / f"s{secs}.wav"), 512, tmp)
        mem[secs] = r["peak_rss_mb"]
        print(f"peak RSS, {secs:4d} s of speech at 512px: {r['peak_rss_mb']:7.0f} MB  "
              f"({r['frames'] / r['timings']['total']:.1f} fps whole generate)")
    if 120 in mem:
        print(f"ratio 120 s / 10 s: {mem[120] / mem[10]:.2f}")

    print()
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "phototalk.cli", "generate", "-i", img, "-a", str(s8), "-o",
                    str(tmp / "cli.mp4"), "--size", "512", "-q"], check=True, env=env)
    print(f"CLI wall time, 8 s of speech at --size 512 (start-up included): {time.perf_counter() - t:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
