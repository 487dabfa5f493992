"""Shared fixtures. Real inputs from ../shared/eval/assets are used when present and the
tests that need them skip cleanly when it is absent; the package-shipped astronaut
portrait (skimage, public domain) is always available."""
from __future__ import annotations

import os
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
    """Write float samples ((n,) or (n, channels)) as 16-bit PCM WAV (phototalk's one writer)."""
    from phototalk.audio.io import write_wav as write

    y = np.asarray(samples, np.float32).reshape(len(samples), -1)
    write(path, y[:, 0] if y.shape[1] == 1 else y, sr)
    return Path(path)


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


def _source(obj) -> str:
    import inspect

    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        return ""


_asset_helpers: dict[str, set[str]] = {}


def _needs_assets(func) -> bool:
    """Whether ``func``'s source asks for an evaluation asset: it calls ``asset(...)`` or a
    function of its module that does (such as a ``_portrait(name)`` helper)."""
    import inspect
    import sys

    mod = sys.modules.get(getattr(func, "__module__", ""), None)
    if mod is not None and mod.__name__ not in _asset_helpers:
        _asset_helpers[mod.__name__] = {name for name, f in vars(mod).items()
                                        if inspect.isfunction(f) and f.__module__ == mod.__name__
                                        and name != "asset" and "asset(" in _source(f)}
    names = ["asset"] + sorted(_asset_helpers.get(getattr(mod, "__name__", ""), ()))
    src = _source(func)
    return any(f"{n}(" in src for n in names)


def pytest_collection_modifyitems(config, items):
    """Mark every test that needs ../shared (it, or a fixture it uses, calls ``asset``
    directly or through a helper of its module) with ``shared``, so ``-m "not shared"``
    selects the self-contained ones."""
    for item in items:
        func = getattr(item, "function", None)
        needs = func is not None and _needs_assets(func)
        info = getattr(item, "_fixtureinfo", None)
        if not needs and info is not None:
            for name in info.names_closure:
                defs = info.name2fixturedefs.get(name) or ()
                if any(_needs_assets(d.func) for d in defs):
                    needs = True
                    break
        if needs:
            item.add_marker(pytest.mark.shared)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """One line: how many tests need ../shared and how many of them were skipped."""
    shared = skipped = 0
    for key in ("passed", "failed", "skipped", "error"):
        for rep in terminalreporter.stats.get(key, []):
            if rep.when not in ("call", "setup") or "shared" not in rep.keywords:
                continue
            if rep.when == "setup" and not rep.skipped:
                continue
            shared += 1
            skipped += rep.skipped
    terminalreporter.write_line(f"shared: {shared} tests need ../shared/eval/assets; {skipped} skipped"
                                + ("" if ASSETS.exists() else " (absent)"))
