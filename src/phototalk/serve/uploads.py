"""Upload limits and content sniffing: what a client sends is checked by its bytes, never
by its filename or Content-Type, and is stored under a name the server chooses.

Too big (bytes, pixels, seconds, characters) -> ``TooLarge`` (HTTP 413); not what it
claims to be, or unreadable -> ``Unprocessable`` (HTTP 422).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

IMAGE_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "BMP": "bmp", "GIF": "gif", "TIFF": "tif",
                 "MPO": "jpg"}  # Pillow format -> stored extension (MPO: phone cameras' JPEG)


@dataclass
class Limits:
    """Per-request limits. Defaults fit a talking-head job on a small server."""

    max_request_bytes: int = 64 * 2 ** 20  # a whole request body
    max_file_bytes: int = 32 * 2 ** 20  # one uploaded file
    max_image_pixels: int = 40_000_000  # width x height (a 40 MP photo); more is a decompression bomb risk
    max_media_s: float = 300.0  # audio or video duration
    max_text_chars: int = 5000  # text to speak


class UploadError(Exception):
    status = 422

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class TooLarge(UploadError):
    status = 413


class Unprocessable(UploadError):
    status = 422


def sniff_image(path: str, limits: Limits) -> str:
    """Check the file is an image Pillow decodes, within the pixel limit; its extension."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:  # reads the header only
            fmt, (w, h) = im.format, im.size
            if w * h > limits.max_image_pixels:
                raise TooLarge("image_too_large", f"image is {w}x{h} = {w * h} pixels; the limit is "
                                                  f"{limits.max_image_pixels}")
            if fmt not in IMAGE_FORMATS:
                raise Unprocessable("unsupported_image", f"image format {fmt} is not accepted")
            im.load()  # a truncated or corrupt image fails here, not in a worker
    except UploadError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise Unprocessable("invalid_image", "the image is not a picture phototalk can read") from None
    return IMAGE_FORMATS[fmt]


def sniff_media(path: str, need_video: bool, limits: Limits) -> str:
    """Check the file is audio (or, ``need_video``, a video with a soundtrack or not)
    that FFmpeg decodes, within the duration limit; its extension."""
    import av

    what = "video" if need_video else "audio"
    try:
        with av.open(path, "r") as c:
            streams = c.streams.video if need_video else c.streams.audio
            if not streams:
                raise Unprocessable(f"invalid_{what}", f"the {what} file has no {what} stream")
            s = streams[0]
            dur = c.duration / 1e6 if c.duration else (float(s.duration * s.time_base) if s.duration else None)
            if dur is None:  # raw streams without a header duration: count by decoding
                dur = 0.0
                for f in c.decode(s):
                    dur = float(f.pts * f.time_base) if f.pts is not None else dur
                    if dur > limits.max_media_s:
                        break
            if dur > limits.max_media_s:
                raise TooLarge(f"{what}_too_long", f"the {what} lasts {dur:.0f} s; the limit is "
                                                   f"{limits.max_media_s:.0f} s")
            next(c.decode(s), None)  # the codec must actually decode
            fmt = c.format.name.split(",")[0]
    except UploadError:
        raise
    except (av.error.FFmpegError, OSError, ValueError, IndexError, StopIteration, ZeroDivisionError):
        raise Unprocessable(f"invalid_{what}", f"the {what} is not a file phototalk can decode") from None
    return {"mov": "mp4", "matroska": "mkv", "ogg": "ogg", "wav": "wav", "mp3": "mp3", "flac": "flac",
            "webm": "webm"}.get(fmt, "bin")


def check_text(text: str, limits: Limits) -> str:
    if len(text) > limits.max_text_chars:
        raise TooLarge("text_too_long", f"text has {len(text)} characters; the limit is {limits.max_text_chars}")
    if not text.strip():
        raise Unprocessable("invalid_text", "text is empty")
    return text


def save_stream(src, dst: str, limits: Limits) -> tuple[int, str]:
    """Copy the file-like ``src`` to ``dst`` with the byte limit; (bytes, sha256 hex)."""
    import hashlib

    h, n = hashlib.sha256(), 0
    with open(dst, "wb") as f:
        while True:
            b = src.read(1 << 20)
            if not b:
                break
            n += len(b)
            if n > limits.max_file_bytes:
                f.close()
                os.unlink(dst)
                raise TooLarge("file_too_large", f"an uploaded file exceeds {limits.max_file_bytes} bytes")
            h.update(b)
            f.write(b)
    if n == 0:
        os.unlink(dst)
        raise Unprocessable("empty_file", "an uploaded file is empty")
    return n, h.hexdigest()
