"""The one entry point for every job: ``run(request, on_progress=..., cancel=...) -> Result``.

A ``Request`` describes a generate (portrait + audio or text), edit or dub job with its
options; its JSON form is what request files, the HTTP service and the batch runner pass:

    {"kind": "generate", "image": "me.jpg", "text": "Hello there.", "output": "out.mp4",
     "options": {"seed": 1, "voice": "en-gb"}}

Options are those of ``options.option_specs(kind)`` (CLI names with underscores).
``run`` blocks in the calling thread; progress events may also come from the worker
thread that analyses the portrait while text is synthesised, so a callback must be
thread-safe (appending to a list or putting on a queue is). A ``CancelToken`` cancelled
from any thread stops the job within ~1 s with ``Cancelled``; no output or temporary
file is left.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable

from .core import job as _job
from .core.job import CancelToken, ProgressEvent
from .core.result import Result
from .errors import Cancelled, InputError
from .options import KINDS, SPECS, SPEECH, DubOptions, EditOptions, GenerateOptions

__all__ = ["run", "Request", "Result", "CancelToken", "Cancelled", "ProgressEvent"]

INPUTS = {"generate": ("image", "audio", "text"), "edit": ("video",), "dub": ("video", "audio", "text")}
PATH_FIELDS = ("image", "video", "audio", "output")


@dataclass
class Request:
    """One job. kind: "generate" | "edit" | "dub"; image (generate) or video (edit, dub);
    audio or text (generate, dub: exactly one); output: the MP4 to write; options: option
    name -> value (see ``option_specs(kind)``; missing ones take their defaults)."""

    kind: str
    output: str
    image: str | None = None
    video: str | None = None
    audio: str | None = None
    text: str | None = None
    options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if hasattr(self.options, "to_dict"):  # a GenerateOptions / EditOptions / DubOptions
            self.options = self.options.to_dict()
        for k in PATH_FIELDS:  # pathlib paths are fine; the JSON form holds strings
            if isinstance(getattr(self, k), os.PathLike):
                setattr(self, k, os.fspath(getattr(self, k)))

    @classmethod
    def from_dict(cls, d: dict, base_dir: str | os.PathLike | None = None) -> "Request":
        """A request from its JSON form. base_dir: relative paths (inputs, output and path
        options) are taken relative to it (default: as given, i.e. the working directory)."""
        if not isinstance(d, dict):
            raise InputError(f"a request must be a JSON object, got {type(d).__name__}")
        known = ("kind", "output", "options") + PATH_FIELDS + ("text",)
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise InputError(f"unknown request field {unknown[0]!r} (known: {', '.join(sorted(set(known)))})")
        kind = d.get("kind")
        if kind not in KINDS:
            raise InputError(f"request 'kind' must be generate, edit or dub, got {kind!r}")
        if not isinstance(d.get("output"), str) or not d["output"]:
            raise InputError("request needs an 'output' path")
        options = d.get("options") or {}
        if not isinstance(options, dict):
            raise InputError("request 'options' must be a JSON object")
        for k in PATH_FIELDS + ("text",):
            if d.get(k) is not None and not isinstance(d[k], str):
                raise InputError(f"request '{k}' must be a string, got {d[k]!r}")
        req = cls(kind=kind, output=d["output"], image=d.get("image"), video=d.get("video"), audio=d.get("audio"),
                  text=d.get("text"), options=dict(options))
        if base_dir is not None:
            req = req._resolved(os.fspath(base_dir))
        return req

    def _resolved(self, base: str) -> "Request":
        def at(p):
            return p if p is None or os.path.isabs(p) else os.path.join(base, p)

        opts = {k: at(v) if k in SPECS and SPECS[k].path and isinstance(v, str) else v
                for k, v in self.options.items()}
        return Request(self.kind, at(self.output), at(self.image), at(self.video), at(self.audio), self.text, opts)

    def typed_options(self) -> dict:
        """Every option of this kind, parsed and checked, defaults filled in."""
        names = KINDS[self.kind]
        unknown = sorted(set(self.options) - set(names))
        if unknown:
            raise InputError(f"unknown option {unknown[0]!r} for {self.kind} (known: {', '.join(names)})")
        out = {n: SPECS[n].default for n in names}
        out.update({k: SPECS[k].parse(v) for k, v in self.options.items()})
        return {k: list(v) if isinstance(v, list) else v for k, v in out.items()}

    def validate(self) -> "Request":
        """Check inputs and options (bounds, choices, unknown names, rules between them);
        raises InputError with one line. Files are checked when the job runs."""
        if self.kind not in KINDS:
            raise InputError(f"request 'kind' must be generate, edit or dub, got {self.kind!r}")
        allowed = INPUTS[self.kind]
        for k in ("image", "video", "audio", "text"):
            if getattr(self, k) is not None and k not in allowed:
                raise InputError(f"a {self.kind} request takes no '{k}'")
        src = allowed[0]
        if getattr(self, src) is None:
            raise InputError(f"a {self.kind} request needs '{src}'")
        if self.kind != "edit" and (self.audio is None) == (self.text is None):
            raise InputError(f"a {self.kind} request needs exactly one of 'audio' and 'text'")
        opts = self.typed_options()
        if self.kind == "generate":
            GenerateOptions(**{k: v for k, v in opts.items() if k not in SPEECH}).validate()
            if self.text is None:
                unused = [SPECS[k].flag for k in SPEECH if opts[k] != SPECS[k].default]
                if unused:
                    raise InputError(f"{', '.join(unused)} only apply to --text/--text-file")
        elif self.kind == "edit":
            EditOptions(**opts).validate()
        else:
            DubOptions(**opts).validate()
        return self

    def to_dict(self) -> dict:
        """The canonical JSON form: inputs given, every option with its default filled in
        (equal dicts describe the same job: hash ``json.dumps(d, sort_keys=True)``)."""
        d: dict[str, Any] = {"kind": self.kind}
        for k in ("image", "video", "audio", "text"):
            if getattr(self, k) is not None:
                d[k] = getattr(self, k)
        d["output"] = self.output
        d["options"] = self.typed_options()
        return d


def _stages(req: Request, opts: dict) -> tuple[str, ...]:
    """The stages this job goes through (for the progress fraction)."""
    if req.kind == "edit":
        return ("face", "render")
    speech = ("tts",) if req.text is not None else ("audio",)
    phones = ("phones",) if req.kind == "dub" or (req.text is None and opts.get("lipsync") == "phones") else ()
    return speech + phones + ("face", "motion", "render")


# Stage names of the pipelines' own timing keys
_TIMING_ALIASES = {"analysis": "face", "track": "face", "edit": "render"}


def run(request: Request | dict, *, on_progress: Callable[[ProgressEvent], None] | None = None,
        cancel: CancelToken | None = None) -> Result:
    """Run one job (blocking, in the calling thread). request: a ``Request`` or its JSON
    form (relative paths as given). on_progress(ProgressEvent) is called as stages
    advance; cancel: a ``CancelToken`` whose ``cancel()`` makes this raise ``Cancelled``
    within ~1 s, leaving no output. Raises ``PhototalkError`` subclasses (one line) on bad
    input; anything else is a bug."""
    req = Request.from_dict(request) if isinstance(request, dict) else request
    req.validate()
    opts = req.typed_options()
    j = _job.Job(cancel, on_progress, _stages(req, opts))
    with _job.job(j):
        _job.checkpoint()
        if req.kind == "generate":
            gen = {k: v for k, v in opts.items() if k not in SPEECH}
            if req.text is not None:
                from .speak import speak

                r = speak(req.image, req.text, req.output, voice=opts["voice"], rate_wpm=opts["rate"],
                          save_audio=opts["save_audio"], **gen)
            else:
                from .pipeline import generate

                r = generate(req.image, req.audio, req.output, **gen)
            res = r
        else:
            from .edit.pipeline import dub_video, edit_video

            if req.kind == "edit":
                r = edit_video(req.video, req.output, EditOptions(**opts))
            else:
                r = dub_video(req.video, req.output, DubOptions(**opts), audio=req.audio, text=req.text)
            res = r
        for old, new in _TIMING_ALIASES.items():
            if old in res.timings_s and new not in res.timings_s:
                res.timings_s[new] = res.timings_s[old]
        j.finish("render", res.n_frames)
    return res
