"""Streaming MP4 writer: H.264 yuv420p video + AAC audio through PyAV, written atomically.

Frames are encoded as they arrive and the soundtrack is decoded and re-encoded in
step with them, so memory does not grow with the length of the video.
"""
from __future__ import annotations

import os
from fractions import Fraction
from typing import Iterator

import numpy as np

from ..errors import OutputError
from ..core.atomic import atomic_path

AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)  # Hz


FLOAT_FORMATS = ("flt", "fltp", "dbl", "dblp")  # sample formats that can hold NaN and inf


def _audio_frames_from_file(path: str) -> Iterator:
    """The decoded frames of ``path``'s first audio stream; NaN and infinite samples (a
    float WAV can hold them, and FFmpeg's AAC encoder refuses them) become silence."""
    import av

    with av.open(path) as c:
        for f in c.decode(c.streams.audio[0]):
            if f.format.name in FLOAT_FORMATS:
                a = f.to_ndarray()
                if not np.isfinite(a).all():
                    g = av.AudioFrame.from_ndarray(np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0),
                                                   format=f.format.name, layout=f.layout.name)
                    g.sample_rate, g.pts, g.time_base = f.sample_rate, f.pts, f.time_base
                    f = g
            yield f


def _audio_frames_from_array(samples: np.ndarray, sr: int, block: int = 4096) -> Iterator:
    import av

    for i in range(0, len(samples), block):
        chunk = np.ascontiguousarray(samples[i:i + block], np.float32)[None, :]
        f = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
        f.sample_rate = sr
        f.pts = i
        yield f


class VideoWriter:
    """Write frames to ``path`` (MP4). Use as a context manager; on an exception the
    partial file is removed and ``path`` is left untouched.

    audio: a file path (its first audio stream is muxed) or a (samples (n,) float32, sr)
    tuple, or None for a silent video.
    lossless: encode RGB losslessly (libx264rgb, qp 0) instead of yuv420p at ``crf``:
    decoded frames then equal the written ones bit for bit (for tests and measurements;
    fewer players support it).
    rotation_deg: display rotation stored in the stream (counterclockwise degrees, as
    PyAV's ``VideoFrame.rotation`` reports it), for videos whose frames are stored turned.
    """

    def __init__(self, path: str | os.PathLike, width: int, height: int, fps: float, *, audio=None,
                 crf: int = 20, preset: str = "veryfast", lossless: bool = False, rotation_deg: int = 0):
        self.path = os.fspath(path)
        self.width, self.height, self.fps = width, height, fps
        self.audio, self.crf, self.preset = audio, crf, preset
        self.lossless, self.rotation_deg = lossless, rotation_deg
        self.frames_written = 0

    def __enter__(self) -> "VideoWriter":
        import av

        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        try:
            # movflags is an option of the MP4 muxer, not of the codec: given to the stream it
            # was ignored and the index (moov) came last, so a browser had to fetch the whole
            # file before playing. faststart moves it first once the file is complete.
            self._c = av.open(tmp, "w", format="mp4", options={"movflags": "+faststart"})
            rate = Fraction(self.fps).limit_denominator(1001)
            if self.lossless:
                vs = self._c.add_stream("libx264rgb", rate=rate)
                vs.width, vs.height, vs.pix_fmt = self.width, self.height, "rgb24"
                vs.options = {"qp": "0", "preset": self.preset}
            else:
                vs = self._c.add_stream("libx264", rate=rate)
                vs.width, vs.height, vs.pix_fmt = self.width, self.height, "yuv420p"
                vs.options = {"crf": str(self.crf), "preset": self.preset}
            if self.rotation_deg:
                vs.set_display_rotation(self.rotation_deg)
            vs.codec_context.time_base = 1 / rate
            self._vs = vs
            self._setup_audio()
        except BaseException as e:
            self._atomic.__exit__(type(e), e, e.__traceback__)
            if isinstance(e, OSError):
                raise OutputError(f"cannot write {self.path}: {e}") from None
            raise
        return self

    def _setup_audio(self) -> None:
        import av

        self._as = None
        if self.audio is None:
            return
        if isinstance(self.audio, (str, os.PathLike)):
            with av.open(os.fspath(self.audio)) as c:
                src = c.streams.audio[0]
                rate, channels = src.rate, min(src.channels or 1, 2)
            self._audio_iter = _audio_frames_from_file(os.fspath(self.audio))
        else:
            samples, rate = self.audio
            channels = 1
            self._audio_iter = _audio_frames_from_array(samples, rate)
        rate = rate if rate in AAC_RATES else 48000
        layout = "stereo" if channels == 2 else "mono"
        self._as = self._c.add_stream("aac", rate=rate, layout=layout)
        self._as.bit_rate = 128000 if channels == 2 else 96000
        self._resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        self._audio_t = 0.0  # seconds of audio already sent to the encoder
        self._audio_samples = 0

    def _pump_audio(self, until_s: float | None) -> None:
        """Encode soundtrack up to ``until_s`` (None: all of it), keeping A/V interleaved."""
        if self._as is None:
            return
        while until_s is None or self._audio_t < until_s:
            frame = next(self._audio_iter, None)
            frames = self._resampler.resample(frame)
            for f in frames:
                f.pts = self._audio_samples
                f.time_base = Fraction(1, f.sample_rate)
                self._audio_samples += f.samples
                self._audio_t = self._audio_samples / f.sample_rate
                for p in self._as.encode(f):
                    self._c.mux(p)
            if frame is None:
                for p in self._as.encode(None):
                    self._c.mux(p)
                self._as = None
                return

    def write(self, frame: np.ndarray) -> None:
        """Append one (height, width, 3) uint8 RGB frame."""
        import av

        vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
        vf.pts = self.frames_written
        for p in self._vs.encode(vf):
            self._c.mux(p)
        self.frames_written += 1
        self._pump_audio(self.frames_written / self.fps + 0.5)

    def __exit__(self, et, e, tb):
        try:
            if et is None:
                for p in self._vs.encode(None):
                    self._c.mux(p)
                self._pump_audio(None)
            self._c.close()
        except BaseException as err:
            if et is not None:  # the body's error is the one to report (closing a broken file may fail too)
                return self._atomic.__exit__(et, e, tb)
            # removes the partial file; an OSError (disk full, EFBIG, EIO) comes out as a WriteError
            self._atomic.__exit__(type(err), err, err.__traceback__)
            raise
        return self._atomic.__exit__(et, e, tb)
