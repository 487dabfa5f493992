"""`phototalk edit` / `dub` on real pixels: a clip rendered from the astronaut portrait by
phototalk itself (always available) and a real talking video (skipped without
../shared/eval/assets). Outcomes are measured with MediaPipe on the decoded output."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, asset, write_wav

import pixels

FPS = 25.0
N_SYN = 40  # frames of the synthetic clip (1.6 s)
BLINK_FRAMES = [33, 34, 35, 36]  # a blink in the synthetic clip, after the ranges the edit test shuts


def _write_clip(path: Path, frames, fps: float, *, audio=None, rotation_deg: int = 0) -> Path:
    from phototalk.video.encode import VideoWriter

    h, w = frames[0].shape[:2]
    with VideoWriter(path, w, h, fps, audio=audio, lossless=True, rotation_deg=rotation_deg) as wr:
        for f in frames:
            wr.write(f)
    return path


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """A 1.6 s, 512 px lossless clip of the astronaut talking (mouth opening and closing
    twice, head still, one blink at the end), with a tone-burst soundtrack: (path, frames)."""
    from skimage import data

    from phototalk.pipeline import prepare_rig
    from phototalk.render.warp import MeshWarpRenderer

    rig = prepare_rig(data.astronaut(), size=512)
    r = MeshWarpRenderer(rig)
    t = np.arange(N_SYN) / FPS
    opening = 0.13 * (1 - np.cos(2 * np.pi * t / 0.8))  # 0 .. 0.26 iod, period 0.8 s
    blink = np.interp(np.arange(N_SYN), BLINK_FRAMES + [BLINK_FRAMES[-1] + 1], [0.5, 1.0, 1.0, 0.5, 0.0])
    blink[:BLINK_FRAMES[0]] = 0.0
    frames = [r.render(mouth_open=float(o), blink=float(b)) for o, b in zip(opening, blink)]
    d = tmp_path_factory.mktemp("clip")
    ts = np.arange(int(16000 * N_SYN / FPS)) / 16000
    wav = write_wav(d / "tone.wav", 0.3 * np.sin(2 * np.pi * 200 * ts) * (np.sin(2 * np.pi * 2.5 * ts) > 0), 16000)
    return _write_clip(d / "talk.mp4", frames, FPS, audio=str(wav)), frames


def _face_mask_outside(frames):
    from phototalk.render.video_rig import face_region_mask
    from phototalk.edit.tracking import track_faces

    track = track_faces(iter(frames), FPS)
    return [~face_region_mask(track.landmarks[i], f.shape[:2]) if track.found[i] else np.ones(f.shape[:2], bool)
            for i, f in enumerate(frames)]


def test_time_range_and_weights():
    from phototalk.edit.pipeline import TimeRange, pingpong, range_weights
    from phototalk.errors import InputError

    assert TimeRange.parse("1.5-3") == TimeRange(1.5, 3.0)
    for bad in ("3-1", "a-b", "1", "-1-2"):
        with pytest.raises(InputError):
            TimeRange.parse(bad)
    w = range_weights([TimeRange(1.0, 2.0)], 100, 25.0, ramp_s=0.12)
    t = np.arange(100) / 25.0
    assert np.all(w[(t >= 1.0) & (t <= 2.0)] == 1.0)
    assert np.all(w[(t < 1.0 - 0.12) | (t > 2.0 + 0.12)] == 0.0)
    assert 0 < w[24] < 1  # t = 0.96 s: easing in
    hard = range_weights([TimeRange(1.0, 2.0)], 100, 25.0, ramp_s=0.0)
    assert np.array_equal(hard > 0, (t >= 1.0) & (t <= 2.0)) and set(np.unique(hard)) == {0.0, 1.0}
    assert list(pingpong(np.arange(9), 4)) == [0, 1, 2, 3, 2, 1, 0, 1, 2]


def test_dub_jaw_lags_the_lips(astronaut_path):
    """Dubbing a quick /m/: the lips shut exactly as without a jaw, the chin stays lower."""
    from phototalk.face import landmarks as L
    from phototalk.pipeline import prepare_rig
    from phototalk.render.video_rig import VideoFaceRenderer

    rig = prepare_rig(astronaut_path)
    r = VideoFaceRenderer(rig.image, rig.landmarks)
    r.set_frame(rig.image, rig.landmarks)
    plain = r.frame_offsets(0.0)
    lagged = r.frame_offsets(0.0, jaw_open=0.15)
    lips = np.r_[L.UPPER_LIP.ravel(), L.LOWER_LIP.ravel()]
    assert np.allclose(plain[lips], lagged[lips])  # the lips meet all the same
    chin = 152
    assert (lagged[chin] - plain[chin]) @ r.ey > 0.05 * r.iod  # the chin hangs lower
    assert np.allclose(r.frame_offsets(0.0, jaw_open=0.0), plain)


def test_video_frame_tucks_lower_lip_for_f(synthetic):
    """A dubbed /f v/ (lip_tuck 1) on a real frame: the lower lip rises against the
    upper teeth, as the photo renderer does, where the same opening without the tuck
    leaves the lips well apart (re-detected landmarks of the rendered frames)."""
    from phototalk.edit.tracking import track_faces
    from phototalk.render.video_rig import VideoFaceRenderer

    _, frames = synthetic
    f = frames[0]  # mouth shut in the clip
    lm = track_faces(iter([f]), FPS).landmarks[0]
    r = VideoFaceRenderer(f, lm)
    open_, tucked = (r.render_video_frame(f, lm, mouth={"open": 0.25, "jaw": 0.25, "tuck": k}) for k in (0.0, 1.0))
    a_open, a_tuck = (pixels.aperture(x) for x in pixels.landmarks([open_, tucked]))
    assert a_open > 0.15, a_open
    assert a_tuck < 0.4 * a_open, (a_tuck, a_open)
    assert a_tuck > 0.02, a_tuck  # the upper teeth show above the tucked lip: not a closed mouth


def test_tracking_smooths_shape_not_placement():
    """A head that jumps 40 px between two frames (a fast move, or a video whose frames
    repeat and then jump) keeps its landmarks on the jump; the shape's jitter is still
    smoothed away."""
    from phototalk.edit.tracking import smooth_runs, smooth_shape

    rng = np.random.default_rng(0)
    n = 30
    shape = rng.uniform(-60, 60, (478, 2))
    shape[:, 1] *= 1.2
    pos = np.where(np.arange(n) < 15, 200.0, 240.0)[:, None] * np.array([1.0, 0.5])  # (n, 2) px
    ang = np.where(np.arange(n) < 15, 0.0, 0.15)  # rad: the head also rolls
    rot = np.stack([np.stack([np.cos(ang), np.sin(ang)], -1), np.stack([-np.sin(ang), np.cos(ang)], -1)], 1)
    true = np.einsum("pc,ncd->npd", shape, rot) + pos[:, None]
    raw = np.zeros((n, 478, 3), np.float32)
    raw[..., :2] = true + rng.normal(0, 0.5, true.shape)  # per-point jitter
    found = np.ones(n, bool)
    sm = smooth_shape(raw, found, 0.75)
    err = np.linalg.norm(sm[..., :2] - true, axis=-1).mean(1)  # (n,) px, mean over the points
    assert err.max() < 0.6, err  # on the jump too
    assert np.abs(sm[..., :2] - true).std() < 0.7 * np.abs(raw[..., :2] - true).std()  # jitter reduced
    lag = np.linalg.norm(smooth_runs(raw, found, 0.75)[..., :2] - true, axis=-1).mean(1)
    assert lag[14:16].min() > 10  # smoothing positions instead would put the face 10+ px off
    sm[3], found[3] = np.nan, False  # a frame without a face stays NaN and splits the runs
    raw[3] = np.nan
    out = smooth_shape(raw, found, 0.75)
    assert np.isnan(out[3]).all() and np.isfinite(out[found]).all()


def test_close_mouth_and_eyes_synthetic(synthetic, tmp_path):
    from phototalk.edit import edit_video

    src, frames = synthetic
    out = tmp_path / "edit.mp4"
    res = edit_video(src, out, close_mouth=["0.3-1.1"], close_eyes=["0.3-1.1"], lossless=True)
    assert res.n_frames == N_SYN and res.frames_with_face == N_SYN
    got, fps = pixels.decode(out)
    assert len(got) == N_SYN and fps == FPS and got[0].shape == frames[0].shape
    s = pixels.streams(out)
    assert abs(s["audio"] - N_SYN / FPS) < 0.1  # the soundtrack is kept
    lm_in, lm_out = pixels.landmarks(frames), pixels.landmarks(got)
    t = np.arange(N_SYN) / FPS
    inside = (t >= 0.3) & (t <= 1.1)
    ap_in = np.array([pixels.aperture(lm) for lm in lm_in])
    ap_out = np.array([pixels.aperture(lm) for lm in lm_out])
    assert np.nanmax(ap_in[inside]) > 0.2  # the source really opens its mouth there
    assert np.all(ap_out[inside] < 0.04), ap_out[inside]
    far = (t < 0.3 - 0.16) | (t > 1.1 + 0.16)
    assert all(np.array_equal(frames[i], got[i]) for i in np.flatnonzero(far))  # untouched outside the range
    eye_in = np.array([pixels.eye_open(lm) for lm in lm_in])
    eye_out = np.array([pixels.eye_open(lm) for lm in lm_out])
    assert np.all(eye_out[inside] < 0.3 * np.nanmedian(eye_in)), eye_out[inside] / np.nanmedian(eye_in)
    # Outside the face region every pixel is the decoded input's, bit for bit.
    for f0, f1, keep in zip(frames, got, _face_mask_outside(frames)):
        assert np.array_equal(f0[keep], f1[keep])
    # ... and inside it the edit did change pixels.
    assert any(not np.array_equal(f0, f1) for f0, f1 in zip(frames, got))


def test_no_blink_synthetic(synthetic, tmp_path):
    """The blink is replaced by the open eyes of the frame before it; other frames are
    left as they were."""
    from phototalk.edit import edit_video

    src, frames = synthetic
    out = tmp_path / "noblink.mp4"
    edit_video(src, out, no_blink=["0-1.6"], lossless=True)
    got, _ = pixels.decode(out)
    eye_in = np.array([pixels.eye_open(lm) for lm in pixels.landmarks(frames)])
    eye_out = np.array([pixels.eye_open(lm) for lm in pixels.landmarks(got)])
    med = np.nanmedian(eye_in)
    assert np.nanmin(eye_in[BLINK_FRAMES]) < 0.5 * med  # the source really blinks (measure.py: < half)
    assert np.all(eye_out[BLINK_FRAMES] > 0.75 * med), eye_out[BLINK_FRAMES] / med
    assert all(np.array_equal(frames[i], got[i]) for i in range(BLINK_FRAMES[0] - 2))


def test_dub_text_extends_by_pingpong(synthetic, tmp_path):
    """TTS speech longer than the clip: as many frames as the audio needs, frames played
    back and forth (mirror-symmetric around the turn outside the face), mouth moving with
    the speech and shut on /m/ and /b/."""
    from phototalk.edit import dub_video

    src, frames = synthetic
    out = tmp_path / "dub.mp4"
    res = dub_video(src, out, text="Mama made a big warm bun, and Bob bought a map of the moon.", lossless=True)
    got, _ = pixels.decode(out)
    s = pixels.streams(out)
    assert len(got) == res.n_frames
    assert abs(len(got) - s["audio"] * FPS) <= 1.5  # audio length +- 1 frame (AAC padding)
    assert len(got) > N_SYN + 5  # the speech is longer than the clip: extended
    k = N_SYN - 1  # the turn: output k + j shows source frame k - j
    keep = _face_mask_outside(frames)
    for j in (1, 3):
        assert np.array_equal(got[k + j][keep[k - j]], frames[k - j][keep[k - j]])
    ap = np.array([pixels.aperture(lm) for lm in pixels.landmarks(got)])
    assert np.nanmax(ap) > 0.12 and np.nanmin(ap) < 0.04  # opens for vowels, shuts for bilabials


def test_dub_audio_cut_and_rotation(synthetic, tmp_path):
    """Shorter audio cuts the video; a rotated input keeps its rotation and storage size."""
    import av

    from phototalk.edit import dub_video

    _, frames = synthetic
    d = tmp_path
    stored = [np.ascontiguousarray(np.rot90(f, -1)) for f in frames]  # stored turned, displayed upright
    rot = _write_clip(d / "rot.mp4", stored, FPS, rotation_deg=90)
    from phototalk.edit.source import probe

    assert probe(rot).upright(stored[0]).shape == frames[0].shape
    ts = np.arange(int(16000 * 0.8)) / 16000
    wav = write_wav(d / "short.wav", 0.3 * np.sin(2 * np.pi * 180 * ts) * (np.sin(2 * np.pi * 3 * ts) > 0), 16000)
    out = d / "dub_rot.mp4"
    res = dub_video(rot, out, audio=wav)
    assert res.n_frames == 20
    with av.open(str(out)) as c:
        decoded = [f for f in c.decode(video=0)]
    assert len(decoded) == 20
    assert decoded[0].rotation == 90 and (decoded[0].height, decoded[0].width) == stored[0].shape[:2]


def _cli(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    return subprocess.run([sys.executable, "-m", "phototalk.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


def _assert_user_error(res, out: Path, needle: str):
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("phototalk: error: "), res.stderr
    assert needle in lines[0].lower(), lines[0]
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith("." + out.name)], "temp file left behind"


def test_cli_bad_videos(tmp_path):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    wav = write_wav(tmp_path / "speech.wav", 0.1 * np.sin(np.arange(16000) / 5.0), 16000)
    blank = _write_clip(tmp_path / "blank.mp4", [np.full((96, 128, 3), 90 + i, np.uint8) for i in range(10)], FPS)
    out = tmp_path / "o.mp4"
    _assert_user_error(_cli("edit", corrupt, "-o", out, "--close-mouth", "0-1"), out, "cannot decode video")
    _assert_user_error(_cli("edit", wav, "-o", out, "--close-eyes", "0-1"), out, "no video stream")
    _assert_user_error(_cli("dub", blank, "-o", out, "--audio", wav), out, "no face")
    _assert_user_error(_cli("edit", blank, "-o", out), out, "nothing to edit")
    _assert_user_error(_cli("edit", blank, "-o", out, "--close-mouth", "2-1"), out, "ends before it starts")


def test_close_mouth_real_video(tmp_path):
    """A real speaker: lips shut over the range, the rest of the clip as it was."""
    from phototalk.edit import edit_video

    src = asset("video", "man_glasses_speech.mp4")
    out = tmp_path / "closed.mp4"
    edit_video(src, out, close_mouth=["1-3"], crf=12)
    a0 = np.array([pixels.aperture(lm) for lm in pixels.landmarks(pixels.decode(src)[0])])
    a1 = np.array([pixels.aperture(lm) for lm in pixels.landmarks(pixels.decode(out)[0])])
    t = np.arange(len(a1)) / FPS
    inside = (t >= 1) & (t <= 3)
    assert np.nanmax(a0[inside]) > 0.1  # he talks there
    assert np.mean(a1[inside] < 0.04) >= 0.95, a1[inside]
    far = (t < 1 - 0.2) | (t > 3 + 0.2)
    assert np.corrcoef(a0[far], a1[far])[0, 1] > 0.95


def test_close_mouth_and_eyes_real_video_moving_head(tmp_path):
    """issue 6's acceptance ranges on a speaker with glasses whose head jumps up to 70 px
    a frame (the clip repeats frames, then jumps): lips shut over 2-5 s, eyes over
    5.5-7 s; outside the mouth range, the lips' easing frames included, the aperture
    follows the original's."""
    from phototalk.edit import edit_video

    src = asset("video", "man_glasses_speech.mp4")
    out = tmp_path / "closed.mp4"
    edit_video(src, out, close_mouth=["2-5"], close_eyes=["5.5-7"], crf=12)
    lm0, lm1 = pixels.landmarks(pixels.decode(src)[0]), pixels.landmarks(pixels.decode(out)[0])
    a0, a1 = (np.array([pixels.aperture(lm) for lm in lms]) for lms in (lm0, lm1))
    e0, e1 = (np.array([pixels.eye_open(lm) for lm in lms]) for lms in (lm0, lm1))
    t = np.arange(len(a1)) / FPS
    mouth, eyes = (t >= 2) & (t <= 5), (t >= 5.5) & (t <= 7)
    assert np.mean(a1[mouth] < 0.04) >= 0.95, a1[mouth]
    ok = ~mouth & np.isfinite(a0) & np.isfinite(a1)
    assert np.corrcoef(a0[ok], a1[ok])[0, 1] >= 0.95
    ratio = e1[eyes] / np.nanmedian(e0)
    assert np.mean(np.nan_to_num(ratio, nan=1.0) < 0.3) >= 0.95, ratio
