"""The one render -> encode loop of every pipeline (generate, speak, edit, dub).

Each item of ``items`` (a frame index, a (frame index, decoded frame) pair, ...) is
turned into a frame by ``render`` and appended to the open ``VideoWriter``; between
frames the running job's cancel token is checked and its progress reported (stage
"render"). Time is split three ways: getting the next item (decoding a source video,
computing the next motion chunk), rendering, and encoding.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterable, TypeVar

import numpy as np

from ..core import job
from .encode import VideoWriter

T = TypeVar("T")


@dataclass
class StreamStats:
    """frames: written; first_frame_t: perf_counter() when frame 0 was encoded; source_s,
    render_s, encode_s: seconds spent getting items, rendering and encoding (the encoder's
    final flush is added by the caller, after the writer closes)."""

    frames: int = 0
    first_frame_t: float = 0.0
    source_s: float = 0.0
    render_s: float = 0.0
    encode_s: float = 0.0


def render_encode(writer: VideoWriter, items: Iterable[T], render: Callable[[T], np.ndarray], *,
                  total: int = 0, progress: Callable[[int, int], None] | None = None) -> StreamStats:
    """Render every item and write it. total: frames expected (for progress; 0 = unknown,
    then the count so far is reported). progress(done, total) is the pipelines' old
    frame callback; the running job (``core.job``) gets the same as "render" events."""
    st = StreamStats()
    it = iter(items)
    while True:
        job.checkpoint()
        ta = time.perf_counter()
        item = next(it, _END)
        if item is _END:
            break
        tb = time.perf_counter()
        frame = render(item)
        tc = time.perf_counter()
        writer.write(frame)
        td = time.perf_counter()
        st.source_s += tb - ta
        st.render_s += tc - tb
        st.encode_s += td - tc
        st.frames += 1
        if st.frames == 1:
            st.first_frame_t = td
        n = max(total, st.frames)
        if progress is not None:
            progress(st.frames, n)
        job.report("render", st.frames, n)
    return st


_END = object()
