"""One check for every path a job reads or writes, and the size limits of its inputs.

Shared by every front end (CLI, Python API: ``generate``, ``speak``, ``edit_video``,
``dub_video``; the HTTP service): a job names its inputs and outputs once, and

* inputs must be regular files; text, transcripts and track files may also be streams
  (a pipe, ``<(...)``), read only up to their size limit;
* outputs must not be any of the inputs nor each other, and must not be an existing
  directory, device, pipe or socket (``-o /dev/null`` is refused, never replaced);
* each input kind has a limit (``LIMITS``), so a hostile or mistaken input gives a
  one-line error instead of gigabytes of memory. A limit is raised with the
  environment variable it names, e.g. ``PHOTOTALK_MAX_AUDIO_S=7200``.

Every refusal is an ``InputError``/``OutputError`` with a one-line message.
"""
from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass

import numpy as np

from .errors import InputError, OutputError


@dataclass(frozen=True)
class Limit:
    """A size limit: ``default`` in ``unit``; ``env(name)`` is the environment variable
    that raises it."""

    default: float
    unit: str
    what: str

    def env(self, name: str) -> str:
        return f"PHOTOTALK_{name.upper()}"


# name -> limit. Defaults keep the largest accepted input of each kind under 2 GiB of
# memory (measured; README "Limits").
LIMITS = {
    "max_text_chars": Limit(500_000, "characters", "text to speak"),  # ~9 hours at 175 wpm
    "max_transcript_chars": Limit(100_000, "characters", "transcript"),
    "max_track_bytes": Limit(32 * 2 ** 20, "bytes", "track file (--track-in)"),
    "max_track_values": Limit(2_000_000, "values", "values in one track channel"),
    "max_image_megapixels": Limit(64, "megapixels", "image"),
    "max_audio_s": Limit(3600, "seconds", "audio"),
    "max_video_s": Limit(3600, "seconds", "video"),
    "max_video_megapixels": Limit(33.2, "megapixels", "video frame (8K UHD)"),
}
MAX_JSON_DEPTH = 16  # nesting levels; a track file needs 4 ({"ranges": [{"channels": [..]}]})


def limit(name: str) -> float:
    """The limit ``name`` (a key of LIMITS), from its environment variable when set."""
    lim = LIMITS[name]
    raw = os.environ.get(lim.env(name))
    if raw is None:
        return lim.default
    try:
        v = float(raw)
    except ValueError:
        raise InputError(f"{lim.env(name)} must be a number, got {raw!r}") from None
    if not (np.isfinite(v) and v > 0):
        raise InputError(f"{lim.env(name)} must be a positive number, got {raw!r}")
    return v


def over_limit(name: str, got: str) -> InputError:
    """The one-line error for an input over limit ``name``: what, the limit, how to raise it."""
    lim, v = LIMITS[name], limit(name)
    shown = f"{v:,.0f}" if v == int(v) else f"{v:g}"
    return InputError(f"{lim.what} too large: {got} (limit {shown} {lim.unit}; "
                      f"raise it with {lim.env(name)}=...)")


# ------------------------------------------------------------------------------ inputs
def input_file(path: str | os.PathLike, what: str, *, stream_ok: bool = False) -> str:
    """``path`` as a str once it names a readable regular file (or, with ``stream_ok``, a
    pipe or character device read with a size limit). what: 'image', 'audio', ..."""
    path = os.fspath(path)
    if not path:
        raise InputError(f"{what} path is empty")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"{what} not found: {path}") from None
    except OSError as e:
        raise InputError(f"cannot read {what} {path}: {e.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{what} path is a directory: {path}")
    if not stat.S_ISREG(st.st_mode) and not (stream_ok and (stat.S_ISFIFO(st.st_mode) or stat.S_ISCHR(st.st_mode))):
        raise InputError(f"{what} is not a regular file (a device, pipe or socket): {path}")
    if not os.access(path, os.R_OK):
        raise InputError(f"cannot read {what} {path}: permission denied")
    return path


