"""Every user-facing option of `generate`, defined once. The CLI (and later HTTP/UI
front ends) derive their flags, defaults and help texts from this table."""
from __future__ import annotations

from dataclasses import dataclass, field, fields

from .errors import InputError

MAX_SEED = 2 ** 63 - 1  # numpy's SeedSequence takes any non-negative integer; this is plenty


SINGING_MODES = ("auto", "on", "off")  # --singing: decide from the audio, always a song, always speech


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
    crf: int = _opt(20, "H.264 quality, 0 (lossless RGB: bit-exact frames, fewer players) .. 51 (worst); "
                        "18-23 is visually transparent", metavar="Q")
    save_track: str | None = _opt(None, "also write the MotionTrack (per-frame controls) as JSON here",
                                  metavar="PATH.json")
    transcript: str | None = _opt(None, "the words spoken (English): phones are then aligned to them, "
                                        "which gives the most exact lip sync", metavar="TEXT")
    transcript_file: str | None = _opt(None, "read --transcript from this text file", metavar="PATH")
    lipsync: str = _opt("phones", "mouth driver: 'phones' (visemes from recognised or aligned phones) or "
                                  "'loudness' (opening follows the volume; for any language or sound)",
                        metavar="MODE", choices=("phones", "loudness"))
    speed: float = _opt(1.0, "tempo and size of head, brow and gaze motion: 0.1 (calm) .. 1.9 (lively)",
                        metavar="S")
    still: bool = _opt(False, "no head motion (lips, eyes, brows and breathing still move)")
    emotion: str = _opt("neutral", "expression under the speech: neutral, happy, sad, angry or surprised",
                        metavar="E", choices=("neutral", "happy", "sad", "angry", "surprised"))
    emotion_strength: float = _opt(0.8, "how strong the --emotion is, 0 .. 1", metavar="X")
    gaze: str = _opt("natural", "eyes: 'natural' (fixations, saccades, glances away) or 'camera' "
                                "(hold eye contact)", metavar="MODE", choices=("natural", "camera"))
    singing: str = _opt("auto", "'on' for a song: held notes keep an open vowel that moves with pitch and "
                                "loudness, and the head sways with the phrase instead of nodding; 'auto' "
                                "decides from the audio (mostly sustained notes), 'off' always speech. "
                                "Text input is speech unless 'on'", metavar="MODE", choices=SINGING_MODES)
    region: str | None = _opt(None, "animate only this region: face, mouth, eyes or head; every pixel "
                                    "outside it stays the input's", metavar="R",
                              choices=("face", "mouth", "eyes", "head"))
    region_box: str | None = _opt(None, "animate only inside this box of the output frame, in pixels",
                                  metavar="X,Y,W,H")
    track_in: str | None = _opt(None, "MotionTrack JSON (full or partial: some channels, or time ranges) "
                                      "that overrides the generated motion", metavar="PATH.json")
    export_arkit: str | None = _opt(None, "also write the face motion as 52 ARKit blendshapes per frame "
                                          "(Live Link Face CSV)", metavar="PATH.csv")
    motion_model: str | None = _opt(None, "mouth motion from this learned model (`phototalk train-motion`); "
                                          "/p b m/ closures still come from the phones", metavar="MODEL.npz")

    def validate(self) -> "GenerateOptions":
        if not 0 <= self.seed <= MAX_SEED:
            raise InputError(f"--seed must be between 0 and {MAX_SEED}, got {self.seed}")
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
        if not 0.1 <= self.speed <= 1.9:
            raise InputError(f"--speed must be between 0.1 and 1.9, got {self.speed:g}")
        if self.emotion not in ("neutral", "happy", "sad", "angry", "surprised"):
            raise InputError(f"--emotion must be neutral, happy, sad, angry or surprised, got {self.emotion!r}")
        if not 0 <= self.emotion_strength <= 1:
            raise InputError(f"--emotion-strength must be between 0 and 1, got {self.emotion_strength:g}")
        if self.gaze not in ("natural", "camera"):
            raise InputError(f"--gaze must be 'natural' or 'camera', got {self.gaze!r}")
        if self.singing not in SINGING_MODES:
            raise InputError(f"--singing must be auto, on or off, got {self.singing!r}")
        if self.region is not None and self.region not in ("face", "mouth", "eyes", "head"):
            raise InputError(f"--region must be face, mouth, eyes or head, got {self.region!r}")
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
        from .validate import check_text, read_text

        if not self.transcript_file:
            return None if self.transcript is None else check_text(self.transcript, "transcript",
                                                                   "max_transcript_chars")
        return read_text(self.transcript_file, "transcript file", "max_transcript_chars")


def option_fields():
    """(name, default, type, metadata) of every option, in definition order."""
    hints = {"fps": float, "size": int, "seed": int, "face_index": int, "crf": int, "save_track": str,
             "transcript": str, "transcript_file": str, "lipsync": str, "speed": float, "still": bool,
             "emotion": str, "emotion_strength": float, "gaze": str, "singing": str, "region": str, "region_box": str,
             "track_in": str, "export_arkit": str,
             "motion_model": str}
    return [(f.name, f.default, hints[f.name], f.metadata) for f in fields(GenerateOptions)]


@dataclass
class SpeechOptions:
    """Options of text input (``--text``/``--text-file``), spoken by the built-in espeak-ng voice."""

    voice: str = _opt("en-us", "voice or language of the speech, e.g. en-us, en-gb, cmn, es, fr, de, ja "
                               "(`phototalk voices` lists them)", metavar="V")
    rate: int = _opt(175, "speaking rate in words per minute (80-450)", metavar="WPM")
    save_audio: str | None = _opt(None, "also write the synthesised speech here as WAV", metavar="PATH.wav")


def speech_option_fields():
    """(name, default, type, metadata) of every text-input option, in definition order."""
    hints = {"voice": str, "rate": int, "save_audio": str}
    return [(f.name, f.default, hints[f.name], f.metadata) for f in fields(SpeechOptions)]
