"""Command line: `phototalk generate --image IMG --audio SPEECH | --text TEXT -o OUT.mp4`.

The only module that prints. Exit codes (README, "Exit codes"):
  0   done;
  1   writing failed part-way (disk full, file size limit, I/O error, stdout unwritable):
      the partial output is removed, a file already at the output path is kept;
  2   a usage or input error the user can fix (one `phototalk: error:` line);
  128 + N  stopped by signal N (130 SIGINT, 129 SIGHUP, 143 SIGTERM), cleaned up the same way.
Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time

from .errors import InputError, PhototalkError, WriteError
from .interrupt import Stopped, on_signal
from .options import option_fields, speech_option_fields

EXIT_USER_ERROR = 2
EXIT_WRITE_ERROR = 1
STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")  # each ends a job cleanly with exit code 128 + N


def _on_stop(signum, frame):
    for name in STOP_SIGNALS:  # a second signal must not interrupt the cleanup
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    on_signal(signum, frame)


def _install_process_guards() -> None:
    """Signals and file descriptors for a CLI run (not for library callers)."""
    for name in STOP_SIGNALS:
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _on_stop)
    if hasattr(signal, "SIGXFSZ"):  # past `ulimit -f`, write() then fails with EFBIG instead of killing us
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    # A closed stdin/stdout/stderr (`>&-`) would hand its number to the next file opened,
    # and FFmpeg's or MediaPipe's log lines would land in the output video.
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)  # takes the lowest free number: fd
    # The face analysis mutes fd 2 around MediaPipe's native calls (in a worker thread in
    # text mode); a stop message must reach the real stderr even then.
    global _stderr_fd
    _stderr_fd = os.dup(2)


_stderr_fd: int | None = None  # a copy of the process's stderr, for the stop message


class _Parser(argparse.ArgumentParser):
    """Usage errors as one `phototalk: error:` line with a pointer to --help (argparse
    would print the whole usage block first)."""

    def error(self, message: str):
        sys.stderr.write(f"phototalk: error: {message} (see `{self.prog} --help`)\n")
        sys.exit(EXIT_USER_ERROR)


class _Progress:
    """A one-line progress bar on stderr, redrawn at most 10 times a second."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.t0 = time.perf_counter()
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if done < total and now - self.last < 0.1:
            return
        self.last = now
        frac = done / max(total, 1)
        bar = "#" * int(frac * 30)
        fps = done / max(now - self.t0, 1e-6)
        sys.stderr.write(f"\rrendering [{bar:<30}] {done}/{total} frames  {fps:5.1f} fps")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _add_options(p: argparse.ArgumentParser, table=option_fields) -> None:
    for name, default, typ, meta in table():
        flag = meta.get("flag") or "--" + name.replace("_", "-")
        if typ is bool:  # a switch
            p.add_argument(flag, dest=name, action="store_true", default=default, help=meta["help"])
            continue
        shown = "" if default is None else f" (default: {default:g})" if isinstance(default, float) else \
            f" (default: {default})"
        p.add_argument(flag, dest=name, type=typ, default=default, metavar=meta.get("metavar"),
                       choices=meta.get("choices"), help=meta["help"] + shown)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = _Parser(prog="phototalk", description="Make a portrait talk: one image + speech -> MP4.")
    p.add_argument("--version", action="version", version=f"phototalk {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    g = sub.add_parser("generate", help="portrait + speech audio (or text) -> talking-head MP4",
                       description="Animate the face in IMAGE to speak AUDIO, or TEXT in the built-in espeak-ng "
                                   "voice; writes an H.264/AAC MP4.")
    g.add_argument("--image", "-i", required=True, help="portrait (jpg, png, webp, bmp, ...)")
    src = g.add_mutually_exclusive_group(required=True)
    src.add_argument("--audio", "-a", help="speech (wav, mp3, m4a, ogg, opus, flac, or a video)")
    src.add_argument("--text", "-t", help="words to speak with the built-in voice (any length)")
    src.add_argument("--text-file", help="read the words to speak from this UTF-8 text file")
    g.add_argument("--output", "-o", required=True, help="output MP4 path")
    _add_options(g)
    _add_options(g, speech_option_fields)
    _add_report(g)
    _add_common(g)
    d = sub.add_parser("demo", help="make a demo video: a bundled portrait speaking a sentence (no input needed)",
                       description="Animate NASA's public-domain astronaut portrait (shipped with scikit-image) "
                                   "speaking TEXT with the built-in espeak-ng voice.")
    d.add_argument("--output", "-o", default="demo.mp4", help="output MP4 path (default: demo.mp4)")
    d.add_argument("--text", default=DEMO_TEXT, help="what the portrait says")
    _add_options(d)
    _add_options(d, speech_option_fields)
    _add_report(d)
    _add_common(d)
    ph = sub.add_parser("phones", help="print the timed phones and visemes phototalk hears in AUDIO",
                        description="Print the phones (ARPAbet) and visemes of AUDIO with start and end times "
                                    "in seconds: aligned to --transcript when given, else recognised.")
    ph.add_argument("audio", help="speech (any format FFmpeg decodes)")
    ph.add_argument("--transcript", help="the words spoken (English), for exact alignment")
    ph.add_argument("--transcript-file", help="read the transcript from this file")
    ph.add_argument("--format", choices=("tsv", "json"), default="tsv", help="output format (default: tsv)")
    ph.add_argument("--verbose", "-v", action="store_true", help="log what happens")
    sub.add_parser("voices", help="list the voices/languages of the built-in speech (for --voice)",
                   description="List the espeak-ng voices --voice accepts: a language code or the voice name.")
    _add_edit_parsers(sub)
    from .train_cli import add_parsers  # extract-track, train-motion (issue 15)

    add_parsers(sub, _add_common)
    return p


