"""The running job's context: progress events and cancellation, reachable from any stage
without passing them through every signature.

``phototalk.run`` enters a ``Job`` (a context variable, so concurrent jobs in other threads
each see their own); stage code calls ``checkpoint()`` between units of work (a frame, a
decoder piece, a model call) and ``report(stage, done, total)`` as it advances. Outside a
job both are no-ops, so the stages stay usable on their own.

Worker threads do not inherit a context variable: submit work with ``in_job(fn)`` so that
the worker checks the same token and reports to the same callback.
"""
from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import dataclass
from typing import Callable, Iterator

from .. import interrupt
from ..errors import Cancelled

STAGES = ("audio", "tts", "phones", "face", "motion", "render")


class CancelToken:
    """Thread-safe stop flag: ``cancel()`` from any thread; the job raises ``Cancelled``
    at its next checkpoint (at most ~1 s later, usually a frame)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled")


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a job. stage: one of STAGES; done/total: units of that stage (frames,
    chunks, pieces; total 0 = unknown); fraction: of the whole job, 0..1, never decreasing;
    elapsed_s: seconds since the job started."""

    stage: str
    done: int
    total: int
    fraction: float
    elapsed_s: float


# Share of a job's time each stage takes, roughly (measured on 4-8 s clips at --size 512);
# only the progress fraction uses them.
STAGE_WEIGHTS = {"audio": 0.02, "tts": 0.08, "phones": 0.15, "face": 0.1, "motion": 0.05, "render": 0.6}


class Job:
    """A running job: its cancel token and progress callback (both optional)."""

    def __init__(self, cancel: CancelToken | None = None,
                 on_progress: Callable[[ProgressEvent], None] | None = None,
                 stages: tuple[str, ...] = STAGES) -> None:
        self.token = cancel
        self.on_progress = on_progress
        total = sum(STAGE_WEIGHTS[s] for s in stages) or 1.0
        self._weights = {s: STAGE_WEIGHTS[s] / total for s in stages}
        self._part = {s: 0.0 for s in stages}
        self._fraction = 0.0
        self._lock = threading.Lock()
        self.t0 = time.perf_counter()

    def report(self, stage: str, done: int, total: int) -> None:
        interrupt.raise_if_received()
        if self.token is not None:
            self.token.raise_if_cancelled()
        if self.on_progress is None:
            return
        with self._lock:
            part = min(done / total, 1.0) if total > 0 else 0.0
            if stage in self._part:
                self._part[stage] = max(self._part[stage], part)
            self._fraction = max(self._fraction, min(1.0, sum(self._weights[s] * p for s, p in self._part.items())))
            ev = ProgressEvent(stage, int(done), int(total), self._fraction, time.perf_counter() - self.t0)
        self.on_progress(ev)

    def finish(self, stage: str, done: int) -> None:
        """The job is done (its output written): one last event at fraction 1.0, without
        a cancel check (a cancel now comes too late to undo anything)."""
        with self._lock:
            for s in self._part:
                self._part[s] = 1.0
            self._fraction = 1.0
            ev = ProgressEvent(stage, int(done), int(done), 1.0, time.perf_counter() - self.t0)
        if self.on_progress is not None:
            self.on_progress(ev)


_current: contextvars.ContextVar[Job | None] = contextvars.ContextVar("phototalk_job", default=None)


@contextlib.contextmanager
def job(j: Job) -> Iterator[Job]:
    """Make ``j`` the current job of this thread (and of workers started with ``in_job``)."""
    tok = _current.set(j)
    try:
        yield j
    finally:
        _current.reset(tok)


def current() -> Job | None:
    return _current.get()


def checkpoint() -> None:
    """Raise ``Cancelled`` when the current job was cancelled (cheap: call it per frame), or
    ``Stopped`` when the CLI's process got a stop signal (see interrupt.raise_if_received)."""
    interrupt.raise_if_received()
    j = _current.get()
    if j is not None and j.token is not None:
        j.token.raise_if_cancelled()


def cancelled() -> bool:
    """Whether the current job was cancelled (for code that must not raise, e.g. a C callback)."""
    j = _current.get()
    return j is not None and j.token is not None and j.token.cancelled


def report(stage: str, done: int, total: int = 0) -> None:
    """Progress of ``stage`` (``done`` of ``total`` units) for the current job; also a checkpoint."""
    j = _current.get()
    if j is not None:
        j.report(stage, done, total)


WAIT_POLL_S = 0.05  # s; how often a job waiting on a worker looks at its cancel token


def wait(future: Future):
    """``future.result()``, but a cancel of the current job raises ``Cancelled`` within
    WAIT_POLL_S while the worker is still busy (the worker stops at its own next
    checkpoint; its result is dropped). Native code that holds the GIL (a pocketsphinx
    decode) delays this until it returns."""
    j = _current.get()
    if j is None or j.token is None:
        return future.result()
    while True:
        j.token.raise_if_cancelled()
        try:
            return future.result(timeout=WAIT_POLL_S)
        except FuturesTimeout:
            continue


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """A stage of one indivisible step: reports it started (0 of unknown) and done (1 of 1)."""
    report(name, 0, 0)
    yield
    report(name, 1, 1)


def in_job(fn: Callable) -> Callable:
    """``fn`` bound to the caller's context, for running in a worker thread."""
    ctx = contextvars.copy_context()
    return lambda *a, **kw: ctx.run(fn, *a, **kw)


def in_thread(fn: Callable, *args, **kwargs) -> Future:
    """Start ``fn(*args, **kwargs)`` in a worker thread of the current job (same cancel
    token and progress callback); its Future gives the result or raises its error. The
    worker is not waited for at exit of the caller: a cancelled job stops it at its next
    checkpoint."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="phototalk")
    try:
        return pool.submit(in_job(fn), *args, **kwargs)
    finally:
        pool.shutdown(wait=False)
