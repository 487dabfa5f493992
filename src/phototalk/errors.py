"""One root exception for every user-facing error (STYLE.md: librosa's single root).

Front ends print ``str(err)`` as one line and exit non-zero; anything that is not a
``PhototalkError`` is a bug and keeps its traceback.
"""


class PhototalkError(Exception):
    """Root of all errors a user can cause and fix."""


class InputError(PhototalkError):
    """A user-supplied file or value is missing, unreadable or unsupported."""


class FaceError(InputError):
    """No usable face, or an ambiguous choice between several faces."""


class OutputError(PhototalkError):
    """The output cannot be written where the user asked."""


class WriteError(OutputError):
    """Writing failed part-way (disk full, file size limit, I/O error): the partial
    file is removed and a file already at the output path is kept."""


class Cancelled(PhototalkError):
    """The job was cancelled through its ``CancelToken``; no output was written."""

    def __init__(self, message: str = "cancelled"):
        super().__init__(message)
