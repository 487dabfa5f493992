"""Whisper's English gate on short windows (issue 15): the measurements behind
asr.SHORT_MIN_AVG_LOGPROB / SHORT_MAX_NO_SPEECH_PROB (the thresholds a window shorter than 30 s
is judged by on its one short encoding), asr.CLEAR_REJECT_LOGPROB and asr.SECOND_PASS_AUDIO_S.

    .venv/bin/python bench/asr_windows.py [--lengths 1 2 3 5 8] [--max-start 40] [--json J]

Every clip of ../shared/eval/assets (English speech; other languages, singing and a silent
room) is cut into clips of each --length, one after the other from its start (up to
--max-start s), as a user would give them. Each cut is decoded once with a short window
(audio + asr.TAIL_PAD_S, the rest a silent window's encoding) and once with the full 30 s one.
Each cut is labelled by what it is, not by a decoder's verdict:
  * english speech: a cut of an English clip whose two encodings write the same words (word
    overlap >= 50 %): words that are there. English cuts whose two texts differ (silence,
    a word cut in half) are counted apart ("unclear").
  * not english: Chinese speech (man_glasses_speech: probably Chinese) and a silent room:
    must never be taken as English.
  * singing: sung English and a song (taking it is not wrong: its words are English).
Three rules are scored on every cut, with how many 30 s encodings each needs:
  * full: the full window's decision with the thresholds measured on full windows
    (faster-whisper's own gate; a 30 s encoding for every cut),
  * two-pass: the rule before this one: the short window with the full thresholds, a second,
    full pass for a window they reject unless its log-probability is below -1.1 or its text
    loops,
  * now (asr.transcribe today): a doubtful short window decoded again with the full one
    only on cuts of asr.SECOND_PASS_AUDIO_S or more (here the 8 s ones); on shorter cuts the
    short window alone with the SHORT_ thresholds; a text that repeats a phrase (asr._loops)
    rejected. The other two rules are scored without that check, as they were.
Skips (exit 0) without ../shared. ~5 min on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT.parent / "shared" / "eval" / "assets"
sys.path.insert(0, str(ROOT / "src"))

ENGLISH = ["talk_jackie.mp4", "talk_lieu.mp4", "talk_may.mp4", "talk_obama.mp4", "talk_radio10.mp4",
           "talk_retalk1.mp4", "talk_retalk2.mp4", "talk_retalk4.mp4", "talk_retalk5.mp4", "talk_selena.mp4",
           "hdtf_woman_speech_a.mp4", "child_speech.mp4"]  # + audio/en_*.wav
# + audio/zh_*.wav, audio/sing_*.wav; man_glasses_speech is "probably Chinese" (SOURCES.md)
OTHER = ["woman_lipsync_song.mp4", "woman_room_silent.mp4", "man_glasses_speech.mp4"]


NOT_ENGLISH = ("zh_", "woman_room_silent", "man_glasses_speech")  # the other clips are singing


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9']+", text.lower()))


def label(kind: str, clip: str, short, full, d) -> str:
    """What a cut is (see the module's text)."""
    if kind == "other":
        return "not english" if clip.startswith(NOT_ENGLISH) else "singing"
    s, f = (words(d.tokenizer.decode(w.tokens)) for w in (short, full))
    return "english speech" if s and f and len(s & f) >= 0.5 * len(s | f) else "english unclear"


def second_pass(short) -> bool:
    """The rule before's second pass: the short window fails the full thresholds but is not
    clearly rejected (log-probability >= -1.1, no compression loop)."""
    return replace(short, looped=False).doubtful


def now(short, full, length: float) -> bool:
    """asr.transcribe's verdict on a clip of ``length`` s, one window long."""
    from phototalk.audio import asr

    return full.accepted if short.doubtful and length // asr.SECOND_PASS_AUDIO_S > 0 else short.accepted


RULES = {  # "full" and "two-pass" as they were, without asr._loops
    "full": lambda short, full, length: replace(full, looped=False).accepted,
    "two-pass": lambda short, full, length: (replace(short, short_window=False, looped=False).accepted
                                             or (second_pass(short) and replace(full, looped=False).accepted)),
    "now": now,
}


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
                    rows.append({"kind": label(kind, path.name, short, full, d), "clip": path.name,
                                 "start_s": start, "length_s": length,
                                 **{f"{w}_{k}": getattr(r, k) for w, r in (("short", short), ("full", full))
                                    for k in ("avg_logprob", "no_speech_prob", "compression_ratio")},
                                 **{f"{w}_text": d.tokenizer.decode(r.tokens).strip()
                                    for w, r in (("short", short), ("full", full))},
                                 **{rule: f(short, full, length) for rule, f in RULES.items()},
                                 "two-pass_encodings": 1 + second_pass(short),
                                 "now_encodings": 1 + (short.doubtful and length // asr.SECOND_PASS_AUDIO_S > 0)})
                    start += length
            print(f"{kind:8s} {path.name:26s} {sum(r['clip'] == path.name for r in rows)} cuts", flush=True)
    kinds = ["english speech", "english unclear", "not english", "singing"]
    print(f"\ncuts taken as English by each rule (of the cuts of each kind and length; the rule in use: now)")
    print(f"{'kind':16s} {'length':>6s} {'cuts':>5s}" + "".join(f"{r:>10s}" for r in RULES))
    for kind in kinds:
        for length in a.lengths:
            rs = [r for r in rows if r["kind"] == kind and r["length_s"] == length]
            if rs:
                print(f"{kind:16s} {length:6g} {len(rs):5d}" + "".join(f"{sum(r[k] for r in rs):10d}" for k in RULES))
    enc = {"full": len(rows), "two-pass": sum(r["two-pass_encodings"] - 1 for r in rows),
           "now": sum(r["now_encodings"] - 1 for r in rows)}
    print("30 s encodings needed: " + ", ".join(f"{k} {v}" for k, v in enc.items()) + f" (of {len(rows)} cuts)")
    print("\ncuts where now and full decide differently:")
    for r in rows:
        if r["now"] != r["full"]:
            print(f"  {r['kind']:16s} {r['clip'][:22]:22s} {r['start_s']:4.0f}+{r['length_s']:g} s  "
                  f"{'now takes ' if r['now'] else 'full takes'}  short {r['short_avg_logprob']:.2f} "
                  f"{r['short_no_speech_prob']:.2f} {r['short_text'][:34]!r}  full {r['full_avg_logprob']:.2f} "
                  f"{r['full_no_speech_prob']:.2f} {r['full_text'][:34]!r}")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
