"""Atomic output: write to a temporary file beside the target, rename on success."""
from __future__ import annotations

import contextlib
import os
import secrets

from ..errors import OutputError, PhototalkError, WriteError
from ..validate import output_file


def check_writable(path: str | os.PathLike) -> str:
    """Fail early, before any expensive work, if ``path`` cannot be created (see
    ``validate.output_file``: never a directory, device, pipe or socket)."""
    return output_file(path)


def write_error(path: str | os.PathLike, e: BaseException) -> WriteError:
    """A one-line WriteError for an OSError (or PyAV error) raised while writing ``path``."""
    reason = getattr(e, "strerror", None) or (str(e).splitlines()[0] if str(e) else type(e).__name__)
    return WriteError(f"cannot write {os.fspath(path)}: {reason}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path in the target's directory; on a clean exit it replaces
    ``path`` (same filesystem, so the rename is atomic), on any error (a signal's
    exception included) it is removed and a file already at ``path`` is left as it was.
    An OSError while writing (disk full, file size limit, I/O error) becomes a WriteError."""
    path = check_writable(path)
    d, base = os.path.split(path)
    suffix = os.path.splitext(base)[1]
    tmp = None
    try:
        # The name is chosen before the file is created (not tempfile.mkstemp), so that a
        # signal arriving while it is created still finds the name here and removes it.
        while True:
            tmp = os.path.join(d, f".{base}.{secrets.token_hex(6)}.part{suffix}")
            try:
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
                break
            except FileExistsError:  # someone else's file: never ours to remove
                tmp = None
            except OSError as e:
                tmp = None
                raise OutputError(f"cannot write to {d}: {e.strerror}") from None
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(e, OSError) and not isinstance(e, PhototalkError):
            raise write_error(path, e) from None
        raise
