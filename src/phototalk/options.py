"""Every user-facing option of every job kind, defined once (``OptionSpec``): name, type,
default, help, choices and bounds (taken from the code that owns them). The CLI, the
request files of ``phototalk.run`` (and the HTTP, UI and batch front ends) derive their
flags, defaults, help texts and validation from this table.

    option_specs("generate" | "edit" | "dub") -> [OptionSpec]

The options objects ``GenerateOptions``, ``EditOptions`` and ``DubOptions`` are dataclasses
whose fields are those specs; ``validate()`` checks each value against its spec and the
rules that tie options together.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, make_dataclass
from typing import Any

from .errors import InputError

MAX_SEED = 2 ** 63 - 1  # numpy's SeedSequence takes any non-negative integer; this is plenty
FPS_RANGE = (1, 120)  # frames per second of a generated video
CRF_RANGE = (0, 51)  # H.264's quality scale
EASE_MAX_S = 2.0  # s; --ease of edit
LIPSYNC_MODES = ("phones", "loudness")
GAZE_MODES = ("natural", "camera")
REGIONS = ("face", "mouth", "eyes", "head")
DEFAULT_VOICE = "en-us"
DEFAULT_RATE_WPM = 175
TYPES = {"bool": bool, "int": int, "float": float, "str": str, "list": list}


def _bounds():
    """Bounds owned by lower layers, read when the table is built."""
    from .audio.tts import RATE_MAX_WPM, RATE_MIN_WPM
    from .face.image import MAX_OUTPUT_SIDE, MIN_OUTPUT_SIDE
    from .motion.analytic import SINGING_MODES
    from .motion.expressive import EMOTIONS

    return (MIN_OUTPUT_SIDE, MAX_OUTPUT_SIDE), (RATE_MIN_WPM, RATE_MAX_WPM), EMOTIONS, SINGING_MODES


@dataclass(frozen=True)
class OptionSpec:
    """One option. type: bool, int, float, str or list (of str); default None = not given;
    choices: the allowed values (str options); min/max: inclusive bounds (numbers);
    flag: its command-line flag; metavar: the placeholder in help texts."""

    name: str
    type: type
    default: Any
    help: str
    choices: tuple | None = None
    min: float | None = None
    max: float | None = None
    metavar: str | None = None
    unit: str = ""  # appended to bound errors ("words per minute")
    path: bool = False  # a file path: a request's base_dir applies to it

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def parse(self, value: Any) -> Any:
        """``value`` (as JSON gives it, or a Python value) checked against this spec and
        converted to its type; None stays None (not given). Raises InputError (one line)."""
        if value is None:
            return None
        t = self.type
        if t is bool:
            if not isinstance(value, bool):
                raise InputError(f"{self.flag} must be true or false, got {value!r}")
        elif t is int:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    (isinstance(value, float) and not value.is_integer()):
                raise InputError(f"{self.flag} must be a whole number, got {value!r}")
            value = int(value)
        elif t is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InputError(f"{self.flag} must be a number, got {value!r}")
            value = float(value)
        elif t is list:
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                raise InputError(f"{self.flag} must be a list of strings, got {value!r}")
            value = list(value)
        elif not isinstance(value, str):
            raise InputError(f"{self.flag} must be a string, got {value!r}")
        self.check(value)
        return value

    def check(self, value: Any) -> None:
        """Bounds and choices of an already typed value (None passes)."""
        if value is None:
            return
        if self.choices is not None and value not in self.choices:
            raise InputError(f"{self.flag} must be {_one_of(self.choices)}, got {value!r}")
        lo, hi = self.min, self.max
        if lo is not None and hi is not None and not lo <= value <= hi:
            unit = f" {self.unit}" if self.unit else ""
            raise InputError(f"{self.flag} must be between {lo:g} and {hi:g}{unit}, got {value:g}"
                             if self.type is float else
                             f"{self.flag} must be between {lo} and {hi}{unit}, got {value}")
        if lo is not None and hi is None and value < lo:
            raise InputError(f"{self.flag} must be {lo} or more, got {value}")

    def to_dict(self) -> dict:
        """JSON form (for a UI or an HTTP schema)."""
        return {"name": self.name, "type": self.type.__name__, "default": self.default, "help": self.help,
                "choices": list(self.choices) if self.choices else None, "min": self.min, "max": self.max,
                "metavar": self.metavar, "flag": self.flag}


def _one_of(choices) -> str:
    c = [str(x) for x in choices]
    return f"{', '.join(c[:-1])} or {c[-1]}" if len(c) > 1 else c[0]


def _table() -> dict[str, OptionSpec]:
    size, rate, emotions, singing = _bounds()
    S = OptionSpec
    specs = [
        S("fps", float, 25.0, "frames per second of the video", min=FPS_RANGE[0], max=FPS_RANGE[1], metavar="FPS"),
        S("size", int, None, "longer side of the video in pixels (default: the image's, at most 1024)",
          min=size[0], max=size[1], metavar="N", unit="pixels"),
        S("seed", int, 0, "random seed for blinks and head motion: same seed, same video", min=0, max=MAX_SEED,
          metavar="N"),
        S("face_index", int, None, "which face to animate when the image has several (0 = leftmost)", min=0,
          metavar="K"),
        S("crf", int, 20, "H.264 quality, 0 (lossless RGB: bit-exact frames, fewer players) .. 51 (worst); "
                          "18-23 is visually transparent", min=CRF_RANGE[0], max=CRF_RANGE[1], metavar="Q"),
        S("save_track", str, None, "also write the MotionTrack (per-frame controls) as JSON here",
          metavar="PATH.json", path=True),
        S("transcript", str, None, "the words spoken (English): phones are then aligned to them, which gives the "
                                   "most exact lip sync", metavar="TEXT"),
        S("transcript_file", str, None, "read --transcript from this text file", metavar="PATH", path=True),
        S("lipsync", str, "phones", "mouth driver: 'phones' (visemes from recognised or aligned phones) or "
                                    "'loudness' (opening follows the volume; for any language or sound)",
          choices=LIPSYNC_MODES, metavar="MODE"),
        S("speed", float, 1.0, "tempo and size of head, brow and gaze motion: 0.1 (calm) .. 1.9 (lively)",
          min=0.1, max=1.9, metavar="S"),
        S("still", bool, False, "no head motion (lips, eyes, brows and breathing still move)"),
        S("emotion", str, "neutral", "expression under the speech: neutral, happy, sad, angry or surprised",
          choices=emotions, metavar="E"),
        S("emotion_strength", float, 0.8, "how strong the --emotion is, 0 .. 1", min=0.0, max=1.0, metavar="X"),
        S("gaze", str, "natural", "eyes: 'natural' (fixations, saccades, glances away) or 'camera' "
                                  "(hold eye contact)", choices=GAZE_MODES, metavar="MODE"),
        S("singing", str, "auto", "'on' for a song: held notes keep an open vowel that moves with pitch and "
                                  "loudness, and the head sways with the phrase instead of nodding; 'auto' "
                                  "decides from the audio (mostly sustained notes), 'off' always speech. "
                                  "Text input is speech unless 'on'", choices=singing, metavar="MODE"),
        S("region", str, None, "animate only this region: face, mouth, eyes or head; every pixel outside it "
                               "stays the input's", choices=REGIONS, metavar="R"),
        S("region_box", str, None, "animate only inside this box of the output frame, in pixels",
          metavar="X,Y,W,H"),
        S("track_in", str, None, "MotionTrack JSON (full or partial: some channels, or time ranges) that "
                                 "overrides the generated motion", metavar="PATH.json", path=True),
        S("export_arkit", str, None, "also write the face motion as 52 ARKit blendshapes per frame "
                                     "(Live Link Face CSV)", metavar="PATH.csv", path=True),
        S("motion_model", str, "analytic", "motion model: 'analytic' (rules over phones and prosody) or a learned "
                                           "model file", metavar="NAME|PATH"),
        S("personalize", bool, False, "learn how this speaker's lips follow their voice from the video's own "
                                      "soundtrack, and apply it to the new speech"),
        S("voice", str, DEFAULT_VOICE, "voice or language of the speech, e.g. en-us, en-gb, cmn, es, fr, de, ja "
                                       "(`phototalk voices` lists them)", metavar="V"),
        S("rate", int, DEFAULT_RATE_WPM, f"speaking rate in words per minute ({rate[0]}-{rate[1]})", min=rate[0],
          max=rate[1], metavar="WPM", unit="words per minute"),
        S("save_audio", str, None, "also write the synthesised speech here as WAV", metavar="PATH.wav",
          path=True),
        # edit / dub
        S("close_mouth", list, [], "shut the lips over T0-T1 (seconds; repeat for more ranges)", metavar="T0-T1"),
        S("close_eyes", list, [], "shut the eyes over T0-T1", metavar="T0-T1"),
        S("no_blink", list, [], "keep the eyes open over T0-T1 (blinks replaced by open eyes of a nearby frame)",
          metavar="T0-T1"),
        S("ease", float, 0.12, "seconds to close before a range and reopen after it; 0 leaves every frame "
                               "outside the ranges untouched", min=0.0, max=EASE_MAX_S, metavar="S"),
        S("lossless", bool, False, "lossless RGB H.264 (bit-exact frames; large files, fewer players)"),
    ]
    return {s.name: s for s in specs}


SPECS = _table()

GENERATE = ("fps", "size", "seed", "face_index", "crf", "save_track", "transcript", "transcript_file", "lipsync",
            "speed", "still", "emotion", "emotion_strength", "gaze", "singing", "region", "region_box", "track_in",
            "export_arkit", "motion_model")
SPEECH = ("voice", "rate", "save_audio")  # text input of generate
EDIT = ("close_mouth", "close_eyes", "no_blink", "ease", "crf", "lossless")
DUB = ("voice", "rate", "transcript", "motion_model", "personalize", "crf", "lossless")
KINDS = {"generate": GENERATE + SPEECH, "edit": EDIT, "dub": DUB}


def option_specs(kind: str) -> list[OptionSpec]:
    """Every option of a ``kind`` of job ("generate", "edit", "dub"), in CLI order."""
    try:
        return [SPECS[n] for n in KINDS[kind]]
    except KeyError:
        raise InputError(f"kind must be generate, edit or dub, got {kind!r}") from None


def _opt(name: str):
    s = SPECS[name]
    default = s.default
    if isinstance(default, list):
        return field(default_factory=list, metadata={"spec": s})
    return field(default=default, metadata={"spec": s})


class _Options:
    """Shared behaviour of the options objects."""

    def check_specs(self) -> None:
        for f in fields(self):
            f.metadata["spec"].check(getattr(self, f.name))

    def validate(self):
        """Check every value against its spec (subclasses add the rules between options)."""
        self.check_specs()
        return self

    def to_dict(self) -> dict:
        return {f.name: (list(getattr(self, f.name)) if isinstance(getattr(self, f.name), (list, tuple))
                         else getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "_Options":
        """Typed, checked options from a JSON-like dict (unknown names are errors)."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise InputError(f"unknown option {unknown[0]!r} (known: {', '.join(sorted(names))})")
        return cls(**{k: SPECS[k].parse(v) for k, v in d.items()}).validate()


