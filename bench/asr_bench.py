"""Speed of recognition without a transcript (issue 15): Whisper tiny.en + pocketsphinx
alignment, as a fraction of the audio's duration, for short and long clips; and the time
to load the model.

    .venv/bin/python bench/asr_bench.py [--lengths 1 2 4 8 30 60] [--repeat 3] [--compare] [--json J]

For each clip length: the median over --repeat runs of ``phones.recognize_words`` (words
+ phones, what the default path of generate/dub runs), split into its stages: Whisper's
log-mel, its encoder, its decoding (with the segmentation), the forced alignment of the
words and the allphone recognition of what is not trusted English. --compare runs the
same clips back to back with every window encoded at Whisper's full 30 s
(``transcribe(short_window=False)``, the behaviour before short windows) and prints both.
Load: a fresh process's ``asr.load_model`` (import of faster-whisper included) and the
one-time preparation of decoding (one encoder pass over a silent window).

Speech: the English clips of ../shared/eval/assets/audio joined (SHARED_ORDER) (real speech) when
present, else espeak-ng speech from phototalk's TTS; either is cut into clips from its
start. The machine's load average is printed: compare before/after in the same run.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
AUDIO = ROOT.parent / "shared" / "eval" / "assets" / "audio"
sys.path.insert(0, str(ROOT / "src"))

from phototalk.audio import asr, phones  # noqa: E402
from phototalk.audio.io import SAMPLE_RATE, Speech, load_speech, samples_at_analysis_rate  # noqa: E402

TTS_TEXT = ("The holidays are a time of celebrating with loved ones. Please map a movie, but Bob prefers a blue "
            "umbrella. My mother bought a map of the old market, and we walked home past the bakery. ")
# Clips are cut from the start: these open with speech (en_commentary opens with 4 s of music).
SHARED_ORDER = ["radio_holidays", "radio_district_map", "vlog_reopening", "hallo_1", "commentary"]
LOAD_CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
t0 = time.perf_counter()
from phototalk.audio import asr
m = asr.load_model()
t1 = time.perf_counter()
asr._decoding(m)
print(json.dumps({"load_s": t1 - t0, "prepare_s": time.perf_counter() - t1}))
"""


def speech_source(seconds: float) -> tuple[np.ndarray, str]:
    """(samples at 16 kHz, description): at least ``seconds`` of English speech."""
    files = [AUDIO / f"en_{n}.wav" for n in SHARED_ORDER if (AUDIO / f"en_{n}.wav").exists()]
    if files:
        y, what = np.concatenate([load_speech(f).samples for f in files]), "../shared en_*.wav"
    else:
        from phototalk.audio.tts import synthesize

        s = synthesize(TTS_TEXT * 3)
        y, what = samples_at_analysis_rate(Speech(s.samples, s.sr)), "espeak-ng TTS"
    n = int(seconds * SAMPLE_RATE)
    return np.tile(y, n // len(y) + 1)[:n] if len(y) < n else y, what


class Stages:
    """Wraps the stages recognize_words goes through and adds up their times (s)."""

    def __init__(self) -> None:
        self.t: dict[str, float] = {}
        self.saved = []

    def wrap(self, module, name: str, stage: str) -> None:
        f = getattr(module, name)
        self.saved.append((module, name, f))

        @functools.wraps(f)
        def timed(*a, **k):
            t0 = time.perf_counter()
            try:
                return f(*a, **k)
            finally:
                self.t[stage] = self.t.get(stage, 0.0) + time.perf_counter() - t0
        setattr(module, name, timed)

    def restore(self) -> None:
        for module, name, f in reversed(self.saved):
            setattr(module, name, f)


def run_once(sp: Speech, short_window: bool) -> dict:
    """Stage times (s) of one recognize_words on ``sp``."""
    st = Stages()
    st.wrap(asr, "transcribe", "whisper")
    st.wrap(asr, "_encode", "encoder")
    st.wrap(phones, "align", "align")
    st.wrap(phones, "recognize", "allphone")
    real = st.saved[0][2]
    asr.transcribe = functools.partial(asr.transcribe, short_window=short_window) if not short_window else asr.transcribe
    try:
        m = asr.load_model()
        t0 = time.perf_counter()
        m.feature_extractor(sp.samples)
        mel = time.perf_counter() - t0
        t0 = time.perf_counter()
        rec = phones.recognize_words(sp)
        total = time.perf_counter() - t0
    finally:
        st.restore()
        asr.transcribe = real
    t = st.t
    return {"total": total, "mel": mel, "encoder": t.get("encoder", 0.0),
            "decode": t.get("whisper", 0.0) - t.get("encoder", 0.0) - mel,
            "align": t.get("align", 0.0), "allphone": t.get("allphone", 0.0), "words": rec.words}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lengths", type=float, nargs="+", default=[1, 2, 4, 8, 30, 60], help="clip lengths, s")
    ap.add_argument("--repeat", type=int, default=3, help="runs per clip (the median is reported)")
    ap.add_argument("--compare", action="store_true", help="also encode every window at the full 30 s")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()

    load = json.loads(subprocess.run([sys.executable, "-c", LOAD_CHILD, str(ROOT / "src")], check=True,
                                     capture_output=True, text=True).stdout)
    print(f"load average {os.getloadavg()[0]:.2f}; model load {load['load_s']:.2f} s "
          f"(+ {load['prepare_s']:.2f} s preparing decoding, once per process)")
    y, what = speech_source(max(args.lengths))
    print(f"speech: {what}")
    modes = [("short", True)] + ([("full30", False)] if args.compare else [])
    phones.recognize_words(Speech(y[:SAMPLE_RATE]))  # warm: model, decoders, silent window
    cols = ["total", "mel", "encoder", "decode", "align", "allphone"]
    print(f"{'clip s':>7} {'mode':>7} {'xRT':>6} " + " ".join(f"{c:>8}" for c in cols) + "  words")
    results = []
    for length in args.lengths:
        sp = Speech(y[:int(length * SAMPLE_RATE)].copy())
        for name, short in modes:
            runs = [run_once(sp, short) for _ in range(args.repeat)]
            med = {c: statistics.median(r[c] for r in runs) for c in cols}
            row = {"clip_s": length, "mode": name, "rt": med["total"] / length, **med, "words": runs[0]["words"]}
            results.append(row)
            print(f"{length:7.1f} {name:>7} {row['rt']:6.3f} " + " ".join(f"{med[c]:8.3f}" for c in cols)
                  + f"  {row['words'][:60]!r}")
    print(f"load average after {os.getloadavg()[0]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"load": load, "speech": what, "rows": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
