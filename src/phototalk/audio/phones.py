"""Timed phones from speech with pocketsphinx's shipped en-us model.

Two ways (DESIGN.md, stage 1):
  * ``align``: forced alignment when the words are known (text mode, --transcript):
    boundaries and labels are both good.
  * ``recognize``: allphone recognition with the shipped phone language model when
    they are not: boundaries are good (a median of 8-15 ms), labels are noisy.
Both return ARPAbet labels without stress digits and 'SIL' for pauses and noise,
covering [0, duration] without gaps.
"""
from __future__ import annotations

import logging
import os
import re
import threading
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .io import SAMPLE_RATE, Speech

log = logging.getLogger(__name__)

FRAME_S = 0.01  # s; pocketsphinx's frame period
PAD_S = 0.2  # s of silence added around audio before alignment
CHUNK_S = 20.0  # s; recognition runs on pieces of about this length, split at quiet points
# Alignment beams: the first is 2-3x faster; the wider second one rescues noisy
# recordings that the first cannot fit.
BEAMS = (dict(beam=1e-60, wbeam=1e-40, pbeam=1e-60), dict(beam=1e-80, wbeam=1e-60, pbeam=1e-80))
_lock = threading.Lock()  # config/model loading is not thread-safe across decoders


class AlignmentError(InputError):
    """The transcript could not be aligned with the audio."""


@dataclass(frozen=True)
class Phone:
    label: str  # ARPAbet without stress ('AA', 'M', ...) or 'SIL'
    start_s: float
    end_s: float


def _model(*parts: str) -> str:
    from pocketsphinx import get_model_path

    return os.path.join(get_model_path(), *parts)


