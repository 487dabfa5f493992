"""Every user-facing option of `generate`, defined once. The CLI (and later HTTP/UI
front ends) derive their flags, defaults and help texts from this table."""
from __future__ import annotations

from dataclasses import dataclass, field, fields

from .errors import InputError


def _opt(default, help: str, *, flag: str | None = None, metavar: str | None = None, **kw):
    return field(default=default, metadata={"help": help, "flag": flag, "metavar": metavar, **kw})


@dataclass
class GenerateOptions:
    fps: float = _opt(25.0, "frames per second of the video", metavar="FPS")
    size: int | None = _opt(None, "longer side of the video in pixels (default: the image's, at most 1024)",
                            metavar="N")
    seed: int = _opt(0, "random seed for blinks and head motion: same seed, same video", metavar="N")
    face_index: int | None = _opt(None, "which face to animate when the image has several (0 = leftmost)",
                                  metavar="K")
    crf: int = _opt(20, "H.264 quality, 0 (lossless) .. 51 (worst); 18-23 is visually transparent", metavar="Q")
    save_track: str | None = _opt(None, "also write the MotionTrack (per-frame controls) as JSON here",
                                  metavar="PATH.json")
    transcript: str | None = _opt(None, "the words spoken (English): phones are then aligned to them, "
                                        "which gives the most exact lip sync", metavar="TEXT")
    transcript_file: str | None = _opt(None, "read --transcript from this text file", metavar="PATH")
    lipsync: str = _opt("phones", "mouth driver: 'phones' (visemes from recognised or aligned phones) or "
                                  "'loudness' (opening follows the volume; for any language or sound)",
                        metavar="MODE", choices=("phones", "loudness"))

    def validate(self) -> "GenerateOptions":
        if not 1 <= self.fps <= 120:
            raise InputError(f"--fps must be between 1 and 120, got {self.fps:g}")
        if self.face_index is not None and self.face_index < 0:
            raise InputError(f"--face-index must be 0 or more, got {self.face_index}")
        if not 0 <= self.crf <= 51:
            raise InputError(f"--crf must be between 0 and 51, got {self.crf}")
        if self.lipsync not in ("phones", "loudness"):
            raise InputError(f"--lipsync must be 'phones' or 'loudness', got {self.lipsync!r}")
        if self.transcript and self.transcript_file:
            raise InputError("give either --transcript or --transcript-file, not both")
        return self

    def transcript_text(self) -> str | None:
        """The transcript, read from --transcript-file when that is given."""
        if not self.transcript_file:
            return self.transcript
        try:
            with open(self.transcript_file, encoding="utf-8") as f:
                return f.read()
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"cannot read transcript file {self.transcript_file}: {e}") from None


def option_fields():
    """(name, default, type, metadata) of every option, in definition order."""
    hints = {"fps": float, "size": int, "seed": int, "face_index": int, "crf": int, "save_track": str,
             "transcript": str, "transcript_file": str, "lipsync": str}
    return [(f.name, f.default, hints[f.name], f.metadata) for f in fields(GenerateOptions)]
