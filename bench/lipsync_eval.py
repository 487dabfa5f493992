"""Lip-sync articulation on real recorded speech with known words (issue #3).

Uses Debian's asterisk-core-sounds-en-wav prompts (a real voice) and their transcripts
(asterisk-core-sounds-en: core-sounds-en.txt.gz):
    apt-get install asterisk-core-sounds-en-wav asterisk-core-sounds-en
Prompts are joined into clips of about 12 s; each clip is rendered twice, once with the
transcript given to phototalk and once from the audio alone, and measured with
../shared/eval/measure.py --transcript (forced alignment of the true words).

    .venv/bin/python bench/lipsync_eval.py [--clips 4] [--image IMG] [--modes audio-only]
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MEASURE = ROOT.parent / "shared" / "eval" / "measure.py"
SOUNDS = Path("/usr/share/asterisk/sounds/en")
TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
sys.path.insert(0, str(ROOT / "src"))


def dictionary() -> set[str]:
    """Words measure.py's aligner knows (it cannot align others)."""
    from pocketsphinx import get_model_path

    with open(os.path.join(get_model_path(), "en-us", "cmudict-en-us.dict"), encoding="utf-8") as f:
        return {line.split()[0] for line in f if line.strip()}


def prompts() -> list[tuple[Path, str]]:
    known = dictionary()
    out = []
    with gzip.open(TRANSCRIPTS, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            m = re.match(r"^([\w\-/]+):\s*(.+)$", line.strip())
            if not m or "[" in m.group(2):
                continue
            wav = SOUNDS / f"{m.group(1)}.wav"
            text = m.group(2)
            words = re.sub(r"[^a-z' ]", " ", text.lower()).split()
            if wav.exists() and len(words) >= 4 and all(w in known for w in words):
                out.append((wav, text))
    return out


def clip(items, dst: Path) -> str:
    from phototalk.audio.io import load_speech

    parts, words = [], []
    for wav, text in items:
        parts += [load_speech(wav).samples, np.zeros(4000, np.float32)]
        words.append(text)
    y = np.concatenate(parts)
    from phototalk.audio.io import write_wav

    write_wav(dst, y, 16000)
    return " ".join(words)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=4)
    ap.add_argument("--image", default=str(ROOT.parent / "shared/eval/assets/images/photo_woman_frontal.png"))
    ap.add_argument("--out", default="/tmp/phototalk-lipsync")
    ap.add_argument("--eval-python", default=os.path.expanduser("~/.eval/bin/python"))
    ap.add_argument("--modes", nargs="+", choices=("transcript", "audio-only"), default=["transcript", "audio-only"])
    a = ap.parse_args()
    if not TRANSCRIPTS.exists() or not SOUNDS.exists() or not MEASURE.exists():
        print("needs asterisk-core-sounds-en(-wav) and ../shared/eval; skipping")
        return 0
    import phototalk

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    items = prompts()
    rng = np.random.default_rng(0)
    rng.shuffle(items)
    results: dict[str, list] = {m: [] for m in a.modes}
    k = 0
    for c in range(a.clips):
        group, dur = [], 0.0
        while dur < 12.0 and k < len(items):
            with wave.open(str(items[k][0])) as w:
                dur += w.getnframes() / w.getframerate() + 0.25
            group.append(items[k])
            k += 1
        wav = out / f"clip{c}.wav"
        text = clip(group, wav)
        for mode, tr in [(m, text if m == "transcript" else None) for m in a.modes]:
            video = out / f"clip{c}_{mode}.mp4"
            phototalk.generate(a.image, wav, video, size=512, transcript=tr)
            js = video.with_suffix(".json")
            subprocess.run([a.eval_python, str(MEASURE), str(video), "--transcript", text, "--json", str(js)],
                           check=True, capture_output=True, env=dict(os.environ, GLOG_minloglevel="2"))
            m = json.loads(js.read_text())
            results[mode].append(m)
            print(f"clip {c} ({dur:4.1f} s) {mode:10s} bilabial_closed {m.get('bilabial_closed')} "
                  f"(n={m.get('n_bilabial')}) vowel_open {m.get('vowel_open')} (n={m.get('n_vowel')})", flush=True)
    for mode, rows in results.items():
        nb = sum(r["n_bilabial"] for r in rows)
        nv = sum(r["n_vowel"] for r in rows)
        b = sum(r["bilabial_closed"] * r["n_bilabial"] for r in rows) / max(nb, 1)
        v = sum(r["vowel_open"] * r["n_vowel"] for r in rows) / max(nv, 1)
        print(f"{mode:10s}: bilabial_closed {b:.3f} over {nb} phones, vowel_open {v:.3f} over {nv} phones")
    return 0


if __name__ == "__main__":
    sys.exit(main())