def _pcm16(speech: Speech) -> bytes:
    """16 kHz mono int16 bytes, resampling when the speech has another rate."""
    y = speech.samples
    if speech.sr != SAMPLE_RATE:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(int(speech.sr), SAMPLE_RATE)
        y = resample_poly(y, SAMPLE_RATE // g, int(speech.sr) // g).astype(np.float32)
    return np.clip(np.round(y * 32767), -32768, 32767).astype("<i2").tobytes()


def _label(name: str) -> str:
    name = name.upper()
    if not name or name.startswith(("+", "<", "SIL", "[")) or not name[0].isalpha():
        return "SIL"
    return re.sub(r"\d", "", name)


def _cover(phones: list[Phone], duration_s: float) -> list[Phone]:
    """Sort, clip to [0, duration], drop overlaps, fill gaps with SIL, merge SIL runs."""
    out: list[Phone] = []
    t = 0.0
    for p in sorted(phones, key=lambda p: p.start_s):
        a, b = max(p.start_s, t), min(p.end_s, duration_s)
        if b <= a:
            continue
        if a > t + 1e-6:
            out.append(Phone("SIL", t, a))
        out.append(Phone(p.label, a, b))
        t = b
    if t < duration_s - 1e-6:
        out.append(Phone("SIL", t, duration_s))
    merged: list[Phone] = []
    for p in out:
        if merged and p.label == "SIL" and merged[-1].label == "SIL":
            merged[-1] = Phone("SIL", merged[-1].start_s, p.end_s)
        else:
            merged.append(p)
    return merged


def _words(transcript: str) -> list[str]:
    return re.sub(r"[^a-z' ]", " ", transcript.lower().replace("\u2019", "'")).split()


def _spell(word: str) -> str | None:
    """ARPAbet pronunciation of an out-of-vocabulary word, from espeak-ng's rules."""
    from ..motion.visemes import espeak_to_arpabet
    from .tts import synthesize

    try:
        phones = [espeak_to_arpabet(p) for p, _, _ in synthesize(word).phones]
    except InputError:
        return None
    phones = [p for p in phones if p != "SIL"]
    return " ".join(phones) if phones else None


def _align_once(raw: bytes, words: list[str], beams: dict) -> list[Phone]:
    """pocketsphinx's two-pass alignment (words, then their phones, via set_alignment),
    times relative to ``raw``. RuntimeError if the words do not fit the audio."""
    from pocketsphinx import Decoder

    with _lock:
        d = Decoder(lm=None, bestpath=False, loglevel="FATAL", **beams)
        for w in set(words):
            if d.lookup_word(w) is None:
                pron = _spell(w)
                if pron:
                    d.add_word(w, pron, True)
                    log.info("transcript word %r not in the dictionary; spelled as %s", w, pron)
    d.set_align_text(" ".join(words))
    for k in range(2):
        d.start_utt()
        d.process_raw(raw, full_utt=True)
        d.end_utt()
        if k == 0:
            d.set_alignment()
    return [Phone(_label(p.name), p.start * FRAME_S, (p.start + p.duration) * FRAME_S)
            for w in d.get_alignment() for p in w]


def align(speech: Speech, transcript: str) -> list[Phone]:
    """Forced alignment of ``transcript`` (English words) to ``speech``.

    Words missing from CMUdict are spelled by espeak-ng's letter-to-sound rules.
    Raises AlignmentError when nothing can be aligned."""
    words = _words(transcript)
    if not words:
        raise AlignmentError("the transcript has no words to align")
    # Silence on both sides: pocketsphinx's phone alignment fails on audio that starts or
    # ends mid-phone (synthesised speech often does); times are shifted back below.
    pad = b"\x00\x00" * int(PAD_S * SAMPLE_RATE)
    raw = pad + _pcm16(speech) + pad
    phones, err = None, None
    for beams in BEAMS:
        try:
            phones = _align_once(raw, words, beams)
            break
        except RuntimeError as e:
            err = e
    if phones is None:
        raise AlignmentError(f"the transcript does not match the audio ({err})".splitlines()[0])
    phones = [Phone(p.label, p.start_s - PAD_S, p.end_s - PAD_S) for p in phones]
    if not any(p.label != "SIL" for p in phones):
        raise AlignmentError("the transcript could not be aligned with the audio")
    return _cover(phones, speech.duration_s)


def _split_points(y: np.ndarray, sr: int) -> list[int]:
    """Sample indices that cut ``y`` into pieces of about CHUNK_S at its quietest moments."""
    n = len(y)
    cuts = [0]
    hop = int(0.01 * sr)
    while n - cuts[-1] > 1.5 * CHUNK_S * sr:
        lo, hi = cuts[-1] + int(0.75 * CHUNK_S * sr), cuts[-1] + int(1.25 * CHUNK_S * sr)
        seg = y[lo:hi]
        m = len(seg) // hop
        env = np.sqrt(np.mean(seg[:m * hop].astype(np.float64).reshape(m, hop) ** 2, axis=1))
        env = np.convolve(env, np.ones(5) / 5, mode="same")
        cuts.append(lo + int(np.argmin(env)) * hop)
    return cuts + [n]


def recognize(speech: Speech) -> list[Phone]:
    """Allphone recognition (no transcript). Long audio is decoded in pieces cut at
    quiet moments, so time and memory grow linearly."""
    from pocketsphinx import Decoder

    raw = np.frombuffer(_pcm16(speech), "<i2")
    with _lock:
        d = Decoder(allphone=_model("en-us", "en-us-phone.lm.bin"), lm=None, bestpath=False,
                    loglevel="FATAL", beam=1e-40, pbeam=1e-40, lw=2.0, pip=0.5)
    phones: list[Phone] = []
    cuts = _split_points(raw.astype(np.float32) / 32768, SAMPLE_RATE)
    for a, b in zip(cuts[:-1], cuts[1:]):
        d.start_utt()
        d.process_raw(raw[a:b].tobytes(), full_utt=True)
        d.end_utt()
        off = a / SAMPLE_RATE
        for s in d.seg():
            phones.append(Phone(_label(s.word), off + s.start_frame * FRAME_S, off + (s.end_frame + 1) * FRAME_S))
    return _cover(phones, speech.duration_s)


def phones_for(speech: Speech, transcript: str | None = None) -> list[Phone]:
    """Aligned phones when a transcript is given (falling back to recognition if it does
    not fit the audio), else recognised ones."""
    if np.max(np.abs(speech.samples), initial=0.0) < 1e-4:
        return [Phone("SIL", 0.0, speech.duration_s)]
    if transcript:
        try:
            return align(speech, transcript)
        except AlignmentError as e:
            log.warning("%s; using phone recognition instead", e)
    return recognize(speech)
