"""End to end: a real portrait and real speech in, an MP4 out, judged on its pixels."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import phototalk
from conftest import asset, write_wav

import pixels

FPS = 25


def envelope(path, n):
    from phototalk.audio.io import load_speech

    y = load_speech(path).samples
    hop = 16000 / FPS
    return np.array([np.sqrt(np.mean(y[int(i * hop):int((i + 1) * hop)] ** 2) + 1e-12) for i in range(n)])


def procrustes_error(a, b, idx):
    """Mean landmark distance (in inter-ocular units) after the best similarity fit."""
    A, B = a[idx] - a[idx].mean(0), b[idx] - b[idx].mean(0)
    U, S, Vt = np.linalg.svd(A.T @ B)
    R = U @ Vt
    s = S.sum() / (A ** 2).sum()
    return float(np.linalg.norm(s * A @ R - B, axis=1).mean() / np.linalg.norm(b[33] - b[263]))


# Points that speech and blinks do not move: brows, nose, face outline above the jaw.
RIGID = np.array([70, 63, 105, 66, 107, 336, 296, 334, 293, 300, 1, 4, 5, 6, 168, 197, 195, 98, 327,
                  10, 338, 297, 109, 67, 234, 454, 127, 356])


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, speech_with_gap):
    img = asset("images", "photo_woman_frontal.png")
    audio, gap0, gap1 = speech_with_gap
    out = tmp_path_factory.mktemp("e2e") / "talk.mp4"
    track = out.with_suffix(".json")
    res = phototalk.generate(img, audio, out, size=512, save_track=str(track))
    frames, fps = pixels.decode(out)
    return dict(img=img, audio=audio, gap=(gap0, gap1), out=out, res=res, frames=frames, fps=fps,
                lms=pixels.landmarks(frames), track=track)


def test_video_matches_the_audio(rendered):
    res, frames = rendered["res"], rendered["frames"]
    assert rendered["fps"] == FPS
    assert abs(len(frames) - res.duration_s * FPS) <= 1
    st = pixels.streams(rendered["out"])
    assert set(st) == {"video", "audio"}
    assert abs(st["audio"] - res.duration_s) < 0.05
    assert frames[0].shape == (512, 512, 3)


def test_face_is_redetected_in_every_frame(rendered):
    assert np.mean([lm is not None for lm in rendered["lms"]]) >= 0.99


def test_mouth_opens_in_speech_and_closes_in_silence(rendered):
    ap = np.array([pixels.aperture(lm) for lm in rendered["lms"]])
    env = envelope(rendered["audio"], len(ap))
    speech = env > 0.25 * np.percentile(env, 90)
    assert np.nanmean(ap[speech] > 0.08) >= 0.5
    t = np.arange(len(ap)) / FPS
    g0, g1 = rendered["gap"]
    silent = (t >= g0 + 0.1) & (t < g1 - 0.1)
    assert np.mean(np.nan_to_num(ap[silent], nan=1.0) < 0.04) >= 0.9
    # and the aperture follows the speech rhythm, not a constant gape
    assert np.corrcoef(np.nan_to_num(ap), env)[0, 1] > 0.3


def test_identity_is_kept(rendered):
    ref = pixels.landmarks([np.asarray(Image.open(rendered["img"]).convert("RGB").resize((512, 512)))])[0]
    errs = [procrustes_error(lm, ref, RIGID) for lm in rendered["lms"] if lm is not None]
    assert np.median(errs) < 0.03 and np.max(errs) < 0.08


def test_blinks_are_seen(rendered):
    eye = np.array([pixels.eye_open(lm) for lm in rendered["lms"]])
    low = np.nan_to_num(eye, nan=np.nanmedian(eye)) < 0.6 * np.nanmedian(eye)
    blinks = np.count_nonzero(low[1:] & ~low[:-1])
    minutes = len(eye) / FPS / 60
    assert 6 <= blinks / minutes <= 30


def test_background_and_border_stay_still(rendered):
    f = np.stack(rendered["frames"][::5]).astype(np.int16)
    h, w = f.shape[1:3]
    b = int(0.06 * min(h, w))
    border = np.zeros((h, w), bool)
    border[:b] = border[-b:] = True
    border[:, :b] = border[:, -b:] = True
    assert np.abs(np.diff(f, axis=0))[:, border].mean() < 0.5


def test_track_is_saved(rendered):
    d = json.loads(rendered["track"].read_text())
    assert d["n_frames"] == len(rendered["frames"]) and d["fps"] == FPS
    assert max(d["channels"]["mouth_open"]) > 0.1


def test_same_seed_same_video(tmp_path, astronaut_path):
    t = np.arange(16000) / 16000
    a = write_wav(tmp_path / "a.wav", 0.3 * np.sin(2 * np.pi * 200 * t) * (np.sin(2 * np.pi * 4 * t) > 0), 16000)
    outs = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        phototalk.generate(astronaut_path, a, tmp_path / f"{name}.mp4", seed=seed, size=256)
        outs.append(np.stack(pixels.decode(tmp_path / f"{name}.mp4")[0]))
    assert np.array_equal(outs[0], outs[1])
    assert not np.array_equal(outs[0], outs[2])


def test_silent_audio_gives_a_closed_mouth(tmp_path, astronaut_path):
    a = write_wav(tmp_path / "silence.wav", np.zeros(16000 * 2), 16000)
    out = tmp_path / "s.mp4"
    phototalk.generate(astronaut_path, a, out, size=384)
    frames, _ = pixels.decode(out)
    assert len(frames) == 50
    ap = [pixels.aperture(lm) for lm in pixels.landmarks(frames)]
    assert np.mean(np.nan_to_num(ap, nan=1.0) < 0.04) >= 0.9


@pytest.mark.parametrize("fmt,codec", [("mp3", "mp3"), ("ogg", "libopus"), ("m4a", "aac"), ("flac", "flac")])
def test_audio_formats(tmp_path, astronaut_path, fmt, codec):
    import av

    sr = 48000
    t = np.arange(int(1.5 * sr)) / sr
    y = (0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.float32)
    src = tmp_path / f"speech.{fmt}"
    with av.open(str(src), "w") as c:
        s = c.add_stream(codec, rate=sr, layout="stereo")
        frame = av.AudioFrame.from_ndarray(np.stack([y, y]), format="fltp", layout="stereo")
        frame.sample_rate = sr
        for p in s.encode(frame):
            c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    out = tmp_path / "o.mp4"
    res = phototalk.generate(astronaut_path, src, out, size=256)
    assert abs(res.duration_s - 1.5) < 0.08
    st = pixels.streams(out)
    assert abs(st["audio"] - res.duration_s) < 0.08 and abs(st["video"] - res.n_frames / FPS) < 0.05


@pytest.mark.parametrize("kind", ["rgba", "gray", "gray16", "webp", "bmp", "exif"])
def test_image_formats(tmp_path, astronaut_path, kind):
    from phototalk.pipeline import prepare_rig

    im = Image.open(astronaut_path).convert("RGB")
    p = tmp_path / f"face.{ {'webp': 'webp', 'bmp': 'bmp', 'exif': 'jpg'}.get(kind, 'png') }"
    if kind == "rgba":
        im.convert("RGBA").save(p)
    elif kind == "gray":
        im.convert("L").save(p)
    elif kind == "gray16":  # 16-bit: Pillow's own RGB conversion would clip it to white
        Image.fromarray(np.asarray(im.convert("L")).astype(np.uint16) * 257).save(p)
    elif kind == "exif":
        # Stored rotated by 90°, with the EXIF tag that tells viewers to turn it back upright.
        exif = Image.Exif()
        exif[0x0112] = 6  # "rotate 90 CW to display"
        im.transpose(Image.Transpose.ROTATE_90).save(p, exif=exif.tobytes())
    else:
        im.save(p)
    rig = prepare_rig(p)
    assert rig.image.shape == (512, 512, 3)
    lm = rig.landmarks
    assert lm[10, 1] < lm[1, 1] < lm[152, 1]  # forehead above nose above chin: upright