def _add_edit_parsers(sub) -> None:
    """`edit` and `dub`: change a real talking video (see phototalk.edit)."""
    e = sub.add_parser("edit", help="close the mouth/eyes or stop blinks over time ranges of a real video",
                       description="Edit the face in VIDEO over time ranges (seconds, T0-T1; each option may be "
                                   "repeated). Only the face region changes; sound, size, frame rate and "
                                   "rotation are kept.")
    e.add_argument("video", help="talking video (mp4, mov, mkv, webm, ...)")
    e.add_argument("--output", "-o", required=True, help="output MP4 path")
    e.add_argument("--close-mouth", action="append", default=[], metavar="T0-T1", help="shut the lips")
    e.add_argument("--close-eyes", action="append", default=[], metavar="T0-T1", help="shut the eyes")
    e.add_argument("--no-blink", action="append", default=[], metavar="T0-T1",
                   help="keep the eyes open (blinks replaced by open eyes of a nearby frame)")
    e.add_argument("--ease", type=float, default=0.12, metavar="S",
                   help="seconds to close before a range and reopen after it; 0 leaves every frame "
                        "outside the ranges untouched (default: 0.12)")
    d = sub.add_parser("dub", help="re-lip-sync a real video to new speech (audio or text)",
                       description="Make the person in VIDEO say new speech: the mouth follows it, the new "
                                   "speech replaces the soundtrack, the video is cut to its length or extended "
                                   "by playing frames back and forth.")
    d.add_argument("video", help="talking video (mp4, mov, mkv, webm, ...)")
    d.add_argument("--output", "-o", required=True, help="output MP4 path")
    speech = d.add_mutually_exclusive_group(required=True)
    speech.add_argument("--audio", "-a", help="new speech (wav, mp3, m4a, ogg, flac, or a video)")
    speech.add_argument("--text", "-t", help="words for the built-in voice to speak")
    d.add_argument("--voice", default="en-us", help="built-in voice for --text (see `phototalk voices`)")
    d.add_argument("--transcript", help="the words of --audio (English), for the most exact lip sync")
    d.add_argument("--motion-model", metavar="MODEL.npz", help="mouth motion from this learned model "
                   "(`phototalk train-motion`); /p b m/ closures still come from the phones")
    d.add_argument("--personalize", action="store_true", help="learn how this speaker's lips follow their "
                   "voice from the video's own soundtrack, and apply it to the new speech")
    for p in (e, d):
        p.add_argument("--crf", type=int, default=20, metavar="Q", help="H.264 quality, 0 .. 51 (default: 20)")
        p.add_argument("--lossless", action="store_true",
                       help="lossless RGB H.264 (bit-exact frames; large files, fewer players)")
        _add_common(p)


