"""Whisper's confidences on a short window against the full 30 s window (issue 15): the
measurements behind asr.CLEAR_REJECT_LOGPROB and the rule that a short window whose text
is a decoding loop is not decoded again.

    .venv/bin/python bench/asr_windows.py [--lengths 1 2 3 5 8] [--max-start 40] [--json J]

Every clip of ../shared/eval/assets (English speech; other languages, singing and a silent
room) is cut into clips of each --length, one after the other from its start (up to
--max-start s), as a user would give them. Each cut is decoded once with a short window
(audio + asr.TAIL_PAD_S, the rest a silent window's encoding) and once with the full one;
the full window's decision is the reference (its thresholds were measured on full windows).
Reported, English and not English apart: how many cuts the short window decides alone
(accepted, or clearly rejected), how many take the second, full pass, and every cut where
the short window's decision would differ from the full one's: an English cut the short
window clearly rejects but the full one accepts would be recognition lost by skipping the
second pass. Skips (exit 0) without ../shared. ~5 min on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT.parent / "shared" / "eval" / "assets"
sys.path.insert(0, str(ROOT / "src"))

ENGLISH = ["talk_jackie.mp4", "talk_lieu.mp4", "talk_may.mp4", "talk_obama.mp4", "talk_radio10.mp4",
           "talk_retalk1.mp4", "talk_retalk2.mp4", "talk_retalk4.mp4", "talk_retalk5.mp4", "talk_selena.mp4",
           "hdtf_woman_speech_a.mp4", "child_speech.mp4", "man_glasses_speech.mp4"]  # + audio/en_*.wav
OTHER = ["woman_lipsync_song.mp4", "woman_room_silent.mp4"]  # + audio/zh_*.wav, audio/sing_*.wav


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lengths", type=float, nargs="+", default=[1, 2, 3, 5, 8], help="cut lengths, s")
    ap.add_argument("--max-start", type=float, default=40.0, help="cuts start before this, s into each clip")
    ap.add_argument("--json", help="write every cut's confidences here")
    a = ap.parse_args()
    if not ASSETS.is_dir():
        print(f"no evaluation assets at {ASSETS}")
        return 0
    from phototalk.audio import asr
    from phototalk.audio.io import SAMPLE_RATE, load_speech

    audio = ASSETS / "audio"
    sources = {"english": sorted(audio.glob("en_*.wav")) + [ASSETS / "video" / v for v in ENGLISH],
               "other": sorted(audio.glob("zh_*.wav")) + sorted(audio.glob("sing_*.wav"))
               + [ASSETS / "video" / v for v in OTHER]}
    m = asr.load_model()
    d = asr._decoding(m)
    rows = []
    for kind, paths in sources.items():
        for path in paths:
            if not path.exists():
                continue
            y = load_speech(path).samples
            for length in a.lengths:
                start = 0.0
                while start < a.max_start and (start + length) * SAMPLE_RATE <= len(y):
                    cut = y[int(start * SAMPLE_RATE):int((start + length) * SAMPLE_RATE)]
                    mel = m.feature_extractor(cut)[:, :-1]  # as asr.transcribe
                    short, full = (asr._decode_window(m, d, mel, s) for s in (True, False))
                    rows.append({"kind": kind, "clip": path.name, "start_s": start, "length_s": length,
                                 **{f"{w}_{k}": getattr(r, k) for w, r in (("short", short), ("full", full))
                                    for k in ("avg_logprob", "no_speech_prob", "compression_ratio")},
                                 "short_accepted": short.accepted, "short_clear": short.clearly_rejected,
                                 "full_accepted": full.accepted})
                    start += length
            print(f"{kind:8s} {path.name:26s} {sum(r['clip'] == path.name for r in rows)} cuts", flush=True)
    for kind in sources:
        rs = [r for r in rows if r["kind"] == kind]
        second = [r for r in rs if not r["short_accepted"] and not r["short_clear"]]
        print(f"\n{kind}: {len(rs)} cuts; short window accepts {sum(r['short_accepted'] for r in rs)}, "
              f"clearly rejects {sum(r['short_clear'] for r in rs)} (log-probability < "
              f"{asr.CLEAR_REJECT_LOGPROB}: {sum(r['short_avg_logprob'] < asr.CLEAR_REJECT_LOGPROB for r in rs)}, "
              f"a loop: {sum(r['short_compression_ratio'] > asr.MAX_COMPRESSION_RATIO for r in rs)}); "
              f"{len(second)} take the full pass, which accepts {sum(r['full_accepted'] for r in second)}")
        rescued = [r["short_avg_logprob"] for r in rs if r["full_accepted"] and not r["short_accepted"]]
        if rescued:
            print(f"  rejected short but accepted full: {len(rescued)}, short log-probability >= {min(rescued):.2f}")
        print(f"  short compression ratio at most {max(r['short_compression_ratio'] for r in rs):.2f}")
        for r in rs:
            if r["short_clear"] and r["full_accepted"]:
                print(f"  LOST: {r['clip']} {r['start_s']:.0f}+{r['length_s']:g} s: short "
                      f"{r['short_avg_logprob']:.2f} cr {r['short_compression_ratio']:.2f}, "
                      f"full {r['full_avg_logprob']:.2f} accepted")
        loops = [r for r in rs if r["short_compression_ratio"] > asr.MAX_COMPRESSION_RATIO]
        print(f"  short-window loops: {len(loops)}, accepted by the full window: "
              f"{sum(r['full_accepted'] for r in loops)}")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
