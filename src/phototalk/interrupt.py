"""Stop signals (SIGINT, SIGTERM, SIGHUP) as an exception that unwinds a job cleanly.

The CLI installs ``on_signal`` as the handler: it raises ``Stopped`` in the main thread,
so every open output's context manager removes its temporary file on the way out.
One place must not raise: a Python function called back from C through ctypes (espeak's
synthesis callback), where ctypes would print the exception and drop it, and the job
would go on. Such functions are marked ``@no_raise``; a signal that arrives inside one
is kept, and the code that called into C raises it with ``check()`` once C returns.
"""
from __future__ import annotations

import signal
from types import CodeType

_no_raise: set[CodeType] = set()
_pending: int | None = None
_received: int | None = None  # the stop signal that arrived, even once its Stopped was raised


class Stopped(KeyboardInterrupt):
    """A stop signal arrived (``signum``)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def no_raise(func):
    """Mark ``func`` as a ctypes callback: a stop signal inside it is deferred to ``check``."""
    _no_raise.add(func.__code__)
    return func


def on_signal(signum: int, frame) -> None:
    """Signal handler: raise Stopped, or defer it when running inside a ``no_raise`` callback."""
    global _pending, _received
    _received = signum
    f = frame
    while f is not None:
        if f.f_code in _no_raise:
            _pending = signum
            return
        f = f.f_back
    raise Stopped(signum)


def check() -> None:
    """Raise the Stopped a ``no_raise`` callback deferred, if any."""
    global _pending
    if _pending is not None:
        signum, _pending = _pending, None
        raise Stopped(signum)



def raise_if_received() -> None:
    """Raise Stopped again if a stop signal arrived: its first Stopped can be lost when it
    lands where Python drops exceptions (a generator finalised mid-loop, a ``__del__``),
    and the job would then run to the end; job checkpoints (core.job) call this, so the
    job still stops at its next frame. Only a process that installed ``on_signal`` (the
    CLI) ever has one."""
    if _received is not None:
        raise Stopped(_received)
