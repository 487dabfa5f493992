"""Shared fixtures. Real inputs from ../shared/eval/assets are used when present and the
tests that need them skip cleanly when it is absent; the package-shipped astronaut
portrait (skimage, public domain) is always available."""
from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT.parent / "shared" / "eval" / "assets"


def asset(*parts: str) -> Path:
    p = ASSETS.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"evaluation asset not available: {p}")
    return p


def write_wav(path: Path, samples: np.ndarray, sr: int, channels: int = 1) -> Path:
    """Write float samples ((n,) or (n, channels)) as 16-bit PCM WAV."""
    y = np.asarray(samples, np.float32).reshape(len(samples), -1)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(y.shape[1])
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes((np.clip(y, -1, 1) * 32767).astype("<i2").tobytes())
    return path


@pytest.fixture(scope="session")
def astronaut_path(tmp_path_factory) -> Path:
    from PIL import Image
    from skimage import data

    p = tmp_path_factory.mktemp("img") / "astronaut.png"
    Image.fromarray(data.astronaut()).save(p)
    return p


@pytest.fixture(scope="session")
def real_speech() -> Path:
    return asset("audio", "en_radio_holidays.wav")


@pytest.fixture(scope="session")
def speech_with_gap(tmp_path_factory, real_speech) -> tuple[Path, float, float]:
    """4 s of real speech, 2 s of digital silence, 2 s of speech: (path, gap_start_s, gap_end_s)."""
    from phototalk.audio.io import load_speech

    y = load_speech(real_speech).samples
    sr = 16000
    out = np.concatenate([y[:4 * sr], np.zeros(2 * sr, np.float32), y[4 * sr:6 * sr]])
    p = tmp_path_factory.mktemp("aud") / "speech_gap.wav"
    return write_wav(p, out, sr), 4.0, 6.0


def write_float_wav(path: Path, samples: np.ndarray, sr: int) -> Path:
    """Write (n,) samples as a mono 32-bit IEEE-float WAV, as they are (NaN and inf
    included: such files exist, and the wave module cannot write them)."""
    import struct

    data = np.asarray(samples, "<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, sr, sr * 4, 4, 32)  # WAVE_FORMAT_IEEE_FLOAT, mono
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE")
        f.write(b"fmt " + struct.pack("<I", len(fmt)) + fmt)
        f.write(b"data" + struct.pack("<I", len(data)) + data)
    return path


def write_corrupt_exif_jpeg(path: Path, rgb: np.ndarray) -> Path:
    """A JPEG whose EXIF block is corrupt the way Pillow trips over: an orientation tag
    (rotate 90) next to a tag (PageNumber, two SHORTs) that holds ASCII text, so
    re-serialising the EXIF raises struct.error inside ImageOps.exif_transpose."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees to view
    exif[0x010F] = "Canon"  # Make, ASCII
    Image.fromarray(rgb).save(path, "JPEG", exif=exif.tobytes(), quality=90)
    raw = path.read_bytes()
    tag = b"\x01\x0f\x00\x02"  # big-endian: tag 0x010F, type ASCII
    assert raw.count(tag) == 1
    path.write_bytes(raw.replace(tag, b"\x01\x29\x00\x02"))  # now tag 0x0129 (PageNumber) with ASCII
    return path


def write_png_header(path: Path, width: int, height: int) -> Path:
    """A PNG that claims ``width`` x ``height`` RGB pixels but holds only a few bytes of
    data: a stand-in for a huge image (a decompression bomb) without making one."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path
