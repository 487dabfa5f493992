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
