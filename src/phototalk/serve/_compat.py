"""TEMPORARY stand-in for the issue-14 job API (phototalk.run, Request, option_specs)
until main has it; deleted when it lands. generate only."""
from __future__ import annotations

import threading
from dataclasses import dataclass

from ..errors import InputError, PhototalkError


class Cancelled(PhototalkError):
    def __init__(self):
        super().__init__("cancelled")


class CancelToken:
    def __init__(self):
        self._e = threading.Event()

    def cancel(self):
        self._e.set()

    @property
    def cancelled(self):
        return self._e.is_set()


@dataclass
class _Spec:
    name: str
    type: type
    default: object
    help: str
    choices: tuple | None
    metavar: str | None
    min: float | None = None
    max: float | None = None

    def parse(self, v):
        return v

    @property
    def flag(self):
        return "--" + self.name.replace("_", "-")


def option_specs(kind):
    from ..options import option_fields, speech_option_fields

    return [_Spec(n, t, d, m["help"], m.get("choices"), m.get("metavar"))
            for n, d, t, m in option_fields() + speech_option_fields()]


class _Result(dict):
    def to_dict(self):
        return dict(self)


class Request:
    def __init__(self, d):
        self.d = d

    @classmethod
    def from_dict(cls, d, base_dir=None):
        return cls(dict(d))

    def validate(self):
        from ..options import GenerateOptions

        if self.d.get("kind") != "generate":
            raise InputError("only generate until the job API lands")
        o = dict(self.d.get("options") or {})
        o.pop("voice", None), o.pop("rate", None)
        try:
            GenerateOptions(**o).validate()
        except TypeError as e:
            raise InputError(str(e)) from None

    def to_dict(self):
        return self.d


def run(request, on_progress=None, cancel=None):
    from ..pipeline import generate
    from ..speak import speak

    d = request.d if isinstance(request, Request) else request
    o = dict(d.get("options") or {})
    voice, rate = o.pop("voice", "en-us"), o.pop("rate", 175)

    class Ev:
        def __init__(self, stage, done, total, fraction):
            self.stage, self.done, self.total, self.fraction = stage, done, total, fraction

    def progress(done, total):
        if cancel is not None and cancel.cancelled:
            raise Cancelled()
        if on_progress:
            on_progress(Ev("render", done, total, 0.3 + 0.7 * done / max(total, 1)))

    if on_progress:
        on_progress(Ev("tts" if d.get("text") else "audio", 0, 0, 0.0))
    if d.get("text") is not None:
        r = speak(d["image"], d["text"], d["output"], voice=voice, rate_wpm=rate, progress=progress, **o)
    else:
        r = generate(d["image"], d["audio"], d["output"], progress=progress, **o)
    return _Result(kind="generate", output=r.path, n_frames=r.n_frames, fps=r.fps, width=r.width, height=r.height,
                   duration_s=r.duration_s, timings_s=r.timings_s, first_frame_s=r.first_frame_s)
