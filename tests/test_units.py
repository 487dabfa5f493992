"""Fast unit tests on synthetic data: features, motion, track, sizes, atomic output."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from phototalk.audio.features import high_band_ratio, loudness_db, n_frames
from phototalk.audio.io import Speech
from phototalk.errors import InputError, OutputError
from phototalk.face.image import output_size
from phototalk.motion.analytic import analytic_motion, blink_curve
from phototalk.motion.track import MotionTrack, apply_overrides, jaw_from_mouth
from phototalk.core.atomic import atomic_path

SR = 16000


def tone(seconds, freq=220.0, amp=0.3):
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_n_frames_rounds_to_duration():
    assert n_frames(8.0, 25) == 200
    assert n_frames(3.38, 25) == 84  # 84.5 frames -> nearest, within one frame of the audio
    assert n_frames(0.001, 25) == 1


def test_loudness_tracks_level_per_frame():
    y = np.concatenate([tone(1.0), np.zeros(SR, np.float32), tone(1.0, amp=0.03)])
    db = loudness_db(y, SR, 25, 75)
    assert db[5:20].mean() == pytest.approx(20 * np.log10(0.3 / np.sqrt(2)), abs=0.5)
    assert db[30:45].max() < -90  # digital silence
    assert db[55:70].mean() == pytest.approx(db[5:20].mean() - 20, abs=0.5)


def test_high_band_ratio_separates_hiss_from_voice():
    rng = np.random.default_rng(0)
    hiss = rng.standard_normal(SR).astype(np.float32) * 0.1
    hb = high_band_ratio(np.concatenate([tone(1.0), hiss]), SR, 25, 50)
    assert hb[5:20].max() < 0.05 and hb[30:45].min() > 0.5


def test_silence_gives_closed_mouth_and_speech_opens_it():
    y = np.concatenate([np.zeros(SR, np.float32), tone(1.0) * (np.arange(SR) % 4000 < 2500), np.zeros(SR, np.float32)])
    tr = analytic_motion(Speech(y), 25, seed=0)
    assert tr.n_frames == 75
    assert np.all(tr.mouth_open[:23] == 0) and np.all(tr.mouth_open[-23:] == 0)
    assert tr.mouth_open[25:50].max() > 0.2
    assert np.all(analytic_motion(Speech(np.zeros(2 * SR, np.float32)), 25).mouth_open == 0)


def test_motion_is_seeded():
    y = tone(6.0)
    a, b, c = (analytic_motion(Speech(y), 25, seed=s) for s in (1, 1, 2))
    assert a.to_dict() == b.to_dict()
    assert not np.allclose(a.head_yaw, c.head_yaw)


def test_consecutive_seeds_move_the_head_differently():
    # Two free draws of a smooth sway over 8 s correlate above 0.5 about one time in
    # six; stepping through seeds must give a different take each time.
    k = np.arange(8 * SR)
    y = tone(8.0) * ((k % 5000) < 3200) * (((k // SR) % 3) != 2)  # syllables, a pause every third second
    tracks = [analytic_motion(Speech(y.astype(np.float32)), 25, seed=s) for s in range(21)]
    corr = np.array([[np.corrcoef(getattr(a, ax), getattr(b, ax))[0, 1] for a, b in zip(tracks, tracks[1:])]
                     for ax in ("head_yaw", "head_pitch", "head_roll")])
    assert (corr > 0.5).sum() <= 2, np.round(corr, 2)  # free draws: 6 of these 60
    assert np.abs(corr).mean() < 0.25


@pytest.mark.parametrize("seed", range(5))
def test_blink_rate_is_natural(seed):
    b = blink_curve(25 * 60, 25, np.random.default_rng(seed))
    closed = b > 0.5
    starts = np.count_nonzero(closed[1:] & ~closed[:-1])
    assert 12 <= starts <= 24  # per minute; real people blink 7-22 times
    run = max(len(r) for r in np.split(closed, np.nonzero(np.diff(closed.astype(int)))[0] + 1) if r.all() and len(r))
    assert run >= 2  # long enough to be seen at 25 fps


def test_track_json_roundtrip_and_validation(tmp_path):
    tr = analytic_motion(Speech(tone(2.0)), 30, seed=3)
    p = tmp_path / "t.json"
    tr.save_json(p)
    d = json.loads(p.read_text())
    assert d["units"]["head_yaw"] == "rad" and d["n_frames"] == 60
    back = MotionTrack.load_json(p)
    assert np.allclose(back.mouth_open, tr.mouth_open, atol=1e-5)
    d["channels"]["blink"] = d["channels"]["blink"][:-1]
    p.write_text(json.dumps(d))
    with pytest.raises(InputError, match="blink has 59 frames"):
        MotionTrack.load_json(p)


def test_the_jaw_lags_the_lips_through_a_quick_closure():
    fps = 25.0
    mouth = np.zeros(50, np.float32)
    mouth[10:16] = mouth[18:24] = 0.2  # two vowels around a two-frame /m/
    jaw = jaw_from_mouth(mouth, fps)
    assert jaw[16:18].min() > 0.08  # stays well open while the lips meet
    assert jaw[30:].max() < 1e-3 and jaw.min() >= 0  # closed again in the silence after
    assert jaw[12:14].mean() > 0.15  # and nearly as open as the lips mid-vowel
    # jaw Δ² (what moves the chin and the skin below the mouth) is far below the lips'
    assert np.abs(np.diff(jaw, 2)).sum() < 0.5 * np.abs(np.diff(mouth, 2)).sum()


def test_a_track_without_a_jaw_and_mouth_overrides_carry_the_jaw(tmp_path):
    tr = analytic_motion(Speech(tone(2.0)), 25, seed=3)
    assert tr.mouth_open.max() > 0.05 and np.allclose(tr.jaw_open, jaw_from_mouth(tr.mouth_open, 25))
    d = tr.to_dict()
    del d["channels"]["jaw_open"]  # a file from before the jaw channel: the jaw follows the lips
    assert np.array_equal(MotionTrack.from_dict(d).jaw_open, MotionTrack.from_dict(d).mouth_open)
    shut = apply_overrides(tr, {"ranges": [{"mouth": "closed", "start_s": 0.5, "end_s": 1.5}]})
    t = np.arange(shut.n_frames) / 25
    assert shut.jaw_open[(t >= 0.7) & (t < 1.3)].max() < 1e-3  # the jaw shuts with the lips (after its lag)
    assert np.allclose(shut.jaw_open[t >= 1.8], tr.jaw_open[t >= 1.8], atol=1e-4)  # untouched after
    given = apply_overrides(tr, {"fps": 25, "channels": {"mouth_open": [0.0] * 50, "jaw_open": [0.1] * 50}})
    assert np.allclose(given.jaw_open, 0.1)  # a jaw the file sets is kept


@pytest.mark.parametrize("w,h,size,expect", [(3511, 3511, None, (1024, 1024)), (474, 474, None, (474, 474)),
                                             (720, 1280, 512, (288, 512)), (625, 417, None, (624, 416)),
                                             (1000, 3, 512, (512, 2))])
def test_output_size_even_and_capped(w, h, size, expect):
    assert output_size(w, h, size) == expect


def test_output_size_rejects_silly_sizes():
    with pytest.raises(InputError):
        output_size(100, 100, 10)


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            open(tmp, "w").write("half")
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []
    with atomic_path(target) as tmp:
        open(tmp, "w").write("whole")
    assert os.listdir(tmp_path) == ["out.mp4"] and target.read_text() == "whole"
    with pytest.raises(OutputError, match="does not exist"):
        with atomic_path(tmp_path / "missing" / "x.mp4"):
            pass
