"""Timed phones from speech with pocketsphinx's shipped en-us model.

Two ways (DESIGN.md, stage 1):
  * ``align``: forced alignment when the words are known (text mode, --transcript):
    boundaries and labels are both good.
  * ``recognize``: allphone recognition with the shipped phone language model when
    they are not: boundaries are good, labels are noisy.
Both return ARPAbet labels without stress digits and 'SIL' for pauses and noise,
sorted and covering [0, duration] without gaps or overlaps.

Speed (2-core machine, warm): alignment ~0.04x real time, recognition ~0.055x; the
first call of each also loads its model (~0.15 s).
Time and memory grow linearly with length: recognition decodes pieces of about
CHUNK_S cut at quiet moments; alignment of audio longer than LONG_ALIGN_S first finds
the words' positions (a cheap word-level pass) and then aligns pieces of at most about
ALIGN_CHUNK_S cut between words, because pocketsphinx's phone-level pass needs
~3 MB per second of audio.

Decoders are never shared between threads: each call borrows one from a small pool
(loading one costs ~0.15 s). Reuse does not change results: cepstral mean
normalisation is per utterance ('batch') and the front end is reset before every
utterance, so a reused decoder gives bit-identical output to a fresh one.
"""
from __future__ import annotations

import logging
import os
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..core import job
from ..errors import InputError
from .features import frame_power
from .io import SAMPLE_RATE, Speech, pcm16, samples_at_analysis_rate

log = logging.getLogger(__name__)

FRAME_S = 0.01  # s; pocketsphinx's frame period
HOP = int(FRAME_S * SAMPLE_RATE)  # samples per frame
PAD_S = 0.2  # s of digital silence around audio before alignment (see align)
CHUNK_S = 20.0  # s; recognition decodes pieces of about this length
LONG_ALIGN_S = 60.0  # s; longer audio is aligned in pieces
ALIGN_CHUNK_S = 30.0  # s; the longest piece (unless one word run has no gap)
QUIET_RMS = 10 ** (-70 / 20)  # full scale = 1; below this (~10 LSB of 16-bit) is silence
# Wide beams: alignment of real recordings fails less often and costs no more time
# than pocketsphinx's defaults, which also flip results on 1-LSB input changes.
ALIGN_CONFIG = dict(lm=None, bestpath=False, beam=1e-80, wbeam=1e-60, pbeam=1e-80)
# Phone-loop recognition with context-independent phones (allphone_ci, the default).
# On real prompts (bench/phones_eval.py) beams 1e-20..1e-60 and pip 0.1..1 change nothing,
# lw 1..4 moves frame agreement with alignment by < 0.5 %, and context-dependent phones
# gain 1.4 % at 200x the cost (12x real time).
RECOGNIZE_CONFIG = dict(lm=None, bestpath=False, beam=1e-40, pbeam=1e-40, lw=2.0)


class AlignmentError(InputError):
    """The transcript could not be aligned with the audio."""


class Phone(NamedTuple):
    """One phone: ``label`` is ARPAbet without stress ('AA', 'M', ...) or 'SIL';
    ``start_s``/``end_s`` in seconds from the start of the audio. A tuple, so the timed
    phones of every source (recognised, aligned, espeak's) are one type: (label, start_s, end_s)."""

    label: str
    start_s: float
    end_s: float


def _model(*parts: str) -> str:
    from pocketsphinx import get_model_path

    return os.path.join(get_model_path(), *parts)


class _NoFit(RuntimeError):
    """A complete utterance's words could not be aligned to it (set_alignment failed)."""