def _edit(a: argparse.Namespace) -> int:
    from .edit import dub_video, edit_video

    progress = _Progress(enabled=not a.quiet and sys.stderr.isatty())
    if a.command == "edit":
        res = edit_video(a.video, a.output, close_mouth=a.close_mouth, close_eyes=a.close_eyes,
                         no_blink=a.no_blink, crf=a.crf, lossless=a.lossless, ease_s=a.ease, progress=progress)
    else:
        res = dub_video(a.video, a.output, audio=a.audio, text=a.text, voice=a.voice, transcript=a.transcript,
                        crf=a.crf, lossless=a.lossless, progress=progress, motion_model=a.motion_model,
                        personalize=a.personalize)
    if not a.quiet:
        t = res.timings_s
        print(f"wrote {os.path.relpath(res.path)}: {res.width}x{res.height}, {res.n_frames} frames at "
              f"{res.fps:g} fps ({res.n_frames / res.fps:.2f} s), face in {res.frames_with_face}, "
              f"in {t['total']:.1f} s ({res.n_frames / max(t['total'], 1e-9):.0f} fps)")
    return 0


def _voices() -> int:
    from .audio.tts import voice_languages

    print("language\tvoice\talso")
    for ident, codes in sorted(voice_languages(), key=lambda v: (v[1][:1], v[0])):
        print(f"{codes[0] if codes else '-'}\t{ident}\t{' '.join(codes[1:])}")
    return 0


def _read_text_file(path: str) -> str:
    from .validate import read_text

    return read_text(path, "text file", "max_text_chars")


def _phones(a: argparse.Namespace) -> int:
    import json

    from .audio.io import load_speech
    from .audio.phones import phones_for
    from .motion.visemes import viseme_of
    from .options import GenerateOptions

    transcript = GenerateOptions(transcript=a.transcript, transcript_file=a.transcript_file).validate() \
        .transcript_text()
    rows = [(p.start_s, p.end_s, p.label, viseme_of(p.label).value) for p in phones_for(load_speech(a.audio), transcript)]
    if a.format == "json":
        print(json.dumps([{"start_s": round(t0, 3), "end_s": round(t1, 3), "phone": ph, "viseme": v}
                          for t0, t1, ph, v in rows], indent=1))
    else:
        print("start_s\tend_s\tphone\tviseme")
        for t0, t1, ph, v in rows:
            print(f"{t0:.3f}\t{t1:.3f}\t{ph}\t{v}")
    return 0


DEMO_TEXT = ("Hello! I am a photograph, and now I can talk. Phototalk moves my lips, my eyes and my head "
             "from speech alone, right here on your computer.")


def _add_report(p: argparse.ArgumentParser) -> None:
    p.add_argument("--report", metavar="PATH",
                   help="also write the run's statistics as JSON here: options, frame count, seconds per "
                        "stage, and the renderer's per-frame checks (worst inverse error in px, folded "
                        "triangles)")


def _write_report(path: str, command: str, inputs: dict, opts: dict, res) -> None:
    """The run's statistics as JSON (atomically): what was asked and what it produced."""
    import json

    from . import __version__
    from .video.atomic import atomic_path

    report = {"phototalk": __version__, "command": command, "inputs": inputs, "options": opts,
              "output": os.path.abspath(res.path), "frames": res.n_frames, "fps": res.fps,
              "size": [res.width, res.height], "duration_s": round(res.duration_s, 3),
              "timings_s": {k: round(v, 4) for k, v in res.timings_s.items()},
              "first_frame_s": round(res.first_frame_s, 3), "render": res.render_stats}
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")
    p.add_argument("--verbose", "-v", action="store_true", help="log what each stage does")


