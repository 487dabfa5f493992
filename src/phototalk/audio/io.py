"""Decoding speech from any container PyAV/FFmpeg reads, to 16 kHz mono float32."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..validate import input_file, limit, over_limit

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000  # Hz, the analysis rate of every audio stage


@dataclass
class Speech:
    """Speech for analysis.

    samples: (n,) float32 in [-1, 1], mono, at ``sr``.
    sr:      sample rate in Hz (always SAMPLE_RATE after ``load_speech``).
    path:    the source file, whose original audio goes into the MP4 (None for
             synthesised speech, whose ``samples`` are muxed instead).
    """

    samples: np.ndarray
    sr: int = SAMPLE_RATE
    path: str | None = None

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sr


def samples_at_analysis_rate(speech: Speech) -> np.ndarray:
    """(n,) float32 samples of ``speech`` at SAMPLE_RATE (resampled if it has another rate,
    e.g. synthesised speech): the input of every analysis stage."""
    y = np.asarray(speech.samples, np.float32).reshape(-1)
    if speech.sr == SAMPLE_RATE:
        return y
    try:
        import soxr

        return soxr.resample(y, speech.sr, SAMPLE_RATE, quality="HQ").astype(np.float32, copy=False)
    except ImportError:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(int(speech.sr), SAMPLE_RATE)
        return resample_poly(y, SAMPLE_RATE // g, int(speech.sr) // g).astype(np.float32, copy=False)


def load_speech(path: str | os.PathLike) -> Speech:
    """Decode the first audio stream of ``path`` (wav, mp3, m4a/aac, ogg/opus, flac, or
    a video's soundtrack) to 16 kHz mono. Errors are one-line ``InputError``s.

    Longer than the ``max_audio_s`` limit is refused. NaN or infinite samples (a float
    WAV can hold them) become silence, with one warning."""
    import av

    path = input_file(path, "audio")
    if os.path.getsize(path) == 0:
        raise InputError(f"audio file is empty: {path}")
    max_s = limit("max_audio_s")
    max_n = int(max_s * SAMPLE_RATE)
    buf = np.zeros(0, np.float32)
    n = 0

    def append(a: np.ndarray) -> None:
        nonlocal buf, n
        if n + len(a) > len(buf):  # grow geometrically: amortised one copy, no list of chunks
            grown = np.empty(max(2 * len(buf), n + len(a), SAMPLE_RATE), np.float32)
            grown[:n] = buf[:n]
            buf = grown
        buf[n:n + len(a)] = a
        n += len(a)

    try:
        with av.open(path) as c:
            if not c.streams.audio:
                raise InputError(f"no audio stream in {path}")
            if c.duration and c.duration > 0:  # a size hint, so the buffer is allocated once
                buf = np.empty(min(int(c.duration / 1e6 * SAMPLE_RATE * 1.01) + SAMPLE_RATE, max_n + SAMPLE_RATE),
                               np.float32)
            res = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            for frame in c.decode(c.streams.audio[0]):
                for r in res.resample(frame):
                    append(r.to_ndarray().reshape(-1))
                if n > max_n:
                    raise over_limit("max_audio_s", f"{path} is longer than {max_s:g} s")
            for r in res.resample(None):
                append(r.to_ndarray().reshape(-1))
    except InputError:
        raise
    except (av.FFmpegError, ValueError, UnicodeDecodeError, IndexError) as e:
        raise InputError(f"cannot decode audio {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    samples = buf[:n]
    if len(samples) < SAMPLE_RATE // 50:
        raise InputError(f"audio has no samples (empty or unreadable stream): {path}")
    bad = ~np.isfinite(samples)
    n_bad = int(np.count_nonzero(bad))
    if n_bad:
        if n_bad == len(samples):
            raise InputError(f"audio has no finite samples (all NaN or infinite): {path}")
        log.warning("%s: %d NaN or infinite samples (%.1f %%) replaced by silence", path, n_bad,
                    100.0 * n_bad / len(samples))
        samples[bad] = 0.0
    np.clip(samples, -1.0, 1.0, out=samples)
    return Speech(samples, SAMPLE_RATE, path)  # the muxer silences the same samples (video.encode)


PCM_BLOCK = 1 << 20  # samples converted to 16-bit at a time (no float copy of a whole long recording)


def pcm16(y: np.ndarray) -> np.ndarray:
    """Float samples (any shape, full scale 1.0) -> int16, scaled by 32768 and rounded, so
    16-bit sources (decoded as k / 32768) come back bit-exact; clipped at full scale."""
    y = np.asarray(y)
    y = y if y.dtype.kind == "f" else y.astype(np.float32)  # float64 stays float64: the same rounding as before
    flat = y.reshape(-1)
    out = np.empty(flat.shape, np.int16)
    for a in range(0, len(flat), PCM_BLOCK):
        b = flat[a:a + PCM_BLOCK] * np.float32(32768.0)
        np.round(b, out=b)
        np.clip(b, -32768, 32767, out=b)
        out[a:a + PCM_BLOCK] = b
    return out.reshape(y.shape)


class WavWriter:
    """16-bit PCM WAV written as it goes: ``with WavWriter(path, sr) as w: w.write(samples)``;
    samples (n,) or (n, channels) float (full scale 1.0, see ``pcm16``)."""

    def __init__(self, path: str | os.PathLike, sr: int, channels: int = 1):
        import wave

        self._w = wave.open(os.fspath(path), "wb")
        self._w.setnchannels(channels)
        self._w.setsampwidth(2)
        self._w.setframerate(int(sr))

    def write(self, samples: np.ndarray) -> None:
        self._w.writeframes(pcm16(samples).astype("<i2").tobytes())

    def close(self) -> None:
        self._w.close()

    def __enter__(self) -> "WavWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_wav(path: str | os.PathLike, samples: np.ndarray, sr: int) -> str:
    """Write ``samples`` ((n,) mono or (n, channels)) as a 16-bit PCM WAV; returns the path."""
    y = np.asarray(samples, np.float32)
    with WavWriter(path, sr, 1 if y.ndim == 1 else y.shape[1]) as w:
        w.write(y)
    return os.fspath(path)
