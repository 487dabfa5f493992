"""Phones on real recorded speech with known words: forced alignment vs recognition.

Uses Debian's asterisk prompts (one real female voice, 8 kHz telephone audio) and their
transcripts, which live in /usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz:
    apt-get install asterisk-core-sounds-en-wav asterisk-core-sounds-en
For N prompts it runs ``align`` (with the transcript) and ``recognize`` (audio only) and
reports the alignment success rate, speed (x real time) and how often recognition agrees
with alignment on the mouth-shape class of each 10 ms frame -- an estimate of how good
audio-only lip sync can be. Skips (exit 0) when the prompts are not installed.

    .venv/bin/python bench/phones_eval.py [--n 40] [--json OUT.json]
"""
from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
SOUNDS = Path("/usr/share/asterisk/sounds/en")
TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
CLASSES = {  # lip-shape classes; everything else is 'other'
    "bilabial": {"P", "B", "M"},
    "labiodental": {"F", "V"},
    "rounded": {"UW", "OW", "W", "UH", "AO", "OY"},
    "open": {"AA", "AE", "AH", "AW", "AY"},
    "SIL": {"SIL"},
}
NAMES = [*CLASSES, "other"]
SPOKEN = {"*": " star ", "#": " pound ", "&": " and ", "%": " percent "}  # how the speaker reads them


def prompts(n: int) -> list[tuple[Path, str]]:
    """n (wav, transcript) pairs of at least three words, spread evenly over the list."""
    opener = gzip.open if TRANSCRIPTS.suffix == ".gz" else open
    pairs = []
    with opener(TRANSCRIPTS, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            name, sep, text = line.partition(":")
            if not sep or line.startswith(";") or re.search(r"[\[(]", text):  # a tone, a pause: no words
                continue
            wav = SOUNDS / f"{name.strip()}.wav"
            for sym, word in SPOKEN.items():
                text = text.replace(sym, word)
            if wav.exists() and len(re.findall(r"\w+", text)) >= 3:
                pairs.append((wav, " ".join(text.split())))
    pairs.sort()
    if n < len(pairs):
        pairs = [pairs[int(i * len(pairs) / n)] for i in range(n)]
    return pairs


def classes_at(phones, t: np.ndarray) -> np.ndarray:
    """Index into NAMES of the phone class at each time in ``t`` (s)."""
    lookup = {label: k for k, c in enumerate(CLASSES.values()) for label in c}
    starts = np.array([p.start_s for p in phones])
    idx = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(phones) - 1)
    return np.array([lookup.get(phones[i].label, len(NAMES) - 1) for i in idx])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40, help="number of prompts")
    ap.add_argument("--json", help="also write the numbers here")
    a = ap.parse_args()
    if not SOUNDS.is_dir() or not TRANSCRIPTS.exists():
        print(f"skipped: asterisk prompts not installed ({SOUNDS}, {TRANSCRIPTS}); "
              "apt-get install asterisk-core-sounds-en-wav asterisk-core-sounds-en")
        return 0
    from phototalk.audio.io import load_speech
    from phototalk.audio.phones import AlignmentError, align, recognize

    pairs = prompts(a.n)
    if not pairs:
        print(f"skipped: no prompt with a transcript found under {SOUNDS}")
        return 0
    t0 = time.perf_counter()
    align(load_speech(pairs[0][0]), pairs[0][1])  # loads the models: not counted below
    recognize(load_speech(pairs[0][0]))
    load_s = time.perf_counter() - t0

    audio_s = align_s = rec_s = 0.0
    failed, confusion, boundary = [], np.zeros((len(NAMES), len(NAMES)), int), []
    for wav, text in pairs:
        sp = load_speech(wav)
        audio_s += sp.duration_s
        t = time.perf_counter()
        rec = recognize(sp)
        rec_s += time.perf_counter() - t
        t = time.perf_counter()
        try:
            ali = align(sp, text)
        except AlignmentError as e:
            failed.append(f"{wav.name}: {e}")
            continue
        finally:
            align_s += time.perf_counter() - t
        frames = np.arange(0.005, sp.duration_s, 0.01)
        np.add.at(confusion, (classes_at(ali, frames), classes_at(rec, frames)), 1)
        # How far each aligned phone boundary is from the nearest recognised one.
        ra = np.array([p.start_s for p in rec[1:]])
        if len(ra):
            boundary += [float(np.abs(ra - p.start_s).min()) for p in ali[1:]]

    ok = len(pairs) - len(failed)
    agree = float(np.trace(confusion) / max(confusion.sum(), 1))
    speech = confusion[:, NAMES.index("SIL")].sum() - confusion[NAMES.index("SIL"), NAMES.index("SIL")]
    out = {
        "prompts": len(pairs), "audio_s": round(audio_s, 1), "model_load_s": round(load_s, 2),
        "align_success": ok / len(pairs), "align_xrt": align_s / audio_s, "recognize_xrt": rec_s / audio_s,
        "class_agreement": agree,
        "recall": {n: float(confusion[k, k] / max(confusion[k].sum(), 1)) for k, n in enumerate(NAMES)},
        "precision": {n: float(confusion[k, k] / max(confusion[:, k].sum(), 1)) for k, n in enumerate(NAMES)},
        "aligned_speech_called_SIL": float(speech / max(confusion.sum() - confusion[NAMES.index("SIL")].sum(), 1)),
        "boundary_median_ms": 1000 * float(np.median(boundary)) if boundary else None,
        "failures": failed,
    }
    print(f"{len(pairs)} prompts, {audio_s:.1f} s of speech (8 kHz telephone audio); model load {load_s:.2f} s")
    print(f"alignment: {ok}/{len(pairs)} aligned ({100 * ok / len(pairs):.0f} %), {out['align_xrt']:.3f}x real time")
    print(f"recognition: {out['recognize_xrt']:.3f}x real time; "
          f"same lip class as the alignment in {100 * agree:.1f} % of frames; "
          f"median boundary distance {out['boundary_median_ms']:.0f} ms")
    print(f"{'class':12s} {'frames':>7s} {'recall':>7s} {'precision':>9s}   (alignment = truth)")
    for k, n in enumerate(NAMES):
        print(f"{n:12s} {confusion[k].sum():7d} {out['recall'][n]:7.2f} {out['precision'][n]:9.2f}")
    print("confusion (rows: alignment, columns: recognition):\n" + " " * 12 + "".join(f"{n[:6]:>8s}" for n in NAMES))
    for k, n in enumerate(NAMES):
        print(f"{n:12s}" + "".join(f"{v:8d}" for v in confusion[k]))
    for f in failed:
        print("  failed:", f)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
