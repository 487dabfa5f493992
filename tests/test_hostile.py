"""Hostile input and faults (issue 16): every case ends in one `phototalk: error:` line
(or a correct video) with a documented exit code, no traceback, no temp file, and every
file that was there before intact. Fast: most cases fail in validation, in this process;
the few that need a real job (signals, write failures) render tiny videos in a subprocess.
"""
from __future__ import annotations

import json
import os
import resource
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, write_corrupt_exif_jpeg, write_float_wav, write_png_header, write_wav
from test_cli import assert_user_error, run_here

import pixels


def spawn(*args, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    return subprocess.Popen([sys.executable, "-m", "phototalk.cli", *map(str, args)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kw)


def finish(p: subprocess.Popen, timeout: float = 120) -> tuple[int, str]:
    _, err = p.communicate(timeout=timeout)
    return p.returncode, err


def temp_files(d: Path) -> list[str]:
    return [q.name for q in d.iterdir() if ".part" in q.name]


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> Path:
    """3 s of espeak speech (mono 16-bit WAV)."""
    from phototalk.audio.tts import synthesize

    syn = synthesize("Hello there. I am a photograph, and I can talk.", voice="en-us")
    return write_wav(tmp_path_factory.mktemp("sp") / "speech.wav", syn.samples, syn.sr)


@pytest.fixture(scope="module")
def long_bursts(tmp_path_factory) -> Path:
    """20 s of syllable-like bursts: a job long enough to be stopped while it renders."""
    t = np.arange(16000 * 20) / 16000
    y = 0.3 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 3 * t) > 0)
    return write_wav(tmp_path_factory.mktemp("lb") / "bursts.wav", y, 16000)


@pytest.fixture
def previous(tmp_path) -> Path:
    """A pre-existing output that every failed job must leave as it was."""
    p = tmp_path / "previous.mp4"
    p.write_bytes(b"an earlier result")
    return p


# ---------------------------------------------------------------- files destroyed
@pytest.mark.parametrize("which", ["image", "audio"])
def test_output_that_is_an_input_is_refused(capsys, tmp_path, astronaut_path, speech, which):
    img, wav = tmp_path / "face.png", tmp_path / "speech.wav"
    img.write_bytes(astronaut_path.read_bytes())
    wav.write_bytes(speech.read_bytes())
    before = (img.read_bytes(), wav.read_bytes())
    target = img if which == "image" else wav
    for spelled in (target, tmp_path / "." / target.name):
        res = run_here(capsys, "generate", "-i", img, "-a", wav, "-o", spelled)
        assert res.returncode == 2 and "would be overwritten" in res.stderr, res.stderr
    hard = tmp_path / "hard.mp4"  # a hard link is the same file under another name
    os.link(target, hard)
    res = run_here(capsys, "generate", "-i", img, "-a", wav, "-o", hard)
    assert res.returncode == 2 and "would be overwritten" in res.stderr, res.stderr
    assert (img.read_bytes(), wav.read_bytes()) == before


@pytest.mark.parametrize("flag", ["--save-audio", "--save-track", "--export-arkit"])
def test_side_outputs_must_differ_from_the_video(capsys, tmp_path, astronaut_path, previous, flag):
    res = run_here(capsys, "generate", "-i", astronaut_path, "--text", "Hi there.", "-o", previous, flag, previous)
    assert res.returncode == 2 and "name the same file" in res.stderr, res.stderr
    assert previous.read_bytes() == b"an earlier result"


def test_text_file_is_not_an_output(capsys, tmp_path, astronaut_path):
    txt = tmp_path / "words.txt"
    txt.write_text("Hello there.")
    res = run_here(capsys, "generate", "-i", astronaut_path, "--text-file", txt, "-o", txt)
    assert res.returncode == 2 and "--text-file" in res.stderr
    assert txt.read_text() == "Hello there."


@pytest.mark.parametrize("command", ["edit", "dub"])
def test_edit_and_dub_keep_their_input_video(capsys, tmp_path, speech, command):
    video = tmp_path / "talk.mp4"
    video.write_bytes(b"not decoded: the paths are checked first")
    extra = ("--close-mouth", "0-1") if command == "edit" else ("-a", speech)
    res = run_here(capsys, command, video, "-o", video, *extra)
    assert res.returncode == 2 and "would be overwritten" in res.stderr, res.stderr
    assert video.read_bytes() == b"not decoded: the paths are checked first"


