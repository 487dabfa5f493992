"""Atomic output: write to a temporary file beside the target, rename on success."""
from __future__ import annotations

import contextlib
import os
import tempfile

from ..errors import OutputError


def check_writable(path: str | os.PathLike) -> str:
    """Fail early, before any expensive work, if ``path`` cannot be created."""
    path = os.path.abspath(os.fspath(path))
    d = os.path.dirname(path)
    if os.path.isdir(path):
        raise OutputError(f"output path is a directory: {path}")
    if not os.path.isdir(d):
        raise OutputError(f"output directory does not exist: {d}")
    if not os.access(d, os.W_OK | os.X_OK):
        raise OutputError(f"output directory is not writable: {d}")
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path in the target's directory; on a clean exit it replaces
    ``path`` (same filesystem, so the rename is atomic), on any error it is removed."""
    path = check_writable(path)
    d, base = os.path.split(path)
    suffix = os.path.splitext(base)[1]
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".part" + suffix, dir=d)
    except OSError as e:
        raise OutputError(f"cannot write to {d}: {e.strerror}") from None
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
