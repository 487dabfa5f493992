"""The pipeline: image + speech -> MP4, as numbered steps over injected stages."""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .audio.io import Speech, load_speech
from .errors import InputError
from .face.analyze import FaceRig, analyze_face
from .face.image import load_image, output_size, resize_to
from .motion.analytic import analytic_motion
from .motion.arkit import write_arkit_csv
from .motion.track import MotionTrack, apply_overrides, load_overrides
from .options import GenerateOptions
from .render.warp import MeshWarpRenderer, RenderStats
from .validate import check_job, input_file
from .video.encode import VideoWriter

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (frames done, frames total)


@dataclass
class GenerateResult:
    """What `generate` produced. timings_s: seconds per stage (analysis, motion, render,
    encode, total); first_frame_s: seconds from the call until frame 0 was encoded;
    render_stats: the renderer's per-frame warp checks (see ``RenderStats.summary``)."""

    path: str
    n_frames: int
    fps: float
    width: int
    height: int
    duration_s: float
    timings_s: dict = field(default_factory=dict)
    first_frame_s: float = 0.0
    render_stats: dict = field(default_factory=dict)


def prepare_rig(image: str | os.PathLike | np.ndarray, *, size: int | None = None,
                face_index: int | None = None) -> FaceRig:
    """Load (a path, or an (H, W, 3) uint8 RGB array), resize to the output size and
    analyse the portrait."""
    img = np.ascontiguousarray(image[..., :3]) if isinstance(image, np.ndarray) else load_image(image)
    w, h = output_size(img.shape[1], img.shape[0], size)
    return analyze_face(resize_to(img, w, h), face_index=face_index)


def render_video(rig: FaceRig, track, speech: Speech | str | os.PathLike | None, out: str | os.PathLike, *,
                 crf: int = 20, progress: Progress | None = None, timings: dict | None = None,
                 fps: float | None = None, n_frames: int | None = None, region: str | None = None,
                 region_box: tuple[int, int, int, int] | None = None,
                 stats: dict | None = None) -> tuple[int, float]:
    """Render ``track`` on ``rig`` and stream it with the speech's audio into ``out``.
    region / region_box (x, y, w, h px): only that part of the frame moves.

    track: a MotionTrack, or an iterable of consecutive MotionTrack chunks, each rendered
    as it arrives (long inputs stream; then give ``fps``, and ``n_frames``, their total,
    for progress). speech: a Speech, an audio file path, or None. stats: filled with the
    renderer's per-frame warp checks (``RenderStats.summary``) when given.
    Returns (frames written, perf_counter() time when the first frame was encoded)."""
    t0 = time.perf_counter()
    timings = {} if timings is None else timings
    renderer = MeshWarpRenderer(rig)
    h, w = rig.image.shape[:2]
    if region_box is not None:
        x, y, bw, bh = region_box
        if x >= w or y >= h:
            raise InputError(f"--region-box {x},{y},{bw},{bh} lies outside the {w}x{h} video")
    if region is not None or region_box is not None:
        renderer.set_region(region, region_box)
    timings["render_setup"] = time.perf_counter() - t0
    audio = None
    if isinstance(speech, (str, os.PathLike)):
        audio = os.fspath(speech)
    elif speech is not None:
        audio = speech.path if speech.path else (speech.samples, speech.sr)
    t_render = t_encode = 0.0
    first = 0.0
    if isinstance(track, MotionTrack):
        chunks, n, fps = [track], track.n_frames, track.fps
    else:
        chunks, n = track, n_frames or 0
    done = 0
    checks = RenderStats()
    # crf 0 asks for lossless: RGB H.264, so decoded frames equal the rendered ones bit
    # for bit (yuv420p would subsample the colour even at crf 0).
    with VideoWriter(out, w, h, fps, audio=audio, crf=crf, lossless=crf == 0) as writer:
        for chunk in chunks:
            for i in range(chunk.n_frames):
                ta = time.perf_counter()
                frame = renderer.render_frame(chunk, i)
                tb = time.perf_counter()
                checks.add(renderer.last_stats)
                writer.write(frame)
                tc = time.perf_counter()
                t_render += tb - ta
                t_encode += tc - tb
                done += 1
                if done == 1:
                    first = tc
                if progress is not None:
                    progress(done, max(n, done))
        te = time.perf_counter()
    t_encode += time.perf_counter() - te  # flushing the encoder and the rest of the audio
    timings["render"] = t_render
    timings["encode"] = t_encode
    if stats is not None:
        stats.update(checks.summary())
    return done, first


def motion_function(model: str | None):
    """analytic_motion, or a learned model's (``--motion-model``), loaded before any work."""
    if not model:
        return analytic_motion
    from .motion.learned import load_motion

    return load_motion(model)