def test_non_regular_outputs_are_never_replaced(capsys, tmp_path, astronaut_path, speech):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    targets = [Path(os.devnull), fifo]
    node = None
    if os.geteuid() == 0:  # a character device of our own (like /dev/null), removed afterwards
        node = tmp_path / "chardev"
        os.mknod(node, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        targets.append(node)
    for t in targets:
        mode = os.stat(t).st_mode
        res = run_here(capsys, "generate", "-i", astronaut_path, "-a", speech, "-o", t)
        assert res.returncode == 2 and "not a regular file" in res.stderr, res.stderr
        assert os.stat(t).st_mode == mode  # still the device / pipe
    if node is not None:
        node.unlink()
    assert temp_files(tmp_path) == []


def test_directory_and_foreign_names_as_output(capsys, tmp_path, astronaut_path, speech):
    res = run_here(capsys, "generate", "-i", astronaut_path, "-a", speech, "-o", f"{tmp_path}/name/")
    assert res.returncode == 2 and "names a directory" in res.stderr
    assert not (tmp_path / "name").exists()
    res = run_here(capsys, "generate", "-i", astronaut_path, "-a", speech, "-o", tmp_path / "out.avi")
    assert res.returncode == 2 and ".mp4" in res.stderr
    assert not (tmp_path / "out.avi").exists()


# ---------------------------------------------------------------- unbounded reads
@pytest.mark.parametrize("flag,source", [("--text-file", "/dev/zero"), ("--text-file", "/dev/urandom"),
                                         ("--transcript-file", "/dev/zero"), ("--track-in", "/dev/zero")])
def test_endless_streams_stop_at_their_limit(capsys, tmp_path, astronaut_path, speech, flag, source):
    out = tmp_path / "o.mp4"
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    given = ("--text-file", source) if flag == "--text-file" else ("-a", speech, flag, source)
    res = run_here(capsys, "generate", "-i", astronaut_path, *given, "-o", out)
    assert_user_error(res, out)
    assert "too large" in res.stderr or "utf-8" in res.stderr.lower() or "nul" in res.stderr.lower(), res.stderr
    assert time.perf_counter() - t0 < 10
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 200, grown_mb  # 3 GB before the limits


def test_huge_image_is_refused_before_decoding(capsys, tmp_path, speech):
    img = write_png_header(tmp_path / "huge.png", 11_000, 11_000)  # 121 megapixels
    out = tmp_path / "o.mp4"
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    res = run_here(capsys, "generate", "-i", img, "-a", speech, "-o", out)
    assert_user_error(res, out, "image too large", "121.0 megapixels", "phototalk_max_image_megapixels=")
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024 < 100  # 2.2 GB before


def test_fifo_image_is_refused_without_hanging(capsys, tmp_path, speech):
    fifo = tmp_path / "img.fifo"
    os.mkfifo(fifo)
    out = tmp_path / "o.mp4"
    assert_user_error(run_here(capsys, "generate", "-i", fifo, "-a", speech, "-o", out), out, "not a regular file")


def test_text_from_a_pipe_is_read_up_to_the_limit(tmp_path, monkeypatch):
    from phototalk.errors import InputError
    from phototalk.validate import read_text

    fifo = tmp_path / "words"
    os.mkfifo(fifo)

    def feed(data: bytes):
        with open(fifo, "wb") as f:
            f.write(data)

    t = threading.Thread(target=feed, args=("Héllo from a pipe.".encode(),))
    t.start()
    assert read_text(fifo, "text file", "max_text_chars") == "Héllo from a pipe."
    t.join()
    monkeypatch.setenv("PHOTOTALK_MAX_TEXT_CHARS", "10")
    t = threading.Thread(target=feed, args=(b"x" * 100,))
    t.start()
    with pytest.raises(InputError, match="PHOTOTALK_MAX_TEXT_CHARS"):
        read_text(fifo, "text file", "max_text_chars")
    t.join()


def test_limits_name_how_to_raise_them(capsys, tmp_path, astronaut_path, monkeypatch):
    out = tmp_path / "o.mp4"
    monkeypatch.setenv("PHOTOTALK_MAX_TEXT_CHARS", "20")
    res = run_here(capsys, "generate", "-i", astronaut_path, "--text", "This sentence is longer than twenty.",
                   "-o", out)
    assert_user_error(res, out, "limit 20 characters", "phototalk_max_text_chars=")
    monkeypatch.setenv("PHOTOTALK_MAX_IMAGE_MEGAPIXELS", "0.1")  # the astronaut has 0.26
    res = run_here(capsys, "generate", "-i", astronaut_path, "--text", "Hi.", "-o", out)
    assert_user_error(res, out, "image too large", "phototalk_max_image_megapixels=")


# ---------------------------------------------------------------- one line, not a traceback
@pytest.mark.parametrize("args,needle", [(("--seed", "-1"), "--seed"), (("--region-box", "inf,0,10,10"), "--region-box"),
                                         (("--region-box", "nan,0,10,10"), "--region-box"),
                                         (("--size", "big"), "invalid int"), (("--bogus",), "unrecognized")])
def test_bad_values_are_one_line(capsys, tmp_path, astronaut_path, speech, args, needle):
    out = tmp_path / "o.mp4"
    res = run_here(capsys, "generate", "-i", astronaut_path, "-a", speech, "-o", out, *args)
    assert_user_error(res, out, needle.lower())
    if needle in ("invalid int", "unrecognized"):  # argparse's own: a pointer to the help, not the usage
        assert "--help`)" in res.stderr


def test_no_command_is_one_line(capsys):
    res = run_here(capsys)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and res.stderr.startswith("phototalk: error:")


TRACKS = {
    "list as a name": {"ranges": [{"channel": ["mouth_open"], "start_s": 0, "end_s": 1, "value": 0}]},
    "int as a list": {"fps": 25, "channels": {"mouth_open": 5}},
    "string values": {"fps": 25, "channels": {"mouth_open": ["0.1"]}},
    "nested values": {"fps": 25, "channels": {"mouth_open": [[0.1]]}},
    "bool values": {"fps": 25, "channels": {"blink": [True]}},
    "dict as channels list": {"ranges": [{"channels": {"a": 1}, "start_s": 0, "end_s": 1, "value": 0}]},
    "list as shorthand": {"ranges": [{"mouth": ["closed"], "start_s": 0, "end_s": 1}]},
    "value out of range": {"fps": 25, "channels": {"head_yaw": [1e30]}},
    "range value out of range": {"ranges": [{"channel": "mouth_open", "start_s": 0, "end_s": 1, "value": 1e6}]},
}


@pytest.mark.parametrize("name", list(TRACKS))
def test_malformed_track_files_are_one_line(capsys, tmp_path, astronaut_path, speech, name):
    p = tmp_path / "t.json"
    p.write_text(json.dumps(TRACKS[name]))
    out = tmp_path / "o.mp4"
    assert_user_error(run_here(capsys, "generate", "-i", astronaut_path, "-a", speech, "-o", out, "--track-in", p),
                      out, "track")


@pytest.mark.parametrize("text", [
    '{"fps": 25, "channels": {"mouth_open": ' + "[" * 100_000 + "]" * 100_000 + "}}",  # recursion
    '{"fps": 25, "channels": {"head_yaw": [' + "9" * 5000 + "]}}",  # past Python's int digit limit
    '{"fps": 1' + "0" * 400 + ', "channels": {"head_yaw": [0.1]}}',  # overflows a float
    '{"fps": NaN, "channels": {"head_yaw": [0.1]}}',
])
def test_pathological_json_is_one_line(capsys, tmp_path, astronaut_path, speech, text):
    p = tmp_path / "t.json"
    p.write_text(text)
    out = tmp_path / "o.mp4"
    assert_user_error(run_here(capsys, "generate", "-i", astronaut_path, "-a", speech, "-o", out, "--track-in", p),
                      out)


def test_track_api_rejects_huge_ints():
    from phototalk.errors import InputError
    from phototalk.motion.track import MotionTrack

    with pytest.raises(InputError):
        MotionTrack.from_dict({"format": "phototalk.MotionTrack/1", "fps": 10 ** 400, "channels": {}})
    with pytest.raises(InputError):
        MotionTrack.from_dict({"format": "phototalk.MotionTrack/1", "fps": 25, "channels": {
            k: [0.0] for k in ("mouth_open", "mouth_wide", "blink", "head_yaw", "head_pitch")} | {"head_roll": "x"}})


def test_nul_byte_in_a_text_file_is_refused(capsys, tmp_path, astronaut_path):
    txt = tmp_path / "nul.txt"
    txt.write_bytes(b"Hello there.\0 And the rest would be lost.")
    out = tmp_path / "o.mp4"
    assert_user_error(run_here(capsys, "generate", "-i", astronaut_path, "--text-file", txt, "-o", out), out, "nul")


def test_tiny_image_is_blamed_not_size(capsys, tmp_path, speech):
    img = tmp_path / "tiny.png"
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(img)
    out = tmp_path / "o.mp4"
    res = run_here(capsys, "generate", "-i", img, "-a", speech, "-o", out)
    assert_user_error(res, out, "image too small")
    assert "--size" not in res.stderr


def test_nonfinite_audio_is_cleaned(tmp_path, speech):
    from phototalk.audio.io import load_speech
    from phototalk.errors import InputError

    y = load_speech(speech).samples.copy()
    y[1000:3000], y[5000:5100] = np.nan, np.inf
    s = load_speech(write_float_wav(tmp_path / "nan.wav", y, 16000))
    assert np.isfinite(s.samples).all()
    assert np.array_equal(s.samples[10000:], np.clip(y[10000:], -1, 1))
    with pytest.raises(InputError, match="no finite samples"):
        load_speech(write_float_wav(tmp_path / "allnan.wav", np.full(8000, np.nan, np.float32), 16000))


def test_corrupt_exif_and_nan_audio_still_make_a_video(tmp_path, astronaut_path, speech):
    """A real job: corrupt EXIF (orientation still applied) and NaN/inf samples give a
    video with a finite soundtrack and two warnings, not a traceback."""
    from phototalk.audio.io import load_speech

    rgb = np.asarray(Image.open(astronaut_path))
    jpg = write_corrupt_exif_jpeg(tmp_path / "face.jpg", np.ascontiguousarray(np.rot90(rgb, 1)))  # stored turned
    y = load_speech(speech).samples.copy()
    y[4000:6000] = np.nan
    wav = write_float_wav(tmp_path / "nan.wav", y, 16000)
    out = tmp_path / "o.mp4"
    rc, err = finish(spawn("generate", "-i", jpg, "-a", wav, "-o", out, "--size", "128", "-q"))
    assert rc == 0, err
    assert "Traceback" not in err and "EXIF" in err and "NaN" in err, err
    frames, _ = pixels.decode(out)
    assert frames[0].shape[:2] == (128, 128) and len(frames) > 20
    import av

    with av.open(str(out)) as c:
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
    assert np.isfinite(audio).all() and np.abs(audio).max() > 0.05


# ---------------------------------------------------------------- write failures
def test_stdout_full_is_exit_1(tmp_path):
    with open("/dev/full", "w") as full:
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        res = subprocess.run([sys.executable, "-m", "phototalk.cli", "voices"], stdout=full, stderr=subprocess.PIPE,
                             text=True, env=env, timeout=120)
    assert res.returncode == 1, res.stderr
    assert res.stderr.strip().splitlines() == ["phototalk: error: cannot write standard output: No space left on device"]


def test_file_size_limit_keeps_the_previous_output(tmp_path, astronaut_path, speech, previous):
    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384))

    rc, err = finish(spawn("generate", "-i", astronaut_path, "-a", speech, "-o", previous, "--size", "128", "-q",
                           "--lipsync", "loudness", preexec_fn=small_files))
    assert rc == 1, err
    assert err.strip().splitlines() == [f"phototalk: error: cannot write {previous}: File too large"], err
    assert previous.read_bytes() == b"an earlier result" and temp_files(tmp_path) == []


