"""The pipeline: image + speech -> MP4, as numbered steps over injected stages."""
from __future__ import annotations

import logging
import os
import time
from typing import Callable

import numpy as np

from .audio.io import Speech, load_speech
from .core import job
from .core.result import Result
from .errors import InputError
from .face.analyze import FaceRig, analyze_face
from .face.image import load_image, output_size, resize_to
from .motion.base import get_motion_model
from .motion.frontal import portrait_pose, toward_frontal
from .motion.arkit import write_arkit_csv
from .motion.track import MotionTrack, apply_overrides, load_overrides
from .options import GenerateOptions
from .render.base import get_renderer
from .render.warp import RenderStats
from .validate import check_job, input_file
from .video.encode import VideoWriter
from .video.stream import render_encode

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (frames done, frames total)


GenerateResult = Result  # the name generate's result had; one Result type for every job


def generate_options(options: dict) -> GenerateOptions:
    """``GenerateOptions`` from keyword options, checked; an unknown name is an InputError."""
    try:
        return GenerateOptions(**options).validate()
    except TypeError as e:
        raise InputError(str(e)) from None


def write_track_files(track: MotionTrack, opts: GenerateOptions) -> None:
    """--save-track (MotionTrack JSON) and --export-arkit (ARKit CSV), when asked."""
    if opts.save_track:
        track.save_json(opts.save_track)
    if opts.export_arkit:
        write_arkit_csv(track, opts.export_arkit)


def fit_to_portrait(track: MotionTrack, rig: FaceRig) -> MotionTrack:
    """``track``, generated relative to the photo, with its head turns bent towards frontal
    for the head's own pose in ``rig`` (see ``motion.frontal``)."""
    return toward_frontal(track, portrait_pose(rig.landmarks))


def prepare_rig(image: str | os.PathLike | np.ndarray, *, size: int | None = None,
                face_index: int | None = None) -> FaceRig:
    """Load (a path, or an (H, W, 3) uint8 RGB array), resize to the output size and
    analyse the portrait."""
    with job.stage("face"):
        img = np.ascontiguousarray(image[..., :3]) if isinstance(image, np.ndarray) else load_image(image)
        w, h = output_size(img.shape[1], img.shape[0], size)
        return analyze_face(resize_to(img, w, h), face_index=face_index)


def render_video(rig: FaceRig, track, speech: Speech | str | os.PathLike | None, out: str | os.PathLike, *,
                 crf: int = 20, progress: Progress | None = None, timings: dict | None = None,
                 fps: float | None = None, n_frames: int | None = None, region: str | None = None,
                 region_box: tuple[int, int, int, int] | None = None,
                 stats: dict | None = None, renderer_name: str | None = None) -> tuple[int, float]:
    """Render ``track`` on ``rig`` and stream it with the speech's audio into ``out``.
    region / region_box (x, y, w, h px): only that part of the frame moves.

    track: a MotionTrack, or an iterable of consecutive MotionTrack chunks, each rendered
    as it arrives (long inputs stream; then give ``fps``, and ``n_frames``, their total,
    for progress). speech: a Speech, an audio file path, or None. stats: filled with the
    renderer's per-frame warp checks (``RenderStats.summary``) when given. renderer_name:
    see ``render.base.get_renderer`` (None: the default).
    Returns (frames written, perf_counter() time when the first frame was encoded)."""
    t0 = time.perf_counter()
    timings = {} if timings is None else timings
    renderer = get_renderer(renderer_name)(rig)
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
    if isinstance(track, MotionTrack):
        chunks, n, fps = [track], track.n_frames, track.fps
    else:
        chunks, n = track, n_frames or 0
    checks = RenderStats()

    def frames():  # (chunk, frame index in it); the next chunk is computed as it is reached
        for chunk in chunks:
            for i in range(chunk.n_frames):
                yield chunk, i

    def render(item) -> np.ndarray:
        frame = renderer.render_frame(*item)
        checks.add(renderer.last_stats)
        return frame

    # crf 0 asks for lossless: RGB H.264, so decoded frames equal the rendered ones bit
    # for bit (yuv420p would subsample the colour even at crf 0).
    with VideoWriter(out, w, h, fps, audio=audio, crf=crf, lossless=crf == 0) as writer:
        st = render_encode(writer, frames(), render, total=n, progress=progress)
        te = time.perf_counter()
    t_render, t_encode = st.render_s, st.encode_s + time.perf_counter() - te  # + flushing the encoder and audio
    done, first = st.frames, st.first_frame_t
    timings["render"] = t_render
    timings["encode"] = t_encode
    if stats is not None:
        stats.update(checks.summary())
    return done, first