class _GenerateRules(_Options):
    """The rules between generate's options, and derived values."""

    def validate(self) -> "_GenerateRules":
        self.check_specs()
        if self.transcript and self.transcript_file:
            raise InputError("give either --transcript or --transcript-file, not both")
        if self.region and self.region_box:
            raise InputError("give either --region or --region-box, not both")
        if self.region_box is not None:
            self.region_box_px()
        return self

    def region_box_px(self) -> tuple[int, int, int, int] | None:
        """--region-box as (x, y, w, h) integers, or None."""
        if self.region_box is None:
            return None
        if isinstance(self.region_box, (tuple, list)):
            parts = list(self.region_box)
        else:
            parts = str(self.region_box).replace(" ", "").split(",")
        try:
            x, y, w, h = (int(round(float(v))) for v in parts)
        except (TypeError, ValueError, OverflowError):  # OverflowError: inf
            raise InputError(f"--region-box must be four numbers X,Y,W,H (pixels), got {self.region_box!r}") \
                from None
        if w <= 0 or h <= 0 or x < 0 or y < 0:
            raise InputError(f"--region-box needs X,Y >= 0 and W,H > 0, got {x},{y},{w},{h}")
        return x, y, w, h

    def transcript_text(self) -> str | None:
        """The transcript, read from --transcript-file when that is given."""
        return transcript_text(self.transcript, self.transcript_file)

    def still_head(self) -> bool:
        """--still, or a face/mouth/eyes region or a box: a region cannot show a head turn."""
        return self.still or (self.region not in (None, "head")) or self.region_box is not None