def test_disk_full_keeps_the_previous_output(tmp_path, astronaut_path, speech):
    if os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        out = mnt / "o.mp4"
        out.write_bytes(b"an earlier result")
        rc, err = finish(spawn("generate", "-i", astronaut_path, "-a", speech, "-o", out, "--size", "128", "-q",
                               "--lipsync", "loudness"))
        assert rc == 1, err
        assert err.strip().splitlines() == [f"phototalk: error: cannot write {out}: No space left on device"], err
        assert out.read_bytes() == b"an earlier result" and temp_files(mnt) == []
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


# ---------------------------------------------------------------- signals
def stop_while_rendering(p: subprocess.Popen, d: Path, sig: int) -> None:
    """Send ``sig`` once the job has its temporary output open (it is rendering)."""
    t0 = time.time()
    while not temp_files(d):
        assert p.poll() is None, p.communicate()[1]
        assert time.time() - t0 < 90, "no temp output appeared"
        time.sleep(0.02)
    p.send_signal(sig)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_signals_remove_the_temp_file(tmp_path, astronaut_path, long_bursts, previous, sig):
    p = spawn("generate", "-i", astronaut_path, "-a", long_bursts, "-o", previous, "--size", "128", "-q",
              "--lipsync", "loudness")
    stop_while_rendering(p, tmp_path, sig)
    rc, err = finish(p)
    assert rc == 128 + sig, err
    assert err.strip().splitlines() == [f"phototalk: error: stopped by {signal.Signals(sig).name}; no output written"]
    assert previous.read_bytes() == b"an earlier result" and temp_files(tmp_path) == []