class _Pool:
    """Idle decoders of one configuration, lent to one caller at a time."""

    _construct = threading.Lock()  # Decoder() sets pocketsphinx's process-wide log level

    def __init__(self, phone_lm: bool = False, **config) -> None:
        self.phone_lm, self.config = phone_lm, config
        self.idle: list = []
        self.lock = threading.Lock()

    @contextmanager
    def decoder(self):
        with self.lock:
            d = self.idle.pop() if self.idle else None
        if d is None:
            from pocketsphinx import Decoder

            cfg = dict(self.config)
            if self.phone_lm:
                cfg["allphone"] = _model("en-us", "en-us-phone.lm.bin")
            with self._construct:
                d = Decoder(loglevel="FATAL", **cfg)
        try:
            yield d
        except _NoFit:
            # Words that did not fit leave the decoder between utterances: it is kept (a new
            # one costs ~0.1 s, which short clips whose words do not align paid twice).
            with self.lock:
                self.idle.append(d)
            raise
        # Otherwise only reached without an exception: a decoder that failed mid-utterance is dropped.
        with self.lock:
            self.idle.append(d)


_aligners = _Pool(**ALIGN_CONFIG)
_recognizers = _Pool(phone_lm=True, **RECOGNIZE_CONFIG)


def _pcm16(speech: Speech) -> np.ndarray:
    """(n,) int16 samples at 16 kHz. Scaling by 32768 keeps 16-bit sources bit-exact,
    which matters: pocketsphinx's output can change with a 1-LSB change."""
    return pcm16(samples_at_analysis_rate(speech))


def _frame_rms(pcm: np.ndarray) -> np.ndarray:
    """RMS of each 10 ms frame, full scale = 1."""
    return np.sqrt(frame_power(pcm, HOP)) / 32768.0


def _label(name: str) -> str:
    """pocketsphinx unit name -> ARPAbet without stress, or 'SIL' for silence/fillers/noise."""
    name = name.upper()
    if not name[:1].isalpha() or name.startswith("SIL"):
        return "SIL"
    return re.sub(r"\d", "", name)


def _cover(phones: list[Phone], duration_s: float) -> list[Phone]:
    """Sort, clip to [0, duration], trim overlaps, fill gaps with SIL, merge SIL runs.
    Times are rounded to 1 us so frame arithmetic leaves no 1e-17 slivers."""
    out: list[Phone] = []
    t = 0.0
    for p in sorted(phones, key=lambda p: (p.start_s, p.end_s)):
        a, b = round(max(p.start_s, t), 6), min(round(p.end_s, 6), duration_s)  # never past the end
        if b <= a:
            continue
        if a > t:
            out.append(Phone("SIL", t, a))
        out.append(Phone(p.label, a, b))
        t = b
    if t < duration_s:
        out.append(Phone("SIL", t, duration_s))
    merged: list[Phone] = []
    for p in out:
        if merged and p.label == "SIL" == merged[-1].label:
            merged[-1] = Phone("SIL", merged[-1].start_s, p.end_s)
        else:
            merged.append(p)
    return merged


def _words(transcript: str) -> list[str]:
    """Lower-case words (letters, digits, inner apostrophes) in spoken order."""
    text = transcript.lower().replace("\u2019", "'")
    return [w for w in (t.strip("'") for t in re.findall(r"[^\W_]+(?:'[^\W_]+)*", text)) if w]


# espeak-ng en-us mnemonics (stress marks stripped) -> CMUdict phones, for spelling words
# CMUdict lacks. Finer than the viseme mapping (AE vs AA, r-coloured vowels); checked on
# 1500 random CMUdict words: 12 % phone error rate against CMUdict (17 % with the
# viseme mapping), most of it vowel reduction that CMUdict itself spells inconsistently.
_ESPEAK_ARPABET = {
    "@": "AH", "@2": "AH", "@5": "AH", "@-": "AH", "a#": "AH", "V": "AH", "@L": "AH L",
    "3": "ER", "3:": "ER", "a": "AE", "aa": "AE", "A:": "AA", "0": "AA", "A@": "AA R",
    "aI": "AY", "aI@": "AY ER", "aI3": "AY ER", "aU": "AW", "E": "EH", "e@": "EH R", "eI": "EY",
    "I": "IH", "I#": "IH", "I2": "IH", "i": "IY", "i:": "IY", "i@": "IH R", "i@3": "IH R",
    "O:": "AO", "O2": "AO", "O@": "AO R", "o@": "AO R", "OI": "OY", "oU": "OW",
    "U": "UH", "U@": "UH R", "u:": "UW",
    "t#": "T", "t2": "T", "n-": "N", "r-": "R", "x": "K", "?": "", ";": "",
}