def transcript_text(transcript: str | None, transcript_file: str | None) -> str | None:
    """The transcript given inline or read from its file (checked against the limits)."""
    from .validate import check_text, read_text

    if not transcript_file:
        return None if transcript is None else check_text(transcript, "transcript", "max_transcript_chars")
    return read_text(transcript_file, "transcript file", "max_transcript_chars")


def _options_class(name: str, names: tuple[str, ...], base: type, doc: str) -> type:
    """A dataclass with one field per option of ``names``, default and spec from SPECS:
    the options objects list no option a second time."""
    cls = make_dataclass(name, [(n, SPECS[n].type if SPECS[n].default is not None else SPECS[n].type | None, _opt(n))
                                for n in names], bases=(base,))
    cls.__doc__ = doc
    cls.__module__ = __name__
    return cls


GenerateOptions = _options_class("GenerateOptions", GENERATE, _GenerateRules,
                                 "Options of ``generate`` (portrait + audio or text), as in ``option_specs``.")
EditOptions = _options_class("EditOptions", EDIT, _Options,
                             "Options of ``edit``: time ranges ('T0-T1' seconds) to change, easing and encoding.")
DubOptions = _options_class("DubOptions", DUB, _Options,
                            "Options of ``dub``: the voice of text input, the transcript of audio input, encoding.")
