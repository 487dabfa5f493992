"""What a job produced: one type for every pipeline (generate, speak, edit, dub)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass
class Result:
    """kind: generate | edit | dub; output: the MP4's path; duration_s: seconds of speech
    (edit: of the video); timings_s: seconds per stage (audio, tts, phones, face, motion,
    render, encode, total, and the finer ones a pipeline measures); first_frame_s: seconds
    from the start until the first frame was encoded (0 where not measured); render_stats:
    the renderer's per-frame checks (``RenderStats.summary``); frames_with_face: frames
    where a face was tracked (edit and dub only)."""

    kind: str
    output: str
    n_frames: int
    fps: float
    width: int
    height: int
    duration_s: float
    timings_s: dict = field(default_factory=dict)
    first_frame_s: float = 0.0
    render_stats: dict = field(default_factory=dict)
    frames_with_face: int | None = None

    @property
    def path(self) -> str:
        """The output's path (the name ``generate``'s and ``edit_video``'s results used)."""
        return self.output

    def to_dict(self) -> dict:
        """JSON-able form, seconds rounded to 0.1 ms."""
        return {"kind": self.kind, "output": os.path.abspath(self.output), "n_frames": self.n_frames, "fps": self.fps,
                "width": self.width, "height": self.height, "duration_s": round(self.duration_s, 3),
                "timings_s": {k: round(v, 4) for k, v in self.timings_s.items()},
                "first_frame_s": round(self.first_frame_s, 3), "render_stats": self.render_stats,
                "frames_with_face": self.frames_with_face}
