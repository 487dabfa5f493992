"""Decoding speech from any container PyAV/FFmpeg reads, to 16 kHz mono float32."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

SAMPLE_RATE = 16000  # Hz, the analysis rate of every audio stage
MAX_DURATION_S = 4 * 3600  # s; longer inputs are almost certainly a mistake


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


def load_speech(path: str | os.PathLike) -> Speech:
    """Decode the first audio stream of ``path`` (wav, mp3, m4a/aac, ogg/opus, flac, or
    a video's soundtrack) to 16 kHz mono. Errors are one-line ``InputError``s."""
    import av

    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"audio not found: {path}")
    if os.path.isdir(path):
        raise InputError(f"audio path is a directory: {path}")
    if os.path.getsize(path) == 0:
        raise InputError(f"audio file is empty: {path}")
    chunks = []
    n = 0
    try:
        with av.open(path) as c:
            if not c.streams.audio:
                raise InputError(f"no audio stream in {path}")
            res = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            for frame in c.decode(c.streams.audio[0]):
                for r in res.resample(frame):
                    a = r.to_ndarray().reshape(-1)
                    chunks.append(a)
                    n += len(a)
                if n > MAX_DURATION_S * SAMPLE_RATE:
                    raise InputError(f"audio longer than {MAX_DURATION_S // 3600} hours: {path}")
            for r in res.resample(None):
                chunks.append(r.to_ndarray().reshape(-1))
    except InputError:
        raise
    except (av.FFmpegError, ValueError, UnicodeDecodeError, IndexError) as e:
        raise InputError(f"cannot decode audio {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    samples = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    if len(samples) < SAMPLE_RATE // 50:
        raise InputError(f"audio has no samples (empty or unreadable stream): {path}")
    return Speech(np.clip(samples, -1.0, 1.0), SAMPLE_RATE, path)