def test_sigterm_in_text_mode_and_edit(tmp_path, astronaut_path, previous):
    said = tmp_path / "said.wav"
    text = "Hello there, this is a long sentence. " * 6
    p = spawn("generate", "-i", astronaut_path, "--text", text, "-o", previous, "--save-audio", said,
              "--size", "128", "-q")
    stop_while_rendering(p, tmp_path, signal.SIGTERM)
    rc, err = finish(p)
    assert rc == 143, err
    # the message gets out although the face analysis (a worker thread here) mutes fd 2 around MediaPipe
    assert err.strip().splitlines() == ["phototalk: error: stopped by SIGTERM; no output written"], err
    assert not said.exists() and previous.read_bytes() == b"an earlier result" and temp_files(tmp_path) == []
    # edit: the input is a talking video made here
    video = tmp_path / "talk.mp4"
    rc, err = finish(spawn("generate", "-i", astronaut_path, "--text", "One two three four five six seven.",
                           "-o", video, "--size", "128", "-q"))
    assert rc == 0, err
    p = spawn("edit", video, "-o", previous, "--close-mouth", "0-1", "-q")
    stop_while_rendering(p, tmp_path, signal.SIGTERM)
    rc, err = finish(p)
    assert rc == 143, err
    assert previous.read_bytes() == b"an earlier result" and temp_files(tmp_path) == []


# ---------------------------------------------------------------- memory of the analysis
def test_blockwise_envelopes_equal_the_whole_array_formulas():
    """frame_power and frame_windows work in blocks (flat memory for long audio) and
    must give what the one-shot formulas gave."""
    from phototalk.audio.features import frame_power, frame_windows

    rng = np.random.default_rng(0)
    y = rng.standard_normal(3 * (1 << 20) + 77).astype(np.float32) * 0.1
    hop = 160
    n = len(y) // hop
    ref = np.mean(y[:n * hop].astype(np.float64).reshape(n, hop) ** 2, axis=1)
    assert np.allclose(frame_power(y, hop), ref, rtol=1e-12, atol=0)
    sr, fps, win_s = 16000, 25.0, 0.05
    m = int(len(y) / sr * fps)
    win = int(round(win_s * sr))
    pad = np.pad(y, (win, win + int(sr / fps) + 1))
    starts = np.round((np.arange(m) + 0.5) / fps * sr).astype(np.int64) - win // 2
    old = pad[starts[:, None] + win + np.arange(win)[None, :]]
    assert np.array_equal(frame_windows(y, sr, fps, m, win_s), old)
