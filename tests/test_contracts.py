"""Contract tests every motion model and every renderer must pass (the stage seams of
phototalk.motion.base and phototalk.render.base). A new backend registers itself and is
picked up here by name. Speech is espeak's; the portrait is skimage's astronaut."""
from __future__ import annotations

import numpy as np
import pytest

from phototalk.audio.features import n_frames
from phototalk.audio.io import Speech
from phototalk.motion.base import MotionModel, get_motion_model, model_names
from phototalk.motion.track import CHANNELS, MotionTrack
from phototalk.render.base import get_renderer, renderer_names

import pixels

FPS = 25.0


@pytest.fixture(scope="module")
def spoken():
    """(Speech, ARPAbet phones) of a short espeak sentence."""
    from phototalk.audio.tts import arpabet_phones, synthesize

    syn = synthesize("Mama made a map for Bob.")
    return Speech(syn.samples, syn.sr), arpabet_phones(syn.phones)


@pytest.mark.parametrize("name", model_names())
def test_motion_model_contract(name, spoken):
    model = get_motion_model(name)
    assert isinstance(model, MotionModel)
    speech, phones = spoken
    a = model(speech, FPS, seed=5, phones=phones)
    b = model(speech, FPS, seed=5, phones=phones)
    c = model(speech, FPS, seed=6, phones=phones)
    assert a.n_frames == n_frames(speech.duration_s, FPS)
    for ch in CHANNELS:  # same seed, same track, bit for bit
        assert np.array_equal(getattr(a, ch), getattr(b, ch)), ch
    assert any(not np.array_equal(getattr(a, ch), getattr(c, ch)) for ch in ("head_yaw", "blink", "gaze_yaw"))
    assert 0 <= a.blink.min() and a.blink.max() <= 1
    assert a.mouth_open.max() > 0.1  # speech opens the mouth
    # silence keeps it shut, with phones (all pause) and without (loudness)
    quiet = Speech(np.zeros(2 * speech.sr, np.float32), speech.sr)
    for ph in ([("SIL", 0.0, 2.0)], None):
        s = model(quiet, FPS, seed=0, phones=ph)
        assert s.n_frames == 50 and s.mouth_open.max() < 0.02 and s.jaw_open.max() < 0.02


def _track(n: int = 1, **channels) -> MotionTrack:
    z = np.zeros(n, np.float32)
    base = {ch: z.copy() for ch in ("mouth_open", "mouth_wide", "blink", "head_yaw", "head_pitch", "head_roll")}
    base.update({k: np.full(n, v, np.float32) for k, v in channels.items()})
    return MotionTrack(fps=FPS, **base)


@pytest.fixture(scope="module")
def rig(astronaut_path):
    from phototalk.pipeline import prepare_rig

    return prepare_rig(astronaut_path, size=256)


@pytest.mark.parametrize("name", renderer_names())
def test_renderer_contract(name, rig):
    r = get_renderer(name)(rig)
    rest = r.render_frame(_track(), 0)
    assert rest.shape == rig.image.shape and rest.dtype == np.uint8
    lm_rest = pixels.landmarks([rest])[0]
    assert lm_rest is not None and pixels.aperture(lm_rest) < 0.04  # rest: lips shut, face intact
    assert isinstance(r.last_stats, dict)
    target = 0.2
    opened = pixels.landmarks([r.render_frame(_track(mouth_open=target, jaw_open=target), 0)])[0]
    assert 0.6 * target < pixels.aperture(opened) < 1.4 * target + 0.02  # opens as much as asked
    shut = pixels.landmarks([r.render_frame(_track(blink=1.0), 0)])[0]
    assert pixels.eye_open(shut) < 0.5 * pixels.eye_open(lm_rest)  # a full blink shuts the eyes
    turned = r.render_frame(_track(head_yaw=0.12, head_pitch=0.05, mouth_open=0.1), 0)
    outside = ~r.movable
    assert outside.mean() > 0.1
    assert np.array_equal(turned[outside], rig.image[outside])  # the background, bit for bit
    assert np.array_equal(rest[outside], rig.image[outside])
    assert not np.array_equal(turned, rest)


def test_models_are_chosen_by_name_or_file(tmp_path):
    from phototalk.errors import InputError
    from phototalk.motion import base

    assert get_motion_model(None) is get_motion_model("analytic")
    with pytest.raises(InputError, match="--motion-model must be analytic"):
        get_motion_model("nonsense")
    with pytest.raises(InputError, match="no loader for .xyz files"):
        get_motion_model(tmp_path / "m.xyz")
    f = tmp_path / "m.xyz"
    f.write_bytes(b"weights")
    seen = []
    base.register_loader(".xyz", lambda p: seen.append(p) or get_motion_model("analytic"))
    try:
        assert get_motion_model(f) is get_motion_model("analytic") and seen == [str(f)]
        with pytest.raises(InputError, match="not found|does not exist"):
            get_motion_model(tmp_path / "missing.xyz")
    finally:
        base._LOADERS.pop(".xyz")
    with pytest.raises(InputError, match="renderer must be"):
        get_renderer("nope")
