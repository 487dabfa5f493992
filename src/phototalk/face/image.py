"""Reading a portrait: any common format, EXIF orientation honoured, RGB uint8 out."""
from __future__ import annotations

import logging
import os
import re
import warnings

import numpy as np

from ..errors import InputError
from ..validate import input_file, limit, over_limit

log = logging.getLogger(__name__)

MIN_IMAGE_SIDE = 16  # px; less holds no face the detector can find
MIN_OUTPUT_SIDE = 64  # px; the video's longer side
MAX_OUTPUT_SIDE = 2048  # px; --size 4096 peaked at 3.5 GB (the renderer's per-pixel tables grow with the area)
DEFAULT_SIZE_CAP = 1024  # px; default output longer side when --size is not given
EXIF_ORIENTATION = 0x0112  # the EXIF tag that says how the stored image is turned


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as RGB.

    Returns: (H, W, 3) uint8. RGBA is composited on white, grayscale and palette
    images are expanded, the EXIF orientation tag is applied (an unreadable EXIF block
    is ignored, with a warning: the pixels are still good).
    Images over the ``max_image_megapixels`` limit are refused before decoding.
    """
    from PIL import Image, UnidentifiedImageError

    path = input_file(path, "image")
    max_px = int(limit("max_image_megapixels") * 1e6)
    Image.MAX_IMAGE_PIXELS = max_px
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if w * h > max_px:
                    raise over_limit("max_image_megapixels", f"{path} has {w * h / 1e6:.1f} megapixels ({w}x{h})")
                im = _exif_upright(im, path)
                if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
                    im = _to_8bit_gray(im)
                if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                    im = im.convert("RGBA")
                    bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
                    im = Image.alpha_composite(bg, im)
                rgb = np.asarray(im if im.mode == "RGB" else im.convert("RGB"))
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        # Pillow refuses at open, before our own check: its message holds the pixel count
        m = re.search(r"\((\d+) pixels\)", str(e))
        got = f"{int(m.group(1)) / 1e6:.1f} megapixels" if m else "more pixels than that"
        raise over_limit("max_image_megapixels", f"{path} has {got}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as e:
        raise InputError(f"cannot read image {path}: not a supported or intact image file ({type(e).__name__})") from None
    if rgb.ndim != 3 or rgb.shape[0] < MIN_IMAGE_SIDE or rgb.shape[1] < MIN_IMAGE_SIDE:
        raise InputError(f"image too small: {rgb.shape[1]}x{rgb.shape[0]} pixels (at least {MIN_IMAGE_SIDE} a side): "
                         f"{path}")
    return np.ascontiguousarray(rgb)


def _exif_upright(im, path: str):
    """``im`` turned as its EXIF orientation tag says. EXIF is metadata from any camera
    or editor, and Pillow's ``exif_transpose`` raises all sorts of errors on a corrupt
    block (struct.error, KeyError, TypeError, ...) since it also rewrites the block:
    then the orientation tag alone is applied when it can be read, else none."""
    from PIL import Image, ImageOps

    try:
        return ImageOps.exif_transpose(im)
    except Exception as e:  # noqa: BLE001 -- see the docstring
        kind = type(e).__name__ if type(e).__module__ == "builtins" else f"{type(e).__module__}.{type(e).__name__}"
        reason = f"{kind}: {str(e).splitlines()[0] if str(e) else ''}"
    try:
        orientation = int(im.getexif().get(EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 -- as above
        orientation = 1
    T = Image.Transpose
    method = {2: T.FLIP_LEFT_RIGHT, 3: T.ROTATE_180, 4: T.FLIP_TOP_BOTTOM, 5: T.TRANSPOSE, 6: T.ROTATE_270,
              7: T.TRANSVERSE, 8: T.ROTATE_90}.get(orientation)
    log.warning("%s: corrupt EXIF block (%s); %s", path, reason,
                f"orientation {orientation} applied" if method is not None else "orientation ignored")
    return im.transpose(method) if method is not None else im


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
        if longer < MIN_OUTPUT_SIDE:  # the user gave no --size: blame the image, not it
            raise InputError(f"image too small: {width}x{height} pixels (at least {MIN_OUTPUT_SIDE} on its longer "
                             "side)")
        size = min(longer, DEFAULT_SIZE_CAP)
    if not MIN_OUTPUT_SIDE <= size <= MAX_OUTPUT_SIDE:
        raise InputError(f"--size must be between {MIN_OUTPUT_SIDE} and {MAX_OUTPUT_SIDE} pixels, got {size}")
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