def read_bytes(path: str | os.PathLike, what: str, max_bytes: int, limit_name: str, *,
               too_many: str | None = None) -> bytes:
    """The bytes of a file or stream, refusing (before reading more) anything over
    ``max_bytes``: /dev/zero or a runaway pipe stops at the limit. too_many: how to say
    what is over the limit (default: 'more than N bytes')."""
    path = input_file(path, what, stream_ok=True)
    try:
        # A pipe blocks until its writer opens it, as `cat` would (a stop signal still ends
        # the wait): opening without blocking would read an empty text if the writer is late.
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as e:
        raise InputError(f"cannot read {what} {path}: {e.strerror or e}") from None
    if len(data) > max_bytes:
        raise over_limit(limit_name, f"{path} has {too_many or f'more than {max_bytes:,} bytes'}")
    return data


def read_text(path: str | os.PathLike, what: str, limit_name: str) -> str:
    """A UTF-8 text file or stream as str, at most ``limit(limit_name)`` characters.
    A NUL byte is refused (such a file is not text; C libraries would drop all after it)."""
    max_chars = int(limit(limit_name))
    # UTF-8 takes at most 4 bytes a character: more bytes than that are surely too many characters
    data = read_bytes(path, what, 4 * max_chars + 4, limit_name, too_many=f"more than {max_chars:,} characters")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{what} {os.fspath(path)} is not UTF-8 text (byte {e.start})") from None
    return check_text(text, what, limit_name, source=os.fspath(path))


def check_text(text: str, what: str, limit_name: str, *, source: str | None = None) -> str:
    """``text`` if it is a str without NUL characters within its limit, else InputError."""
    where = f" {source}" if source else ""
    if not isinstance(text, str):
        raise InputError(f"{what} must be a string, got {type(text).__name__}")
    max_chars = int(limit(limit_name))
    if len(text) > max_chars:
        raise over_limit(limit_name, f"{what}{where} has {len(text):,} characters")
    nul = text.find("\0")
    if nul >= 0:
        raise InputError(f"{what}{where} contains a NUL character (at character {nul}): not plain text")
    return text


def _json_depth(data: bytes) -> int:
    """Deepest nesting of [ and { in JSON ``data``, outside strings (before parsing it:
    Python's parser recurses, so 100,000 levels would overflow its stack)."""
    depth = deepest = 0
    in_str = esc = False
    for b in data:
        if in_str:
            if esc:
                esc = False
            elif b == 0x5C:  # backslash
                esc = True
            elif b == 0x22:
                in_str = False
        elif b == 0x22:
            in_str = True
        elif b in (0x5B, 0x7B):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_JSON_DEPTH:
                    return deepest
        elif b in (0x5D, 0x7D):
            depth -= 1
    return deepest


def _json_int(s: str):
    # json.loads would build any integer (and refuse one of 4300+ digits with a traceback
    # deep in the parser); past 18 digits a float is as good, and inf is caught later.
    return int(s) if len(s) <= 18 else float(s)


def _json_constant(s: str):
    raise InputError(f"JSON value {s} is not a finite number")


