"""Speed of recognition (issue 15) on short clips, the ones Whisper may not take as English
first among them.

    .venv/bin/python bench/asr_short_clips.py [--lengths 2 4 6 8] [--repeat 3] [--json J]
    .venv/bin/python bench/asr_short_clips.py --sweep [--lengths 1 2 4 6 8] [--max-start 24] [--json J]

Every clip of ../shared/eval/assets/audio (zh_*.wav, sing_*.wav, then en_*.wav), and the sound
of two videos that are not English speech (woman_lipsync_song: a song; man_glasses_speech:
probably Chinese), is cut from its start to each --lengths (s; a clip shorter than the
longest is also taken whole) and recognised as the default path does
(``phones.recognize_words``: Whisper, then forced alignment or the allphone recogniser).
Prints the median time over --repeat runs as a fraction of the clip's duration, how many
30 s encodings it took (0: each window judged on its short encoding; 1 or more: a doubtful
window decoded again with the full window, ~0.4 s, which only clips of
asr.SECOND_PASS_AUDIO_S or more pay for: the 8 s cuts show that worst case) and whether
Whisper's words were used ("words") or the allphone recogniser's phones ("allphone").

--sweep: many clips instead of a few: every clip above and the real English talking videos
(talk_*, hdtf_woman_speech_a, child_speech) and the silent room's sound, cut one after the
other from the start (up to --max-start s) into clips of each --lengths, each timed once;
prints, for English and for the rest and each length, the median, 90th percentile and worst
fraction of real time, how many cuts exceed 0.15x and how many took a 30 s encoding.

The model is loaded and warmed once before timing. Needs ../shared; exits 2 with one line
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
VIDEO = AUDIO.parent / "video"
sys.path.insert(0, str(ROOT / "src"))

from phototalk.audio import asr, phones  # noqa: E402
from phototalk.audio.io import SAMPLE_RATE, Speech, load_speech  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", type=float, nargs="+", help="clip lengths, s (default 2 4 6 8; --sweep 1 2 4 6 8)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sweep", action="store_true", help="many cuts of every clip, timed once each")
    ap.add_argument("--max-start", type=float, default=24.0, help="--sweep: cuts start before this, s")
    ap.add_argument("--json", help="also write the figures here")
    a = ap.parse_args()
    a.lengths = a.lengths or ([1.0, 2.0, 4.0, 6.0, 8.0] if a.sweep else [2.0, 4.0, 6.0, 8.0])
    files = sorted(AUDIO.glob("zh_*.wav")) + sorted(AUDIO.glob("sing_*.wav")) + sorted(AUDIO.glob("en_*.wav"))
    files += [p for p in (VIDEO / "woman_lipsync_song.mp4", VIDEO / "man_glasses_speech.mp4") if p.exists()]
    if a.sweep:
        files += sorted(VIDEO.glob("talk_*.mp4")) + [p for p in (VIDEO / "hdtf_woman_speech_a.mp4",
                                                                 VIDEO / "child_speech.mp4",
                                                                 VIDEO / "woman_room_silent.mp4") if p.exists()]
    if not files:
        print(f"asr_short_clips: error: no zh_*.wav, sing_*.wav or en_*.wav under {AUDIO}", file=sys.stderr)
        return 2
    # warm up: model load, the silent window's encoding and the two pocketsphinx decoders (~0.1 s
    # each) are once per process (asr_bench times the first two)
    english = [f for f in files if f.name.startswith("en_")]
    for f in (files[0], *english[:1]):
        phones.recognize_words(Speech(load_speech(f).samples[:3 * SAMPLE_RATE]))
    windows = []  # the short_window flag of every _decode_window call, to count the 30 s encodings
    decode = asr._decode_window

    def counting(m, d, chunk, short_window):
        windows.append(short_window)
        return decode(m, d, chunk, short_window)

    asr._decode_window = counting
    if a.sweep:
        return sweep(a, files, windows)
    rows = []
    print(f"{'clip':26s} {'s':>5s} {'xRT':>6s} 30s-enc phones")
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
            full = windows.count(False)
            rows.append({"clip": f.name, "seconds": length, "xrt": round(x, 4), "full_encodings": full,
                         "phones": used, "words": rec.words})
            print(f"{f.name:26s} {length:5.2f} {x:6.3f} {full:7d} {used:8s} {rec.words[:50]!r}", flush=True)
    print(f"worst {max(r['xrt'] for r in rows):.3f}x real time (issue #15 wants <= 0.15)")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))
    return 0


def sweep(a, files: list[Path], windows: list) -> int:
    """--sweep: every clip cut back to back into each length, each cut timed once."""
    rows = []
    for f in files:
        y = load_speech(f).samples
        kind = "english" if f.name.startswith(("en_", "talk_", "hdtf_", "child_")) else "other"
        for length in a.lengths:
            start = 0.0
            while start < a.max_start and (start + length) * SAMPLE_RATE <= len(y):
                cut = Speech(y[int(start * SAMPLE_RATE):int((start + length) * SAMPLE_RATE)].copy())
                windows.clear()
                t = time.perf_counter()
                rec = phones.recognize_words(cut)
                x = (time.perf_counter() - t) / length
                rows.append({"kind": kind, "clip": f.name, "start_s": start, "seconds": length, "xrt": round(x, 4),
                             "full_encodings": windows.count(False), "words": bool(rec.words)})
                start += length
        print(f"{f.name:26s} {sum(r['clip'] == f.name for r in rows)} cuts", flush=True)
    print(f"\n{'kind':8s} {'s':>4s} {'cuts':>5s} {'median':>7s} {'p90':>6s} {'worst':>6s} {'>0.15x':>6s} {'30s-enc':>7s}")
    for kind in ("english", "other"):
        for length in a.lengths:
            xs = sorted(r["xrt"] for r in rows if r["kind"] == kind and r["seconds"] == length)
            if xs:
                full = sum(r["full_encodings"] > 0 for r in rows if r["kind"] == kind and r["seconds"] == length)
                print(f"{kind:8s} {length:4g} {len(xs):5d} {statistics.median(xs):7.3f} {xs[int(0.9 * (len(xs) - 1))]:6.3f} "
                      f"{xs[-1]:6.3f} {sum(x > 0.15 for x in xs):6d} {full:7d}")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
