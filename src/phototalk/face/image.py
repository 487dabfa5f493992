"""Reading a portrait: any common format, EXIF orientation honoured, RGB uint8 out."""
from __future__ import annotations

import os
import warnings

import numpy as np

from ..errors import InputError

MAX_IMAGE_PIXELS = 120_000_000  # refuse decompression bombs before decoding them
MAX_OUTPUT_SIDE = 4096  # px; libx264 and our memory budget are planned for this
DEFAULT_SIZE_CAP = 1024  # px; default output longer side when --size is not given


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as RGB.

    Returns: (H, W, 3) uint8. RGBA is composited on white, grayscale and palette
    images are expanded, the EXIF orientation tag is applied.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"image not found: {path}")
    if os.path.isdir(path):
        raise InputError(f"image path is a directory: {path}")
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if w * h > MAX_IMAGE_PIXELS:
                    raise InputError(f"image too large: {w}x{h} pixels (limit {MAX_IMAGE_PIXELS // 1_000_000} MP): {path}")
                im = ImageOps.exif_transpose(im)
                if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
                    im = _to_8bit_gray(im)
                if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                    im = im.convert("RGBA")
                    bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
                    im = Image.alpha_composite(bg, im)
                rgb = np.asarray(im.convert("RGB"))
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"image too large to decode safely: {path}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise InputError(f"cannot read image {path}: not a supported or intact image file ({type(e).__name__})") from None
    if rgb.ndim != 3 or rgb.shape[0] < 16 or rgb.shape[1] < 16:
        raise InputError(f"image too small: {rgb.shape[1]}x{rgb.shape[0]} pixels: {path}")
    return np.ascontiguousarray(rgb)


def _to_8bit_gray(im):
    """A 16-bit, 32-bit integer or float grayscale image as 8-bit 'L' (Pillow's own
    conversion clips such values at 255 and turns the picture white)."""
    from PIL import Image

    a = np.asarray(im, dtype=np.float64)
    peak = float(a.max()) if a.size else 0.0
    if im.mode.startswith("I;16") or (im.mode == "I" and peak > 255):
        top = 65535.0
    elif im.mode == "F" and peak <= 1.0:
        top = 1.0
    else:
        top = 255.0
    return Image.fromarray(np.clip(a / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")


def output_size(width: int, height: int, size: int | None) -> tuple[int, int]:
    """Output (width, height): longer side = ``size`` (default: the image's, capped at
    1024), aspect kept, both even because H.264 yuv420p needs even dimensions."""
    longer = max(width, height)
    if size is None:
        size = min(longer, DEFAULT_SIZE_CAP)
    if not 64 <= size <= MAX_OUTPUT_SIDE:
        raise InputError(f"--size must be between 64 and {MAX_OUTPUT_SIDE} pixels, got {size}")
    scale = size / longer

    def even(v: float) -> int:
        return max(2, int(round(v / 2)) * 2)

    return even(width * scale), even(height * scale)


def resize_to(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize (H, W, 3) uint8 to (height, width, 3); area filter when shrinking."""
    import cv2

    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    interp = cv2.INTER_AREA if width < w else cv2.INTER_CUBIC
    return cv2.resize(image, (width, height), interpolation=interp)