def _spell(word: str) -> str | None:
    """CMUdict-style pronunciation of a word CMUdict lacks, from espeak-ng's
    letter-to-sound rules (numbers come out as their spoken words); None if espeak
    says nothing for it."""
    from .tts import espeak_to_arpabet, synthesize

    try:
        mnemonics = [m.lstrip("',%=") for m, _, _ in synthesize(word).phones]
    except InputError:
        return None
    phones = [ph for m in mnemonics if not m.startswith("_")
              for ph in _ESPEAK_ARPABET.get(m, espeak_to_arpabet(m)).split()]
    phones = [p for p in phones if p != "SIL"]
    # An r-coloured vowel before espeak's linking 'r' would say R twice.
    phones = [p for k, p in enumerate(phones) if not (p == "R" and k and phones[k - 1] == "R")]
    return " ".join(phones) or None


def _pronounceable(d, words: list[str]) -> list[str]:
    """``words`` that ``d``'s dictionary knows, after adding espeak spellings of the
    missing ones; words that cannot be spelled are dropped with a warning."""
    out = []
    for w in words:
        if d.lookup_word(w) is None:
            pron = _spell(w)
            try:
                if pron is None:
                    raise RuntimeError
                d.add_word(w, pron, True)
                log.info("transcript word %r is not in the dictionary; spelled as %s", w, pron)
            except RuntimeError:
                log.warning("transcript word %r cannot be pronounced; it is left out of the alignment", w)
                continue
        out.append(w)
    return out


def _decode(d, pcm: np.ndarray) -> None:
    job.checkpoint()  # pocketsphinx holds the GIL while it decodes: a cancel is seen between pieces
    # The front end's noise estimate (remove_noise) carries over from the previous
    # utterance; resetting it (~0.1 ms) makes every decode independent of history.
    d.reinit_feat()
    d.start_utt()
    d.process_raw(pcm.tobytes(), full_utt=True)
    d.end_utt()


def _align_piece(d, pcm: np.ndarray, words: list[str], offset_s: float) -> list[Phone]:
    """Two-pass alignment of ``words`` to ``pcm`` (words, then their phones via
    set_alignment); times shifted by ``offset_s``. RuntimeError if they do not fit."""
    # Digital silence on both sides: the phone pass fails on audio that starts or ends
    # mid-phone (synthesised speech often does, and so do pieces of long audio).
    end_s = offset_s + len(pcm) / SAMPLE_RATE
    pad = np.zeros(int(PAD_S * SAMPLE_RATE), np.int16)
    pcm = np.concatenate([pad, pcm, pad])
    d.set_align_text(" ".join(words))
    _decode(d, pcm)
    try:
        d.set_alignment()
    except RuntimeError as e:  # the words found no path through the audio
        raise _NoFit(str(e)) from None
    _decode(d, pcm)
    off = offset_s - PAD_S
    # Clipped to the piece: a phone stretched into the padding would overlap the next piece.
    return [Phone(_label(p.name), max(off + p.start * FRAME_S, offset_s),
                  min(off + (p.start + p.duration) * FRAME_S, end_s))
            for w in d.get_alignment() for p in w]


