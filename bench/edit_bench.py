"""Speed of `phototalk edit` and `phototalk dub` end to end on a 512x512 real video:
per-stage time table, frames per second (output frames / wall time of the whole call,
including decoding twice, face tracking, phones, encoding) and peak memory.

    .venv/bin/python bench/edit_bench.py [--video PATH] [--repeat 2]

Each measurement runs in a fresh process so peak RSS belongs to that command alone.
Take numbers when the machine is otherwise idle (`uptime` load < 1.5 on 2 cores).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO = ROOT.parent / "shared" / "eval" / "assets" / "video" / "hdtf_woman_speech_a.mp4"
TEXT = "Before the big meeting, Bob bought a map of the old market and a pot of warm apple pie."
STAGES = ("probe", "audio", "track", "motion", "decode", "edit", "encode", "total")


def one(kind: str, video: str) -> dict:
    import resource
    import time

    sys.path.insert(0, str(ROOT / "src"))
    from phototalk.edit import dub_video, edit_video
    from phototalk.edit.source import probe

    info = probe(video)
    length = info.duration_s
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "out.mp4")
        t0 = time.perf_counter()
        if kind == "edit":
            res = edit_video(video, out, close_mouth=[f"0-{length / 2:.2f}"], close_eyes=[f"{length / 2:.2f}-{length:.2f}"])
        elif kind == "dub-audio":
            res = dub_video(video, out, audio=video)
        else:
            res = dub_video(video, out, text=TEXT)
        wall = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"kind": kind, "frames": res.n_frames, "size": f"{res.width}x{res.height}", "wall_s": wall,
            "fps": res.n_frames / wall, "peak_rss_mb": rss_mb, "stages_s": res.timings_s}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", default=str(DEFAULT_VIDEO))
    ap.add_argument("--repeat", type=int, default=2, help="runs per command; the fastest is reported")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        print(json.dumps(one(a.one, a.video)))
        return 0
    if not os.path.exists(a.video):
        print(f"video not found: {a.video}", file=sys.stderr)
        return 1
    print(f"load average before: {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()})")
    rows = []
    env = dict(os.environ, GLOG_minloglevel="2", TF_CPP_MIN_LOG_LEVEL="2")
    for kind in ("edit", "dub-audio", "dub-text"):
        runs = []
        for _ in range(a.repeat):
            r = subprocess.run([sys.executable, __file__, "--one", kind, "--video", a.video], capture_output=True,
                               text=True, env=env, check=True)
            runs.append(json.loads(r.stdout.strip().splitlines()[-1]))
        rows.append(min(runs, key=lambda x: x["wall_s"]))
    print(f"\n{'command':<10} {'frames':>6} {'size':>9} " + " ".join(f"{s:>7}" for s in STAGES)
          + f" {'fps':>6} {'RSS MB':>7}")
    for r in rows:
        st = r["stages_s"]
        print(f"{r['kind']:<10} {r['frames']:>6} {r['size']:>9} "
              + " ".join(f"{st.get(s, 0.0):7.2f}" for s in STAGES) + f" {r['fps']:6.1f} {r['peak_rss_mb']:7.0f}")
    print("\nstage seconds: probe = open and check the file; audio = decode or synthesise the new speech; "
          "track = pass 1 (decode + face mesh + smoothing); motion = phones -> mouth controls (what is left "
          "after the phones ran beside tracking); decode/edit/encode = pass 2.")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