def generate(image: str | os.PathLike | np.ndarray, audio: str | os.PathLike | Speech, out: str | os.PathLike, *,
             progress: Progress | None = None, phones=None, **options) -> Result:
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
    opts = generate_options(options)
    out = check_job({"--image": image, "--audio": None if isinstance(audio, Speech) else audio,
                     "--track-in": opts.track_in, "--transcript-file": opts.transcript_file},
                    {"--output": out, "--save-track": opts.save_track, "--export-arkit": opts.export_arkit})["--output"]
    if isinstance(image, (str, os.PathLike)):
        # Decoded now (a few MB): a missing, broken or oversized image fails before the
        # speech recognition loads its models (~200 MB).
        image = load_image(input_file(image, "image"))
    overrides = load_overrides(opts.track_in) if opts.track_in else None
    motion_model = get_motion_model(opts.motion_model)
    transcript = opts.transcript_text()
    # 2. audio (cheap, and a bad file should fail before face analysis)
    ta = time.perf_counter()
    with job.stage("audio"):
        speech = audio if isinstance(audio, Speech) else load_speech(audio)
    timings["audio"] = time.perf_counter() - ta
    # 3. phones (pocketsphinx), given, aligned to the transcript, or recognised. Not beside
    #    the face analysis: pocketsphinx holds the GIL while it decodes (a Python loop
    #    beside it ran 39 times in 1.3 s instead of 11,264), so nothing ran in parallel,
    #    and the face analysis' memory came on top of the whole recording's.
    ta = time.perf_counter()
    if phones is None and opts.lipsync == "phones":
        from .motion.visemes import phones_for_lips

        with job.stage("phones"):
            # checked between decode pieces (<= audio.phones.CHUNK_S of audio each): pocketsphinx
            # holds the GIL while it decodes, so a cancel waits for the piece (~1-2 s per 8 s here).
            # Without a transcript Whisper writes the words; where it cannot (not English),
            # allphone guesses, whose misheard /b m/ still close the lips.
            phones = phones_for_lips(speech, transcript)
    timings["phones"] = time.perf_counter() - ta
    # 4. motion: phones -> visemes, prosody -> head, brows, blinks
    ta = time.perf_counter()
    with job.stage("motion"):
        track = motion_model(speech, opts.fps, seed=opts.seed, phones=phones if opts.lipsync == "phones" else None,
                             speed=opts.speed, still=opts.still_head(), emotion=opts.emotion,
                             emotion_strength=opts.emotion_strength, gaze=opts.gaze, singing=opts.singing)
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
    # 5b. on a turned or tilted portrait the head leans towards frontal; --track-in's channels then win
    track = fit_to_portrait(track, rig)
    if overrides is not None:
        track = apply_overrides(track, overrides)
    write_track_files(track, opts)  # once the face is known to be usable, so a failed job leaves none
    # 6. render + encode, streamed
    stats: dict = {}
    n, first = render_video(rig, track, sound, out, crf=opts.crf, progress=progress, timings=timings,
                            region=opts.region, region_box=opts.region_box_px(), stats=stats)
    timings["total"] = time.perf_counter() - t0
    h, w = rig.image.shape[:2]
    log.info("wrote %s: %d frames, %dx%d, %.2f s", out, n, w, h, n / opts.fps)
    return Result(kind="generate", output=out, n_frames=n, fps=opts.fps, width=w, height=h, duration_s=duration_s,
                          timings_s=timings, first_frame_s=first - t0, render_stats=stats)