def _pieces(d, pcm: np.ndarray, words: list[str]) -> list[tuple[int, int, list[str]]]:
    """Cut long audio into (start sample, end sample, words) of at most ~ALIGN_CHUNK_S,
    between words, preferably in the middle of a pause, using a word-level first pass
    (whose memory stays small, unlike the phone-level pass)."""
    d.set_align_text(" ".join(words))
    _decode(d, pcm)
    segs = [(s.word, s.start_frame, s.end_frame) for s in d.seg() or ()]  # None: no path
    spoken = [s for s in segs if _label(s[0]) != "SIL"]
    if len(spoken) != len(words):  # unexpected: let the caller align in one piece
        return [(0, len(pcm), words)]
    # Candidate cuts: (frame, index of the next word, is it a pause).
    cuts, k = [], 0
    for w, a, b in segs:
        if _label(w) == "SIL":
            cuts.append(((a + b) // 2, k, True))
        else:
            cuts.append((a, k, False))
            k += 1
    limit = int(ALIGN_CHUNK_S / FRAME_S)
    out, start, k0 = [], 0, 0
    total = len(pcm) // HOP
    while total - start > limit:
        fits = [c for c in cuts if start < c[0] <= start + limit and c[1] > k0]
        if not fits:
            break
        late = [c for c in fits if c[0] >= start + limit // 2]
        frame, k, _ = max(late or fits, key=lambda c: (c[2], c[0]))  # a pause, else the latest word boundary
        out.append((start * HOP, frame * HOP, words[k0:k]))
        start, k0 = frame, k
    out.append((start * HOP, len(pcm), words[k0:]))
    return [p for p in out if p[2]]  # only the last can be empty: a pause after the last word


def align(speech: Speech, transcript: str) -> list[Phone]:
    """Forced alignment of ``transcript`` (English words) to ``speech`` (any rate).

    Words missing from CMUdict (names, numbers) are spelled by espeak-ng's
    letter-to-sound rules; words nothing can pronounce are dropped with a warning.
    Audio longer than LONG_ALIGN_S is aligned in pieces (see the module docstring).
    Returns phones covering [0, duration]. Raises AlignmentError (one line) when the
    audio is silent, no word can be pronounced, or the words do not fit the audio.
    """
    words = _words(transcript)
    if not words:
        raise AlignmentError("the transcript has no words to align")
    pcm = _pcm16(speech)
    if not np.any(_frame_rms(pcm) >= QUIET_RMS):
        raise AlignmentError("the audio is silent, so there is nothing to align the transcript to")
    try:
        with _aligners.decoder() as d:
            words = _pronounceable(d, words)
            if not words:
                raise AlignmentError("no word of the transcript can be pronounced")
            pieces = _pieces(d, pcm, words) if len(pcm) > LONG_ALIGN_S * SAMPLE_RATE else [(0, len(pcm), words)]
            phones = [p for a, b, ws in pieces for p in _align_piece(d, pcm[a:b], ws, a / SAMPLE_RATE)]
    except RuntimeError as e:
        raise AlignmentError(f"the transcript does not match the audio ({str(e).splitlines()[0]})") from None
    if not any(p.label != "SIL" for p in phones):
        raise AlignmentError("the transcript could not be aligned with the audio")
    return _cover(phones, speech.duration_s)


def _split_points(env: np.ndarray) -> list[int]:
    """Frame indices that cut a recording (10 ms RMS ``env``) into pieces of about
    CHUNK_S at its quietest moments."""
    n, step = len(env), int(CHUNK_S / FRAME_S)
    if n == 0:
        return [0]
    smooth = np.convolve(env, np.ones(5) / 5, mode="same")  # a pause, not one quiet frame
    cuts = [0]
    while n - cuts[-1] > 1.5 * step:
        lo = cuts[-1] + int(0.75 * step)
        cuts.append(lo + int(np.argmin(smooth[lo: cuts[-1] + int(1.25 * step)])))
    return cuts + [n]


def recognize(speech: Speech) -> list[Phone]:
    """Allphone recognition (no transcript) of ``speech`` (any rate) with the shipped
    phone language model: boundaries are good, labels are noisy. Long audio is decoded
    in pieces cut at quiet moments. Pieces quieter than QUIET_RMS throughout are 'SIL'
    without decoding: on digital silence alone the phone loop hallucinates an 'S'
    (with speech in the same piece it labels it correctly).
    Returns phones covering [0, duration]."""
    pcm = _pcm16(speech)
    env = _frame_rms(pcm)
    phones: list[Phone] = []
    cuts = _split_points(env)
    with _recognizers.decoder() as d:
        for a, b in zip(cuts[:-1], cuts[1:]):
            if not np.any(env[a:b] >= QUIET_RMS):
                continue
            _decode(d, pcm[a * HOP: b * HOP if b < len(env) else len(pcm)])
            phones += [Phone(_label(s.word), (a + s.start_frame) * FRAME_S, (a + s.end_frame + 1) * FRAME_S)
                       for s in d.seg()]
            job.report("phones", b, len(env))
    return _cover(phones, speech.duration_s)


# How far an English run's alignment may reach beyond Whisper's timestamps into audio no
# segment covers: tiny.en often rounds them to whole seconds, cutting a word's edge off.
GAP_EXTEND_S = 1.0
# Consecutive English segments are aligned together up to this length (more context than
# one segment, whose edges may be wrong); a piece that does not align is halved at a
# segment boundary until single segments are left (one misheard word then costs one
# segment, not a minute: a 60 s run failed whole).
ALIGN_GROUP_S = 20.0
CUT_SEARCH_S = 0.3  # s either side of a Whisper boundary searched for the quietest moment to cut at


@dataclass
class Recognition:
    """What ``recognize_words`` found.

    phones:   phones covering [0, duration], as ``align`` / ``recognize`` give them.
    segments: Whisper's segments (asr.Segment), trusted English or not, in order.
    guessed:  [(start_s, end_s)] spans whose phones come from allphone recognition
              (no trusted words there, or they did not align): labels are noisy, and
              the place of a stop or nasal is a guess.
    """

    phones: list[Phone]
    segments: list
    guessed: list[tuple[float, float]]

    @property
    def words(self) -> str:
        """The trusted English words, in order."""
        return " ".join(s.text for s in self.segments if s.english)


def _english_runs(segments, duration_s: float) -> list[tuple[float, float, list]]:
    """(start_s, end_s, segments) of each run of consecutive trusted-English segments,
    its span widened by up to GAP_EXTEND_S into audio that no segment covers."""
    spans, k = [], 0
    while k < len(segments):
        if not segments[k].english:
            k += 1
            continue
        j = k
        while j + 1 < len(segments) and segments[j + 1].english:
            j += 1
        lo = segments[k - 1].end_s if k else 0.0  # a rejected segment before it, or the start
        hi = segments[j + 1].start_s if j + 1 < len(segments) else duration_s
        a = max(lo, segments[k].start_s - GAP_EXTEND_S, 0.0)
        b = min(hi, segments[j].end_s + GAP_EXTEND_S, duration_s)
        if spans and a < spans[-1][1]:  # Whisper's windows can overlap by a few ms
            a = spans[-1][1]
        if b > a:
            spans.append((a, b, segments[k:j + 1]))
        k = j + 1
    return spans


def _piece(speech: Speech, a_s: float, b_s: float) -> Speech:
    return Speech(speech.samples[int(round(a_s * speech.sr)):int(round(b_s * speech.sr))], speech.sr)


def _shift(phones: list[Phone], offset_s: float) -> list[Phone]:
    return [Phone(p.label, p.start_s + offset_s, p.end_s + offset_s) for p in phones]


def _quiet_cut(env: np.ndarray, t_s: float, lo_s: float, hi_s: float) -> float:
    """The quietest moment (s) within CUT_SEARCH_S of ``t_s`` and strictly inside
    (lo_s, hi_s), from the 10 ms RMS ``env``; ``t_s`` itself if there is no room."""
    a = max(int((t_s - CUT_SEARCH_S) / FRAME_S), int(lo_s / FRAME_S) + 1)
    b = min(int((t_s + CUT_SEARCH_S) / FRAME_S), int(hi_s / FRAME_S) - 1, len(env))
    if b <= a:
        return t_s
    smooth = np.convolve(env, np.ones(3) / 3, mode="same")[a:b]
    return (a + int(np.argmin(smooth))) * FRAME_S


def recognize_words(speech: Speech, model: str | None = None) -> Recognition:
    """Phones of ``speech`` (any rate) without a transcript: Whisper tiny.en (asr.py)
    writes the words; runs of segments trusted as English are force-aligned with their
    words, in pieces of up to ALIGN_GROUP_S (halved at segment boundaries while they do
    not align); what is left (rejected segments: other languages, singing, noise; audio
    between runs; single segments whose words do not align) gets allphone recognition,
    so English phones are never forced on audio that is not English speech. ``model``:
    a Whisper model directory (default: asr.model_path()).
    Speed: Whisper ~0.03-0.06x real time plus alignment ~0.02-0.03x on English speech
    (bench/asr_bench.py)."""
    from . import asr

    duration = speech.duration_s
    segments = asr.transcribe(speech, model)
    phones: list[Phone] = []
    guessed: list[tuple[float, float]] = []
    env = None

    def guess(a: float, b: float) -> None:
        if b - a >= FRAME_S:
            phones.extend(_shift(recognize(_piece(speech, a, b)), a))
            guessed.append((a, b))

    def align_or_split(segs: list, a: float, b: float) -> None:
        nonlocal env
        text = " ".join(s.text for s in segs)
        try:
            phones.extend(_shift(align(_piece(speech, a, b), text), a))
            return
        except AlignmentError as e:
            log.info("recognised words %r do not align at %.2f-%.2f s (%s)", text, a, b, e)
        if len(segs) == 1:
            guess(a, b)
            return
        if env is None:
            env = _frame_rms(_pcm16(speech))
        m = len(segs) // 2
        c = _quiet_cut(env, segs[m].start_s, a, b)
        align_or_split(segs[:m], a, c)
        align_or_split(segs[m:], c, b)

    t = 0.0
    for a, b, run in _english_runs(segments, duration):
        guess(t, a)
        groups = [[run[0]]]
        for s in run[1:]:
            if s.end_s - groups[-1][0].start_s > ALIGN_GROUP_S:
                groups.append([s])
            else:
                groups[-1].append(s)
        if len(groups) > 1 and env is None:
            env = _frame_rms(_pcm16(speech))
        cuts = [a] + [_quiet_cut(env, g[0].start_s, a, b) for g in groups[1:]] + [b]
        for g, lo, hi in zip(groups, cuts[:-1], cuts[1:]):
            align_or_split(g, lo, hi)
        t = b
    guess(t, duration)
    return Recognition(_cover(phones, duration), segments, guessed)


def _recognized(speech: Speech, model: str | None) -> Recognition:
    """``recognize_words``, or plain allphone recognition (with a warning) when the
    Whisper packages are not installed and no model was asked for."""
    from . import asr

    try:
        return recognize_words(speech, model)
    except asr.ModelMissing as e:
        log.warning("%s; recognising phones without words", e)
    except ImportError as e:
        log.warning("speech recognition unavailable (%s); recognising phones without words", e)
    return Recognition(recognize(speech), [], [(0.0, speech.duration_s)])


def phones_with_words(speech: Speech, transcript: str | None = None, model: str | None = None) -> Recognition:
    """Aligned phones when a transcript is given; else (or if it cannot be aligned, with a
    logged warning) ``recognize_words``. ``Recognition.guessed`` says where the phones
    are allphone guesses."""
    if transcript and transcript.strip():
        try:
            return Recognition(align(speech, transcript), [], [])
        except AlignmentError as e:
            log.warning("%s; recognising phones from the audio instead", e)
    return _recognized(speech, model)


def phones_for(speech: Speech, transcript: str | None = None, model: str | None = None) -> list[Phone]:
    """Aligned phones when a transcript is given (falling back to recognition, with a
    logged warning, if it cannot be aligned), else recognised ones (``recognize_words``).
    Covers [0, duration] contiguously."""
    return phones_with_words(speech, transcript, model).phones
