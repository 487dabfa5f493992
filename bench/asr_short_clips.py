"""Speed of recognition (issue 15) on short clips, the ones Whisper may not take as English
first among them.

    .venv/bin/python bench/asr_short_clips.py [--lengths 2 4 8] [--repeat 3] [--json J]

Every clip of ../shared/eval/assets/audio (zh_*.wav, sing_*.wav, then en_*.wav) is cut from
its start to each --lengths (s; a clip shorter than the longest is also taken whole) and
recognised as the default path does (``phones.recognize_words``: Whisper, then forced
alignment or the allphone recogniser). Prints the median time over --repeat runs as a
fraction of the clip's duration, how many Whisper encodings decided it (1: the short window
alone; the rule before this one sometimes added the full 30 s window, ~0.4 s) and whether
Whisper's words were used ("words") or the allphone recogniser's phones ("allphone"). The
model is loaded and warmed once before timing. Needs ../shared; exits 2 with one line
without it.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AUDIO = ROOT.parent / "shared" / "eval" / "assets" / "audio"
sys.path.insert(0, str(ROOT / "src"))

from phototalk.audio import asr, phones  # noqa: E402
from phototalk.audio.io import SAMPLE_RATE, Speech, load_speech  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", type=float, nargs="+", default=[2.0, 4.0, 8.0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", help="also write the figures here")
    a = ap.parse_args()
    files = sorted(AUDIO.glob("zh_*.wav")) + sorted(AUDIO.glob("sing_*.wav")) + sorted(AUDIO.glob("en_*.wav"))
    if not files:
        print(f"asr_short_clips: error: no zh_*.wav, sing_*.wav or en_*.wav under {AUDIO}", file=sys.stderr)
        return 2
    # warm up: model load and the silent window's encoding are once per process (asr_bench times them)
    phones.recognize_words(Speech(load_speech(files[0]).samples[:SAMPLE_RATE]))
    windows = []  # the full-window flag of every _decode_window call, to count the passes
    decode = asr._decode_window

    def counting(m, d, chunk, short_window):
        windows.append(short_window)
        return decode(m, d, chunk, short_window)

    asr._decode_window = counting
    rows = []
    print(f"{'clip':26s} {'s':>5s} {'xRT':>6s} passes phones")
    for f in files:
        y = load_speech(f).samples
        whole = len(y) / SAMPLE_RATE
        # each length the clip has, and the whole clip when it is shorter than the longest
        for length in sorted({x for x in a.lengths if x <= whole} | ({round(whole, 2)} if whole < max(a.lengths) else set())):
            n = int(length * SAMPLE_RATE)
            times = []
            for _ in range(a.repeat):
                windows.clear()
                t = time.perf_counter()
                rec = phones.recognize_words(Speech(y[:n].copy()))
                times.append(time.perf_counter() - t)
            x = statistics.median(times) / length
            used = "words" if rec.words else "allphone"
            rows.append({"clip": f.name, "seconds": length, "xrt": round(x, 4), "passes": len(windows),
                         "phones": used, "words": rec.words})
            print(f"{f.name:26s} {length:5.2f} {x:6.3f} {len(windows):6d} {used:8s} {rec.words[:50]!r}", flush=True)
    print(f"worst {max(r['xrt'] for r in rows):.3f}x real time (issue #15 wants <= 0.15)")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
