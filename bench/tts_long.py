"""Long text streams: peak memory and compute per second of speech, text mode vs audio mode.

Runs the CLI in child processes (peak RSS from wait4's rusage, like /usr/bin/time -v):
  text-50     a 50-word text                      (--text-file)
  text-N      an N-word text (default 5,000 words, about 30 min of speech)
  audio-50    the 50-word text's saved speech as --audio (pocketsphinx phones + render)
  audio-M     an M-word text's saved speech as --audio (default 500 words, ~3 min)
and prints a table: speech seconds, wall and CPU seconds, both per second of speech, and
peak RSS. All runs render the same portrait at the same --size.

    .venv/bin/python bench/tts_long.py [--words 5000] [--audio-words 500] [--size 256] [--out /tmp/tts_long]

Timings depend on the machine's load: note `uptime` beside the numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

# Common words that espeak reads naturally; sentences are drawn from them with a fixed seed.
WORDS = """the a my your our their this that big small old new good bad happy quiet bright dark warm cold
people mother father friend teacher doctor farmer child baby neighbour captain painter student
house garden river mountain city village market school boat bridge road window table book map
letter song story picture apple bread water coffee dinner morning evening summer winter week
walks sees finds makes takes gives brings keeps paints reads writes opens closes buys sells
builds carries watches remembers visits follows helps likes wants needs calls meets
slowly quickly often never always sometimes again together today tomorrow here there
in on under over near behind with without before after from into across""".split()


def make_text(n_words: int, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    out, n = [], 0
    while n < n_words:
        k = min(int(rng.integers(7, 16)), n_words - n)
        words = list(rng.choice(WORDS, k))
        out.append(" ".join(words).capitalize() + ("." if rng.random() < 0.85 else "?"))
        n += k
    return " ".join(out)


def run(cmd: list[str]) -> dict:
    """Run ``cmd``; wall seconds, CPU seconds (user + sys) and peak RSS (MiB) of the child."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    out, err = p.stdout.read(), p.stderr.read()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{err}")
    return {"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "rss_mib": ru.ru_maxrss / 1024, "stdout": out.strip()}


def wav_seconds(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--words", type=int, default=5000)
    ap.add_argument("--audio-words", type=int, default=500)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--image", default=None, help="portrait (default: the astronaut)")
    ap.add_argument("--out", default="/tmp/tts_long")
    ap.add_argument("--skip", nargs="*", default=[], help="run names to skip, e.g. audio-500")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    image = a.image
    if image is None:
        from PIL import Image
        from skimage import data

        image = str(out / "astronaut.png")
        Image.fromarray(data.astronaut()).save(image)
    cli = [sys.executable, "-m", "phototalk.cli", "generate", "-i", image, "--size", str(a.size), "-q"]
    rows = []
    plan = [("text-50", 50, None), (f"text-{a.words}", a.words, None),
            ("audio-50", 50, "text-50"), (f"audio-{a.audio_words}", a.audio_words, None)]
    for name, n_words, wav_from in plan:
        if name in a.skip:
            continue
        txt = out / f"{n_words}.txt"
        txt.write_text(make_text(n_words), encoding="utf-8")
        wav = out / f"{n_words}.wav"
        video = out / f"{name}.mp4"
        if name.startswith("text"):
            r = run(cli + ["--text-file", str(txt), "--save-audio", str(wav), "-o", str(video)])
        else:
            if not wav.exists():  # the text's speech, synthesised alone (not timed)
                run(cli + ["--text-file", str(txt), "--save-audio", str(wav), "-o", str(out / "tmp.mp4")])
            r = run(cli + ["--audio", str(wav), "-o", str(video)])
        r.update(name=name, words=n_words, speech_s=wav_seconds(wav))
        rows.append(r)
        print(f"{name:>11}: {r['speech_s']:7.1f} s speech  wall {r['wall_s']:7.1f} s "
              f"({r['wall_s'] / r['speech_s']:.3f} s/s)  cpu {r['cpu_s']:7.1f} s ({r['cpu_s'] / r['speech_s']:.3f} s/s)  peak RSS {r['rss_mib']:6.0f} MiB",
              flush=True)
    print(f"load average at the end: {os.getloadavg()}")
    (out / "results.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
