"""Hostile inputs and faults against the CLI: one row per case with the exit code, the
first line of stderr, the child's peak RSS and whether it kept the contract (one
`phototalk: error:` line or a video, no traceback, no temp file, every pre-existing file
intact, RSS under 1 GiB).

    .venv/bin/python bench/hostile_cases.py [--only SUBSTR] [--md table.md]

Needs a portrait with a face (the astronaut from scikit-image) and makes its own
speech with espeak-ng. Cases that need root (device nodes, a tiny tmpfs) are skipped
without it. Takes a few minutes (three short videos are rendered).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RSS_LIMIT_MB = 1024


def sh(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def cli(*args) -> list[str]:
    return [sys.executable, "-m", "phototalk.cli", *map(str, args)]


def digest(p: Path) -> str | None:
    try:
        st = os.stat(p)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return f"special:{st.st_mode:o}:{st.st_rdev}"
    return hashlib.sha256(p.read_bytes()).hexdigest()


def run_case(cmd, *, cwd: Path, keep: list[Path], env=None, stdout=None, stop=None, preexec=None, timeout=600):
    """Run ``cmd``; returns (exit code, stderr, peak RSS MB, problems)."""
    before = {p: digest(p) for p in keep}
    dirs = {p.parent for p in keep} | {cwd}
    err_f = tempfile.TemporaryFile()
    out_f = stdout if stdout is not None else subprocess.DEVNULL
    e = dict(os.environ, PYTHONPATH=str(ROOT / "src"), **(env or {}))
    p = subprocess.Popen(cmd, cwd=cwd, stdout=out_f, stderr=err_f, env=e, preexec_fn=preexec)
    if stop is not None:
        stop(p)
    t0 = time.time()
    hwm = 0
    while True:
        # VmHWM of the child itself: its ru_maxrss would include this (large) parent's, which a
        # forked child inherits on Linux
        try:
            with open(f"/proc/{p.pid}/status") as f:
                hwm = max([hwm] + [int(ln.split()[1]) for ln in f if ln.startswith("VmHWM")])
        except (OSError, ValueError):
            pass
        pid, status, _ = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.time() - t0 > timeout:
            p.kill()
            pid, status, _ = os.wait4(p.pid, 0)
            break
        time.sleep(0.02)
    p.returncode = rc = os.waitstatus_to_exitcode(status)
    err_f.seek(0)
    err = err_f.read().decode(errors="replace")
    rss = hwm / 1024  # MB, sampled every 20 ms (a peak in the last 20 ms of a run can be missed)
    problems = []
    if "Traceback" in err:
        problems.append("traceback")
    for q in keep:
        if digest(q) != before[q]:
            problems.append(f"changed {q.name}")
    for d in dirs:
        for q in d.iterdir():
            if ".part" in q.name:
                problems.append(f"temp left {q.name}")
    if rss > RSS_LIMIT_MB:
        problems.append(f"rss {rss:.0f} MB")
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("WARNING")]
    if rc != 0 and rc < 128 and (len(lines) != 1 or not lines[0].startswith("phototalk: error:")):
        problems.append(f"{len(lines)} stderr lines")
    return rc, err, rss, problems


def is_video(p: Path, min_frames: int = 5) -> bool:
    import av

    try:
        with av.open(str(p)) as c:
            return sum(1 for _ in c.decode(video=0)) >= min_frames
    except Exception:  # noqa: BLE001 -- any failure means: not a video
        return False


def wait_for_part(d: Path, timeout_s: float = 120.0):
    """A stop() that waits until the job has an open temp output, i.e. is rendering."""
    def stop(p, sig):
        t0 = time.time()
        while time.time() - t0 < timeout_s and p.poll() is None:
            if any(".part" in q.name for q in d.iterdir()):
                time.sleep(0.3)
                break
            time.sleep(0.05)
        p.send_signal(sig)
    return stop


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="run only cases whose name contains this")
    ap.add_argument("--md", help="also write the table as Markdown here")
    a = ap.parse_args()
    root = os.geteuid() == 0
    w = Path(tempfile.mkdtemp(prefix="phototalk-hostile-"))
    from PIL import Image
    from skimage import data

    sys.path.insert(0, str(ROOT / "src"))
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import write_corrupt_exif_jpeg, write_float_wav, write_png_header

    from phototalk.audio.tts import synthesize

    img = w / "face.png"
    Image.fromarray(data.astronaut()).save(img)
    syn = synthesize("Hello there. I am a photograph, and I can talk to you now.", voice="en-us")
    wav = w / "speech.wav"
    from phototalk.audio.io import write_wav

    write_wav(wav, syn.samples, syn.sr)
    video = w / "talk.mp4"
    r = sh(cli("generate", "-i", img, "-a", wav, "-o", video, "--size", "256", "-q"),
           env=dict(os.environ, PYTHONPATH=str(ROOT / "src")))
    assert r.returncode == 0, r.stderr
    prev = w / "previous.mp4"  # a pre-existing output that must survive every failure
    shutil.copy(video, prev)
    base = [img, wav, video, prev]

    # inputs that need building
    cases = []

    def case(name, cmd, expect, keep=(), **kw):
        cases.append((name, cmd, expect, list(base) + list(keep), kw))

    y = syn.samples.astype(np.float32).copy()
    y[1000:3000] = np.nan
    y[5000:5100] = np.inf
    nan_wav = write_float_wav(w / "nan.wav", y, syn.sr)
    exif_jpg = write_corrupt_exif_jpeg(w / "badexif.jpg", np.ascontiguousarray(np.rot90(data.astronaut(), 1)))
    huge = write_png_header(w / "huge.png", 11_000, 11_000)  # claims 121 megapixels
    tiny = w / "tiny.png"
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(tiny)
    fifo = w / "fifo"
    os.mkfifo(fifo)
    nul_txt = w / "nul.txt"
    nul_txt.write_bytes(b"Hello there.\0 And the rest is lost.")
    deep = w / "deep.json"
    deep.write_text('{"fps": 25, "channels": {"mouth_open": ' + "[" * 100_000 + "]" * 100_000 + "}}")
    huge_int = w / "hugeint.json"
    huge_int.write_text('{"fps": 25, "channels": {"head_yaw": [' + "9" * 5000 + "]}}")
    huge_int2 = w / "hugeint2.json"
    huge_int2.write_text('{"fps": 1' + "0" * 400 + ', "channels": {"head_yaw": [0.1]}}')
    list_name = w / "listname.json"
    list_name.write_text('{"ranges": [{"channel": ["mouth_open"], "start_s": 0, "end_s": 1, "value": 0}]}')
    int_list = w / "intlist.json"
    int_list.write_text('{"fps": 25, "channels": {"mouth_open": 5}}')
    big_track = w / "big.json"
    with open(big_track, "w") as f:
        f.write('{"fps": 25, "channels": {"head_yaw": [')
        f.write(",".join(["0.01"] * (40 * 2 ** 20 // 5)))
        f.write("]}}")
    out = w / "out.mp4"
    G = ("generate", "-i", img, "-a", wav, "-q", "--size", "256")
    T = ("generate", "-i", img, "--text", "Hello there, how are you?", "-q", "--size", "256")

    case("-o is the input image", cli("generate", "-i", img, "-a", wav, "-o", img), {2})
    case("-o is the input audio", cli("generate", "-i", img, "-a", wav, "-o", wav), {2})
    case("-o is the input image (other spelling)", cli("generate", "-i", img, "-a", wav, "-o", w / "." / img.name),
         {2})
    case("--save-audio same as -o (text)", cli(*T, "-o", prev, "--save-audio", prev), {2})
    case("--save-track same as -o (text)", cli(*T, "-o", prev, "--save-track", prev), {2})
    case("--export-arkit same as -o (text)", cli(*T, "-o", prev, "--export-arkit", prev), {2})
    case("-o /dev/null", cli(*G, "-o", "/dev/null"), {2})
    case("-o a FIFO", cli(*G, "-o", fifo), {2})
    case("edit -o is the input video", cli("edit", video, "-o", video, "--close-mouth", "0-1", "-q"), {2})
    case("dub -o is the input video", cli("dub", video, "-o", video, "-a", wav, "-q"), {2})
    case("dub --audio is -o", cli("dub", video, "-o", wav, "-a", wav, "-q"), {2})
    case("--text-file /dev/zero", cli("generate", "-i", img, "--text-file", "/dev/zero", "-o", out), {2})
    case("--text-file /dev/urandom", cli("generate", "-i", img, "--text-file", "/dev/urandom", "-o", out), {2})
    case("--transcript-file /dev/zero", cli(*G, "-o", out, "--transcript-file", "/dev/zero"), {2})
    case("--track-in /dev/zero", cli(*G, "-o", out, "--track-in", "/dev/zero"), {2})
    case("--image is a FIFO", cli("generate", "-i", fifo, "-a", wav, "-o", out), {2})
    case("--audio is a FIFO", cli("generate", "-i", img, "-a", fifo, "-o", out), {2})
    case("JPEG with corrupt EXIF", cli("generate", "-i", exif_jpg, "-a", wav, "-o", out, "-q", "--size", "256"),
         {0}, video=out)
    case("float WAV with NaN/inf (generate)", cli("generate", "-i", img, "-a", nan_wav, "-o", out, "-q",
                                                  "--size", "256"), {0}, video=out)
    case("float WAV with NaN/inf (dub)", cli("dub", video, "-a", nan_wav, "-o", out, "-q"), {0}, video=out)
    case("--seed -1", cli(*G, "-o", out, "--seed", "-1"), {2})
    case("--region-box inf,0,10,10", cli(*G, "-o", out, "--region-box", "inf,0,10,10"), {2})
    case("--track-in: list where a name belongs", cli(*G, "-o", out, "--track-in", list_name), {2})
    case("--track-in: int where a list belongs", cli(*G, "-o", out, "--track-in", int_list), {2})
    case("--track-in: 100,000-deep nesting", cli(*G, "-o", out, "--track-in", deep), {2})
    case("--track-in: 5000-digit integer", cli(*G, "-o", out, "--track-in", huge_int), {2})
    case("--track-in: 401-digit fps", cli(*G, "-o", out, "--track-in", huge_int2), {2})
    case("--track-in: 40 MB file", cli(*G, "-o", out, "--track-in", big_track), {2})
    case("NUL byte in --text-file", cli("generate", "-i", img, "--text-file", nul_txt, "-o", out), {2})
    case("-o name/", cli(*G, "-o", str(w / "name") + "/"), {2})
    case("-o out.avi", cli(*G, "-o", w / "out.avi"), {2})
    case("argparse: unknown option", cli(*G, "-o", out, "--bogus"), {2})
    case("argparse: bad int", cli(*G, "-o", out, "--size", "big"), {2})
    case("no command", cli(), {2})
    case("32-px image", cli("generate", "-i", tiny, "-a", wav, "-o", out), {2})
    case("121-megapixel image", cli("generate", "-i", huge, "-a", wav, "-o", out), {2})
    case("--size 4096", cli(*G[:-2], "-o", out, "--size", "4096"), {2})
    case("stdout > /dev/full", cli(*G[:-3], "-o", out, "--size", "256"), {1}, stdout_path="/dev/full")
    case("stdout closed", cli(*G[:-3], "-o", out, "--size", "256"), {0}, stdout_closed=True, video=out)
    case("file size limit (EFBIG) while writing", cli(*G, "-o", prev), {1},
         preexec=lambda: __import__("resource").setrlimit(__import__("resource").RLIMIT_FSIZE, (20000, 20000)))
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        case(f"{sig.name} during generate", cli(*G, "-o", prev), {128 + sig}, stop=(wait_for_part(w), sig))
    case("SIGTERM during text mode", cli(*T, "-o", prev, "--save-audio", w / "said.wav"), {143},
         stop=(wait_for_part(w), signal.SIGTERM), absent=w / "said.wav")
    case("SIGTERM during edit", cli("edit", video, "-o", prev, "--close-mouth", "0-1", "-q"), {143},
         stop=(wait_for_part(w), signal.SIGTERM))
    if root:
        dev = w / "chardev"
        os.mknod(dev, 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # a node like /dev/null, in our own dir
        case("-o a device node (root)", cli(*G, "-o", dev), {2}, keep=[dev])
        mnt = w / "small"
        mnt.mkdir()
        if sh(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)]).returncode == 0:
            (mnt / "out.mp4").write_bytes(b"previous")
            case("disk full (ENOSPC) while writing", cli(*G, "-o", mnt / "out.mp4"), {1}, keep=[mnt / "out.mp4"])
        else:
            mnt = None
    rows = []
    for name, cmd, expect, keep, kw in cases:
        if a.only and a.only not in name:
            continue
        stdout = None
        if kw.get("stdout_path"):
            stdout = open(kw["stdout_path"], "w")
        pre = kw.get("preexec")
        if kw.get("stdout_closed"):
            pre = lambda: os.close(1)  # noqa: E731
        stop = None
        if kw.get("stop"):
            fn, sig = kw["stop"]
            stop = lambda p, fn=fn, sig=sig: fn(p, sig)  # noqa: E731
        if out.exists():
            out.unlink()
        rc, err, rss, problems = run_case(cmd, cwd=w, keep=keep, stdout=stdout, stop=stop, preexec=pre)
        if rc not in expect:
            problems.append(f"exit {rc}, expected {sorted(expect)}")
        if kw.get("video") and rc == 0 and not is_video(kw["video"]):
            problems.append("no video")
        if kw.get("absent") and Path(kw["absent"]).exists():
            problems.append(f"{Path(kw['absent']).name} written")
        msg = next((ln for ln in err.strip().splitlines() if ln.startswith("phototalk")), "")
        if rc == 0:
            msg = "(video written) " + next((ln for ln in err.splitlines() if ln.startswith("WARNING")), "")
        rows.append((name, rc, msg, rss, "ok" if not problems else "; ".join(problems)))
        print(f"{name:42s} exit {rc:3d}  {rss:6.0f} MB  {rows[-1][4]:10s} {msg[:150]}", flush=True)
    if root and mnt is not None:
        sh(["umount", str(mnt)])
    if a.md:
        with open(a.md, "w") as f:
            f.write("| case | exit | message | peak RSS MB | contract |\n|---|---|---|---|---|\n")
            for name, rc, msg, rss, ok in rows:
                f.write(f"| {name} | {rc} | {msg.replace('|', '/')} | {rss:.0f} | {ok} |\n")
    shutil.rmtree(w, ignore_errors=True)
    bad = [r for r in rows if r[4] != "ok"]
    print(f"{len(rows) - len(bad)}/{len(rows)} cases keep the contract")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