def _generate(a: argparse.Namespace) -> int:
    from .pipeline import generate

    opts = {name: getattr(a, name) for name, *_ in option_fields()}
    if a.report:
        from .video.atomic import check_writable

        check_writable(a.report)
    progress = _Progress(enabled=not a.quiet and sys.stderr.isatty())
    image, text = getattr(a, "image", None), a.text
    if a.command == "demo":
        from skimage import data

        image = data.astronaut()
    elif a.text_file is not None:
        from .validate import check_job

        # the file is read whole before any output exists: -o must not name it
        check_job({"--image": image, "--text-file": a.text_file}, {"--output": a.output})
        text = _read_text_file(a.text_file)
    if text is not None:
        from .speak import speak

        res = speak(image, text, a.output, voice=a.voice, rate_wpm=a.rate, save_audio=a.save_audio,
                    progress=progress, **opts)
    else:
        unused = [f for f, given in (("--voice", a.voice != "en-us"), ("--rate", a.rate != 175),
                                     ("--save-audio", a.save_audio is not None)) if given]
        if unused:
            raise InputError(f"{', '.join(unused)} only apply to --text/--text-file")
        res = generate(image, a.audio, a.output, progress=progress, **opts)
    if a.report:
        inputs = {"image": "skimage.data.astronaut" if a.command == "demo" else os.path.abspath(image),
                  "audio": os.path.abspath(a.audio) if getattr(a, "audio", None) else None, "text": text}
        if text is not None:
            inputs.update(voice=a.voice, rate=a.rate)
        _write_report(a.report, a.command, inputs, opts, res)
    if not a.quiet:
        t = res.timings_s
        print(f"wrote {os.path.relpath(res.path)}: {res.width}x{res.height}, {res.n_frames} frames at "
              f"{res.fps:g} fps ({res.n_frames / res.fps:.2f} s) in {t['total']:.1f} s "
              f"({res.n_frames / max(t['render'] + t['encode'], 1e-9):.0f} fps render+encode)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line (``argv``: the arguments, default sys.argv[1:]). Signal
    handlers and the other process guards are installed only for a real run (argv None),
    not when a caller (a test) runs a command in its own process."""
    if argv is None:
        _install_process_guards()
    parser = build_parser()
    a = parser.parse_args(argv)
    if a.command is None:
        parser.error("give a command: generate, demo, phones, voices, edit or dub")
    logging.basicConfig(level=logging.INFO if getattr(a, "verbose", False) else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("GLOG_minloglevel", "2")  # silence MediaPipe's C++ INFO lines
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        if a.command == "voices":
            code = _voices()
        elif a.command in ("edit", "dub"):
            code = _edit(a)
        elif a.command in ("extract-track", "train-motion"):
            from . import train_cli

            code = train_cli.extract(a) if a.command == "extract-track" else train_cli.train(a)
        else:
            code = _phones(a) if a.command == "phones" else _generate(a)
        if sys.stdout is not None:
            sys.stdout.flush()  # here, not at exit, so a full or broken stdout is reported
        return code
    except WriteError as e:
        return _fail(str(e), EXIT_WRITE_ERROR)
    except PhototalkError as e:
        return _fail(str(e), EXIT_USER_ERROR)
    except Stopped as e:
        return _stopped(e.signum)
    except KeyboardInterrupt:  # SIGINT before the handler was installed
        return _stopped(signal.SIGINT)
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        _mute_stdout()
        return 0
    except OSError as e:  # the environment failed us: stdout full, a disk error in a temp dir, ...
        where = "standard output" if e.filename is None else e.filename
        return _fail(f"cannot write {where}: {e.strerror or e}", EXIT_WRITE_ERROR)


def _fail(message: str, code: int) -> int:
    _mute_stdout()
    try:
        print(f"phototalk: error: {message}", file=sys.stderr)
    except (OSError, ValueError, AttributeError):
        pass
    return code


def _stopped(signum: int) -> int:
    """Outputs are cleaned up by now. Leave at once: a worker thread still busy (phone
    recognition, face analysis) would otherwise be waited for at interpreter exit."""
    code = 128 + int(signum)
    message = f"stopped by {signal.Signals(signum).name}; no output written"
    if _stderr_fd is None:
        _fail(message, code)
    else:
        _mute_stdout()
        try:
            os.write(_stderr_fd, f"phototalk: error: {message}\n".encode())
        except OSError:
            pass
    logging.shutdown()
    try:
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass
    os._exit(code)


def _mute_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush of what is still
    buffered cannot fail a second time."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


if __name__ == "__main__":
    sys.exit(main())