def generate(image: str | os.PathLike | np.ndarray, audio: str | os.PathLike | Speech, out: str | os.PathLike, *,
             progress: Progress | None = None, phones=None, **options) -> GenerateResult:
    """Make ``out`` (MP4) of the portrait in ``image`` speaking ``audio``.

    image: a path or an (H, W, 3) uint8 RGB array. audio: a path (any format FFmpeg
    decodes) or a ``Speech`` (e.g. synthesised). phones: optional timed ARPAbet phones
    [(label, start_s, end_s)] for the audio (e.g. from the TTS); with them the mouth
    articulates visemes instead of following loudness.
    options: see ``GenerateOptions`` (fps, size, seed, face_index, crf, save_track).
    Raises ``PhototalkError`` subclasses with one-line messages on bad input.
    """
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    # 1. check inputs before any expensive work
    try:
        opts = GenerateOptions(**options).validate()
    except TypeError as e:
        raise InputError(str(e)) from None
    out = check_job({"--image": image, "--audio": None if isinstance(audio, Speech) else audio,
                     "--track-in": opts.track_in, "--transcript-file": opts.transcript_file},
                    {"--output": out, "--save-track": opts.save_track, "--export-arkit": opts.export_arkit})["--output"]
    if isinstance(image, (str, os.PathLike)):
        input_file(image, "image")  # decoded later; a missing one fails now
    overrides = load_overrides(opts.track_in) if opts.track_in else None
    motion_fn = motion_function(opts.motion_model)
    transcript = opts.transcript_text()
    # 2. audio (cheap, and a bad file should fail before face analysis)
    ta = time.perf_counter()
    speech = audio if isinstance(audio, Speech) else load_speech(audio)
    timings["audio"] = time.perf_counter() - ta
    # 3. phones (pocketsphinx), given, aligned to the transcript, or recognised. Not beside
    #    the face analysis: pocketsphinx holds the GIL while it decodes (a Python loop
    #    beside it ran 39 times in 1.3 s instead of 11,264), so nothing ran in parallel,
    #    and the face analysis' memory came on top of the whole recording's.
    ta = time.perf_counter()
    if phones is None and opts.lipsync == "phones":
        from .audio.phones import phones_for

        phones = [(p.label, p.start_s, p.end_s) for p in phones_for(speech, transcript)]
        if not transcript:  # recognised: the place of stops and nasals is a guess
            from .motion.visemes import close_uncertain_stops

            phones = close_uncertain_stops(phones, speech.samples, speech.sr)
    timings["phones"] = time.perf_counter() - ta
    # 4. motion: phones -> visemes, prosody -> head, brows, blinks
    ta = time.perf_counter()
    # A face/mouth/eyes region cannot show a head turn: its head stays still.
    still = opts.still or (opts.region not in (None, "head")) or opts.region_box is not None
    track = motion_fn(speech, opts.fps, seed=opts.seed, phones=phones if opts.lipsync == "phones" else None,
                            speed=opts.speed, still=still, emotion=opts.emotion,
                            emotion_strength=opts.emotion_strength, gaze=opts.gaze, singing=opts.singing)
    if overrides is not None:
        track = apply_overrides(track, overrides)
    timings["motion"] = time.perf_counter() - ta
    # The samples are done with: a file's own audio is re-read by the muxer, so its decoded
    # samples (4 bytes a sample: 38 MB for 10 min) go before the face analysis and rendering
    # (10 min of speech at --size 256 peaked at 379 MB against 315 MB for 10 s with them kept).
    duration_s = speech.duration_s
    sound, speech = (speech.path or speech), None
    # 5. face analysis
    ta = time.perf_counter()
    rig = prepare_rig(image, size=opts.size, face_index=opts.face_index)
    timings["analysis"] = time.perf_counter() - ta
    if opts.save_track:  # written once the face is known to be usable, so a failed job leaves none
        track.save_json(opts.save_track)
    if opts.export_arkit:
        write_arkit_csv(track, opts.export_arkit)
    # 6. render + encode, streamed
    stats: dict = {}
    n, first = render_video(rig, track, sound, out, crf=opts.crf, progress=progress, timings=timings,
                            region=opts.region, region_box=opts.region_box_px(), stats=stats)
    timings["total"] = time.perf_counter() - t0
    h, w = rig.image.shape[:2]
    log.info("wrote %s: %d frames, %dx%d, %.2f s", out, n, w, h, n / opts.fps)
    return GenerateResult(path=out, n_frames=n, fps=opts.fps, width=w, height=h, duration_s=duration_s,
                          timings_s=timings, first_frame_s=first - t0, render_stats=stats)