def read_json(path: str | os.PathLike, what: str, limit_name: str = "max_track_bytes"):
    """Parse a JSON file or stream of at most ``limit(limit_name)`` bytes and
    MAX_JSON_DEPTH levels; NaN/Infinity are refused, huge integers become floats."""
    data = read_bytes(path, what, int(limit(limit_name)), limit_name)
    if _json_depth(data) > MAX_JSON_DEPTH:
        raise InputError(f"{what} {os.fspath(path)} is nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        return json.loads(data.decode("utf-8-sig"), parse_int=_json_int, parse_constant=_json_constant)
    except UnicodeDecodeError as e:
        raise InputError(f"{what} {os.fspath(path)} is not UTF-8 (byte {e.start})") from None
    except ValueError as e:
        raise InputError(f"{what} {os.fspath(path)} is not valid JSON: {str(e).splitlines()[0]}") from None


# ------------------------------------------------------------------------------ outputs
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov")  # names under which an MP4 (H.264 + AAC) plays
OTHER_MEDIA_SUFFIXES = (".avi", ".mkv", ".webm", ".wmv", ".flv", ".gif", ".mpg", ".mpeg", ".ts", ".ogv",
                        ".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg", ".opus",
                        ".png", ".jpg", ".jpeg", ".webp", ".bmp", ".json", ".csv", ".txt")


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def output_file(path: str | os.PathLike, flag: str = "--output") -> str:
    """Absolute ``path`` once a file may be (re)placed there: its directory exists and is
    writable, and nothing but a regular file is there now."""
    raw = os.fspath(path)
    if not raw:
        raise OutputError(f"{flag} is empty")
    if raw.endswith(("/", os.sep)) or os.path.basename(raw) in (".", ".."):
        raise OutputError(f"{flag} {raw} names a directory; give a file name")
    full = os.path.abspath(raw)
    d = os.path.dirname(full)
    try:
        st = os.stat(full)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise OutputError(f"cannot write {flag} {raw}: {e.strerror}") from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise OutputError(f"output path is a directory: {full}")
        if not stat.S_ISREG(st.st_mode):
            raise OutputError(f"{flag} {raw} is not a regular file (a device, pipe or socket); "
                              "phototalk only replaces regular files")
    if not os.path.isdir(d):
        raise OutputError(f"output directory does not exist: {d}")
    if not os.access(d, os.W_OK | os.X_OK):
        raise OutputError(f"output directory is not writable: {d}")
    return full


def check_video_name(path: str | os.PathLike, flag: str = "--output") -> None:
    """The MP4 itself: a name another player would read as another format (out.avi,
    out.wav) is refused rather than silently given MP4 content."""
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext in OTHER_MEDIA_SUFFIXES:
        raise OutputError(f"{flag} {os.fspath(path)}: phototalk writes MP4 (H.264 + AAC); "
                          f"name it {' or '.join(VIDEO_SUFFIXES)}")


def check_job(inputs: dict[str, object], outputs: dict[str, object], *, video_flag: str = "--output"
              ) -> dict[str, str | None]:
    """Check the paths of one job: ``inputs`` and ``outputs`` map an option name (as the
    user wrote it: '--image', '-o', ...) to a path, or to None / an in-memory value that
    is not a path (skipped). Outputs must be fresh or regular files, distinct from each
    other and from every input (same path, symlink or hard link).
    Returns ``outputs`` with each path made absolute (None kept)."""
    seen: dict[str, tuple] = {}  # input identities
    for flag, p in inputs.items():
        if isinstance(p, (str, os.PathLike)) and os.fspath(p):
            seen[flag] = (os.path.realpath(os.fspath(p)), _identity(os.fspath(p)))
    out: dict[str, str | None] = {}
    taken: dict[str, str] = {}  # realpath -> flag of an output
    for flag, p in outputs.items():
        if p is None:
            out[flag] = None
            continue
        full = output_file(p, flag)
        real, ident = os.path.realpath(full), _identity(full)
        for iflag, (ireal, iident) in seen.items():
            if real == ireal or (ident is not None and ident == iident):
                raise OutputError(f"{flag} {os.fspath(p)} is the input {iflag}: it would be overwritten; "
                                  "write to another file")
        if real in taken:
            raise OutputError(f"{taken[real]} and {flag} name the same file {os.fspath(p)}")
        for other_real, other_flag in taken.items():
            if ident is not None and ident == _identity(other_real):
                raise OutputError(f"{other_flag} and {flag} name the same file {os.fspath(p)}")
        if flag == video_flag:
            check_video_name(full, flag)
        taken[real] = flag
        out[flag] = full
    return out
