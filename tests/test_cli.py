"""The command line on bad input: one line on stderr, exit code 2, no output file."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, write_wav

import pixels


def run(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    return subprocess.run([sys.executable, "-m", "phototalk.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory):
    t = np.arange(16000 * 2) / 16000
    y = 0.3 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 3 * t) > 0)  # syllable-like bursts
    return write_wav(tmp_path_factory.mktemp("a") / "bursts.wav", y, 16000)


@pytest.fixture(scope="module")
def two_faces(tmp_path_factory, astronaut_path):
    a = np.asarray(Image.open(astronaut_path))
    p = tmp_path_factory.mktemp("i") / "two.png"
    Image.fromarray(np.concatenate([a, a[:, ::-1]], 1)).save(p)
    return p


def assert_user_error(res, out: Path, *needles):
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr  # one line, no traceback
    assert lines[0].startswith("phototalk: error: ")
    for n in needles:
        assert n in lines[0].lower(), lines[0]
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith("." + out.name)], "temp file left behind"


def test_missing_image(tmp_path, speech_wav):
    out = tmp_path / "o.mp4"
    assert_user_error(run("generate", "-i", tmp_path / "nope.jpg", "-a", speech_wav, "-o", out), out, "not found")


def test_missing_audio(tmp_path, astronaut_path):
    out = tmp_path / "o.mp4"
    assert_user_error(run("generate", "-i", astronaut_path, "-a", tmp_path / "nope.wav", "-o", out), out, "not found")


def test_corrupt_image(tmp_path, speech_wav):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg" * 10)
    out = tmp_path / "o.mp4"
    assert_user_error(run("generate", "-i", bad, "-a", speech_wav, "-o", out), out, "cannot read image")


def test_image_without_face(tmp_path, speech_wav):
    from skimage import data

    p = tmp_path / "coffee.png"
    Image.fromarray(data.coffee()).save(p)
    out = tmp_path / "o.mp4"
    assert_user_error(run("generate", "-i", p, "-a", speech_wav, "-o", out), out, "no face")


def test_two_faces_need_a_choice(tmp_path, two_faces, speech_wav):
    out = tmp_path / "o.mp4"
    assert_user_error(run("generate", "-i", two_faces, "-a", speech_wav, "-o", out), out, "2 faces", "--face-index")
    assert_user_error(run("generate", "-i", two_faces, "-a", speech_wav, "-o", out, "--face-index", "2"), out,
                      "out of range")


def test_face_index_picks_one_face(tmp_path, two_faces, speech_wav):
    out = tmp_path / "o.mp4"
    res = run("generate", "-i", two_faces, "-a", speech_wav, "-o", out, "--face-index", "1", "--size", "512")
    assert res.returncode == 0, res.stderr
    frames, _ = pixels.decode(out)
    w = frames[0].shape[1]
    diff = np.abs(np.stack(frames).astype(int) - frames[0].astype(int)).max(axis=(0, 3))  # (h, w) motion
    moved_cols = np.nonzero(diff.max(0) > 30)[0]
    assert len(moved_cols) and moved_cols.min() >= w // 2  # only the right-hand face moves


def test_empty_audio(tmp_path, astronaut_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    out = tmp_path / "o.mp4"
    assert_user_error(run("generate", "-i", astronaut_path, "-a", empty, "-o", out), out, "empty")


def test_corrupt_audio(tmp_path, astronaut_path):
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(os.urandom(4096))
    out = tmp_path / "o.mp4"
    assert_user_error(run("generate", "-i", astronaut_path, "-a", bad, "-o", out), out, "audio")


def test_unwritable_output(tmp_path, astronaut_path, speech_wav):
    out = tmp_path / "no" / "such" / "dir" / "o.mp4"
    res = run("generate", "-i", astronaut_path, "-a", speech_wav, "-o", out)
    assert res.returncode == 2 and "does not exist" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = run("generate", "-i", astronaut_path, "-a", speech_wav, "-o", blocker / "o.mp4")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1


def test_bad_option_values(tmp_path, astronaut_path, speech_wav):
    out = tmp_path / "o.mp4"
    assert_user_error(run("generate", "-i", astronaut_path, "-a", speech_wav, "-o", out, "--fps", "0"), out, "--fps")
    assert_user_error(run("generate", "-i", astronaut_path, "-a", speech_wav, "-o", out, "--size", "8"), out, "--size")


def test_existing_output_survives_a_failed_run(tmp_path, speech_wav):
    out = tmp_path / "o.mp4"
    out.write_bytes(b"previous result")
    res = run("generate", "-i", tmp_path / "nope.png", "-a", speech_wav, "-o", out)
    assert res.returncode == 2
    assert out.read_bytes() == b"previous result"


def test_help_lists_every_option():
    res = run("generate", "--help")
    assert res.returncode == 0
    for flag in ("--image", "--audio", "--output", "--fps", "--size", "--seed", "--face-index", "--crf",
                 "--save-track"):
        assert flag in res.stdout


def test_phones_command_prints_timed_visemes(tmp_path):
    from phototalk.audio.tts import synthesize

    s = synthesize("Mama bought a map.")
    wav = write_wav(tmp_path / "m.wav", s.samples, s.sr)
    res = run("phones", wav, "--transcript", "Mama bought a map.")
    assert res.returncode == 0, res.stderr
    rows = [r.split("\t") for r in res.stdout.strip().splitlines()]
    assert rows[0] == ["start_s", "end_s", "phone", "viseme"]
    phones = [r[2] for r in rows[1:]]
    assert phones.count("M") == 3 and "AO" in phones
    assert all(r[3] == "PP" for r in rows[1:] if r[2] in ("M", "B", "P"))
    assert float(rows[-1][1]) == pytest.approx(s.duration_s, abs=0.01)
    res = run("phones", tmp_path / "missing.wav")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1


# --- text input (built-in TTS) ---------------------------------------------------------

def run_here(capsys, *args):
    """The CLI in this process: text errors come before any heavy work, so no interpreter start."""
    from phototalk.cli import main

    try:
        rc = main([str(a) for a in args])
    except SystemExit as e:  # argparse's usage errors
        rc = e.code
    cap = capsys.readouterr()
    return subprocess.CompletedProcess(args, rc, cap.out, cap.err)


@pytest.mark.parametrize("text", ["", "   \n\t ", "?!... ,;", "。！？"])
def test_text_with_nothing_to_speak(capsys, tmp_path, astronaut_path, text):
    out = tmp_path / "o.mp4"
    res = run_here(capsys, "generate", "-i", astronaut_path, "--text", text, "-o", out)
    assert_user_error(res, out, "nothing to speak")


def test_unknown_voice_points_to_the_voices_command(capsys, tmp_path, astronaut_path):
    out = tmp_path / "o.mp4"
    res = run_here(capsys, "generate", "-i", astronaut_path, "--text", "Hello.", "--voice", "klingon", "-o", out)
    assert_user_error(res, out, "unknown voice 'klingon'", "phototalk voices")


def test_unreadable_text_file(capsys, tmp_path, astronaut_path):
    out = tmp_path / "o.mp4"
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("Ol\xe9, se\xf1or".encode("latin-1"))
    empty = tmp_path / "empty.txt"
    empty.write_text(" \n")
    for path, needles in ((tmp_path / "nope.txt", ("text file", "not found")),
                          (latin1, ("text file", "utf-8")),
                          (tmp_path, ("text file", "directory")),
                          (empty, ("nothing to speak",))):
        res = run_here(capsys, "generate", "-i", astronaut_path, "--text-file", path, "-o", out)
        assert_user_error(res, out, *needles)


def test_text_options_are_checked(capsys, tmp_path, astronaut_path, speech_wav):
    out = tmp_path / "o.mp4"
    gen = ("generate", "-i", astronaut_path, "-o", out)
    assert_user_error(run_here(capsys, *gen, "--text", "Hi.", "--rate", "20"), out, "--rate")
    assert_user_error(run_here(capsys, *gen, "-a", speech_wav, "--voice", "fr"), out, "--voice", "--text")
    assert_user_error(run_here(capsys, *gen, "--text", "私", "--voice", "ja"), out, "kana")
    res = run_here(capsys, *gen, "--text", "Hi.", "-a", speech_wav)
    assert res.returncode == 2 and "not allowed with" in res.stderr and not out.exists()
    wav = tmp_path / "speech.wav"
    res = run_here(capsys, "generate", "-i", tmp_path / "nope.png", "--text", "Hi.", "--save-audio", wav, "-o", out)
    assert_user_error(res, out, "not found")
    assert not wav.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".speech")]


def test_voices_lists_the_languages():
    res = run("voices")
    assert res.returncode == 0, res.stderr
    rows = [r.split("\t") for r in res.stdout.strip().splitlines()[1:]]
    langs = {r[0] for r in rows} | {c for r in rows for c in r[2].split()}
    assert {"en-us", "en-gb", "cmn", "es", "fr-fr", "de", "ja"} <= langs
    assert len(rows) > 50


def test_text_file_to_video_with_saved_audio(tmp_path, astronaut_path):
    import wave

    src = tmp_path / "words.txt"
    src.write_text("Mama made a map.\n", encoding="utf-8")
    out, wav = tmp_path / "o.mp4", tmp_path / "o.wav"
    res = run("generate", "-i", astronaut_path, "--text-file", src, "--voice", "en-gb", "--rate", "150",
              "--save-audio", wav, "-o", out, "--size", "256")
    assert res.returncode == 0, res.stderr
    with wave.open(str(wav)) as w:
        dur = w.getnframes() / w.getframerate()
    frames, fps = pixels.decode(out)
    assert dur > 1.0 and len(frames) == round(dur * fps)
    assert abs(pixels.streams(out)["audio"] - dur) < 0.05


def test_help_lists_the_text_options(capsys):
    res = run_here(capsys, "generate", "--help")
    assert res.returncode == 0
    for flag in ("--text", "--text-file", "--voice", "--rate", "--save-audio", "phototalk voices"):
        assert flag in res.stdout, flag
