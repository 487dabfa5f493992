"""Editing and dubbing real talking videos, as numbered steps.

Both commands read the video twice: pass 1 tracks the face in every frame (landmarks
only are kept, ~6 KB a frame), pass 2 decodes again, edits each frame from its smoothed
landmarks and streams it to the encoder. Memory therefore does not grow with the
length, except when dubbing longer audio, where the frames that are played back and
forth (ping-pong) are held in memory, and for --no-blink, which keeps a small crop around
the eyes of each frame in its ranges (candidates to lend open eyes).
"""
from __future__ import annotations

import itertools
import logging
import os
import re
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..core import job
from ..core.numeric import range_weight
from ..core.result import Result
from ..errors import FaceError, InputError
from ..face import landmarks as L
from ..motion.track import jaw_from_mouth
from ..options import DubOptions, EditOptions
from ..render.video_rig import VideoFaceRenderer
from ..validate import check_job, check_text, input_file, over_limit
from ..validate import limit as limit_of
from ..video.encode import VideoWriter
from ..video.stream import render_encode
from . import blink as B
from .source import VideoInfo, frames, probe
from .tracking import FaceTrack, track_faces

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (frames done, frames total)
RAMP_S = 0.12  # s; closing before a range starts and reopening after it ends


@dataclass(frozen=True)
class TimeRange:
    """[start_s, end_s] in seconds of the input video."""

    start_s: float
    end_s: float

    @classmethod
    def parse(cls, text: str) -> "TimeRange":
        """'T0-T1' in seconds ('2-4.5', '0.5-1')."""
        m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*-\s*(\d+(?:\.\d*)?|\.\d+)\s*", str(text))
        if not m:
            raise InputError(f"time range must look like T0-T1 in seconds (e.g. 1.5-3), got {text!r}")
        a, b = float(m.group(1)), float(m.group(2))
        if b <= a:
            raise InputError(f"time range {text!r} ends before it starts")
        return cls(a, b)


EditResult = Result  # the name edit_video's result had; one Result type for every job


def _ranges(ranges: Sequence[TimeRange | str] | None) -> list[TimeRange]:
    return [r if isinstance(r, TimeRange) else TimeRange.parse(r) for r in (ranges or [])]


def range_weights(ranges: Sequence[TimeRange], n: int, fps: float, ramp_s: float = RAMP_S) -> np.ndarray:
    """(n,) float32 in [0, 1]: 1 for frames (shown at i / fps) inside any range, easing
    (smoothstep) from 0 over ``ramp_s`` before a range and back after it."""
    t = np.arange(n) / fps
    w = np.zeros(n)
    for r in ranges:
        w = np.maximum(w, range_weight(t, r.start_s, r.end_s, ramp_s))
    return w.astype(np.float32)


def _check_size(info: VideoInfo, lossless: bool) -> None:
    """Refuse frame sizes the encoder cannot take, and videos over the limits (frame
    pixels, duration) before any frame is decoded."""
    mp = info.width * info.height / 1e6
    if mp > limit_of("max_video_megapixels"):
        raise over_limit("max_video_megapixels", f"{info.path} is {info.width}x{info.height} ({mp:.1f} megapixels)")
    if info.duration_s > limit_of("max_video_s"):
        raise over_limit("max_video_s", f"{info.path} is {info.duration_s:.0f} s long")
    if not lossless and (info.width % 2 or info.height % 2):
        raise InputError(f"the video is {info.width}x{info.height}: H.264 (yuv420p) needs even sizes; "
                         "use --lossless to keep an odd size")


def _check_ranges(ranges: Sequence[TimeRange], info: VideoInfo, n: int, flag: str) -> None:
    length = n / info.fps
    for r in ranges:
        if r.start_s >= length:
            raise InputError(f"{flag} {r.start_s:g}-{r.end_s:g} starts after the video ends ({length:.2f} s)")


def _track(info: VideoInfo, keep: Callable[[int], bool] | None = None, limit: int | None = None
           ) -> tuple[FaceTrack, dict[int, np.ndarray]]:
    """Pass 1: landmarks of every frame (the first ``limit`` frames), and the eye patches
    (``blink.eye_patch``) of the frames ``keep(i)`` asks for."""
    kept: dict[int, tuple] = {}

    max_frames = limit_of("max_video_s") * info.fps  # the container may not say its duration

    def source():
        for i, f in enumerate(frames(info)):
            if limit is not None and i >= limit:
                return
            if i > max_frames:
                raise over_limit("max_video_s", f"{info.path} has more than {int(max_frames)} frames")
            yield f

    def on_frame(i, f, raw):
        if keep is not None and raw is not None and keep(i):
            kept[i] = B.eye_patch(f, raw)  # a crop: whole frames would grow with the range

    total = int(round(info.duration_s * info.fps)) if info.duration_s else 0
    total = min(total, limit) if limit is not None else total
    track = track_faces(source(), info.fps, on_frame=on_frame, total=total)
    if track.n_frames == 0:
        raise InputError(f"video has no decodable frames: {info.path}")
    if not track.found.any():
        raise FaceError(f"no face found in any frame of {info.path}")
    return track, kept


def edit_video(video: str | os.PathLike, out: str | os.PathLike, options: EditOptions | None = None, *,
               close_mouth: Sequence[TimeRange | str] = (), close_eyes: Sequence[TimeRange | str] = (),
               no_blink: Sequence[TimeRange | str] = (), crf: int = 20, lossless: bool = False,
               ease_s: float = RAMP_S, progress: Progress | None = None) -> Result:
    """Write ``out`` (MP4): ``video`` with the mouth closed, the eyes closed and blinks
    removed over the given time ranges ('T0-T1' strings or ``TimeRange``s, seconds).
    options: an ``EditOptions``; without it the keyword arguments make one (ease_s is
    its ``ease``: seconds over which lips and lids close before a range and reopen after
    it; 0: frames outside the ranges are not touched at all).
    Resolution, frame rate, rotation and the soundtrack are kept; pixels outside the
    face region are the decoded input's. Raises ``PhototalkError``s on bad input."""
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    # 1. check inputs before decoding anything
    if options is None:
        options = EditOptions(close_mouth=list(close_mouth), close_eyes=list(close_eyes), no_blink=list(no_blink),
                              ease=ease_s, crf=crf, lossless=lossless)
    opts = options.validate()
    crf, lossless, ease_s = opts.crf, opts.lossless, opts.ease
    mouth_r, eyes_r, blink_r = _ranges(opts.close_mouth), _ranges(opts.close_eyes), _ranges(opts.no_blink)
    if not (mouth_r or eyes_r or blink_r):
        raise InputError("nothing to edit: give at least one of --close-mouth, --close-eyes, --no-blink")
    out = check_job({"video": video}, {"--output": out})["--output"]
    info = probe(input_file(video, "video"))
    _check_size(info, lossless)
    timings["probe"] = time.perf_counter() - t0
    # 2. pass 1: track the face; keep the frames that may lend open eyes to a blink
    ta = time.perf_counter()
    margin = B.DONOR_REACH_S
    blink_keep = [(r.start_s - margin, r.end_s + margin) for r in blink_r]
    keep = (lambda i: any(a <= i / info.fps <= b for a, b in blink_keep)) if blink_r else None
    track, kept = _track(info, keep)
    n = track.n_frames
    for rs, flag in ((mouth_r, "--close-mouth"), (eyes_r, "--close-eyes"), (blink_r, "--no-blink")):
        _check_ranges(rs, info, n, flag)
    timings["track"] = time.perf_counter() - ta
    # 3. per-frame edit strengths and blink donors
    wm, we = range_weights(mouth_r, n, info.fps, ease_s), range_weights(eyes_r, n, info.fps, ease_s)
    lm = track.landmarks
    donors = B.plan_donors(B.eye_openness(track.raw), range_weights(blink_r, n, info.fps, 0.0) > 0, info.fps) \
        if blink_r else {}
    patches = {j: kept[j] for j in set(donors.values()) if j in kept}
    kept.clear()
    log.info("editing %d frames: mouth in %d, eyes in %d, %d blink frames replaced", n, int((wm > 0).sum()),
             int((we > 0).sum()), len(donors))
    # 4. pass 2: edit and encode, streamed
    renderer: VideoFaceRenderer | None = None  # built on the first frame it edits, then re-posed per frame
    h, w = info.height, info.width

    def render(item) -> np.ndarray:
        nonlocal renderer
        i, f = item
        if track.found[i]:
            if i in donors and donors[i] in patches:
                f = f.copy()
                B.open_eyes(f, lm[i], patches[donors[i]], lm[donors[i]])
            if wm[i] > 0 or we[i] > 0:
                renderer = renderer or VideoFaceRenderer(f, lm[i])
                f = renderer.render_video_frame(f, lm[i], close_mouth=float(wm[i]), close_eyes=float(we[i]))
        return info.to_stored(f)

    with VideoWriter(out, w, h, info.fps, audio=info.path if info.has_audio else None, crf=crf,
                     lossless=lossless, rotation_deg=info.rotation_deg) as writer:
        st = render_encode(writer, itertools.islice(enumerate(frames(info)), n), render, total=n, progress=progress)
        te = time.perf_counter()
    timings["edit"] = st.render_s
    timings["encode"] = st.encode_s + time.perf_counter() - te  # + flushing the encoder and the audio
    timings["decode"] = st.source_s
    timings["total"] = time.perf_counter() - t0
    return Result("edit", out, n, info.fps, w, h, n / info.fps, timings, frames_with_face=int(track.found.sum()))


OPEN_SCALE_RANGE = (1.0, 1.25)  # how far a dub's mouth opening adapts to the speaker's own


def speaker_scale(track: FaceTrack, mouth_open: np.ndarray) -> float:
    """Factor that brings the dub's wide openings (90th percentile of ``mouth_open`` (n,)
    iod, over open frames) to the speaker's own in the video, within OPEN_SCALE_RANGE:
    someone who talks with a small mouth keeps doing so in the new language."""
    lm = track.raw[track.found]
    own = np.linalg.norm(lm[:, L.LIP_CENTER_UPPER, :2] - lm[:, L.LIP_CENTER_LOWER, :2], axis=1) / \
        np.maximum(np.linalg.norm(lm[:, L.EYE_OUTER_L, :2] - lm[:, L.EYE_OUTER_R, :2], axis=1), 1e-6)
    new = mouth_open[mouth_open > 0.02]
    if len(own) < 10 or len(new) < 5:
        return 1.0
    return float(np.clip(np.percentile(own, 90) / max(np.percentile(new, 90), 1e-6), *OPEN_SCALE_RANGE))


BILABIAL_HOLD_S = 0.06  # s; lips stay shut at least this long either side of a /p b m/ centre


def hold_bilabials(mouth_open: np.ndarray, phones, fps: float) -> np.ndarray:
    """``mouth_open`` ((n,) iod at frames i / fps) with the lips shut for at least
    +-BILABIAL_HOLD_S around the centre of every /p b m/ in ``phones`` [(ARPAbet, start_s,
    end_s)]. Real closures last 60-150 ms; a one-frame closure is easily missed by the
    eye (and by a tracker) when the phone timing is a frame off."""
    from ..motion.visemes import Viseme, viseme_of

    out = mouth_open.copy()
    t = np.arange(len(out)) / fps
    hold = max(BILABIAL_HOLD_S, 1.0 / fps)
    phones = list(phones)
    for k, (label, a, b) in enumerate(phones):
        if viseme_of(label) is Viseme.PP:
            c = (a + b) / 2
            # never past the middle of a neighbouring phone: "mom" keeps its vowel
            lo = max(c - hold, (phones[k - 1][1] + phones[k - 1][2]) / 2 if k else -np.inf)
            hi = min(c + hold, (phones[k + 1][1] + phones[k + 1][2]) / 2 if k + 1 < len(phones) else np.inf)
            out[(t >= lo - 1e-9) & (t <= hi + 1e-9)] = 0.0
    return out


def pingpong(i: np.ndarray | int, n_src: int):
    """Source frame for output frame ``i`` when ``n_src`` frames are played forwards,
    backwards, forwards... (no frame repeated at the turns)."""
    if n_src <= 1:
        return np.zeros_like(i)
    period = 2 * (n_src - 1)
    k = np.asarray(i) % period
    return np.where(k < n_src, k, period - k)


def _speech_and_phones(audio, text, voice, transcript, rate_wpm):
    """(Speech, a Future of its phones [(ARPAbet, start_s, end_s)], audio for the muxer).
    The phones are found in a worker thread beside the face tracking (both native code)."""
    from ..audio.io import Speech, load_speech

    if text is None:
        with job.stage("audio"):
            speech = load_speech(audio)
        return speech, job.in_thread(_phones_of, speech, transcript), speech.path
    from ..audio.tts import synthesize

    if not text.strip():
        raise InputError("--text is empty")
    with job.stage("tts"):
        syn = synthesize(text, voice=voice, rate_wpm=rate_wpm)
    speech = Speech(syn.samples, syn.sr)
    return speech, job.in_thread(_tts_phones, syn, speech, text, voice), (syn.samples, syn.sr)


def _phones_of(speech, transcript) -> list:
    """Phones for the lips: aligned to the transcript, or to Whisper's words, else
    allphone's guesses (whose misheard /b m/ still close the lips, as in generate)."""
    from ..motion.visemes import phones_for_lips

    with job.stage("phones"):
        return phones_for_lips(speech, transcript)


def _tts_phones(syn, speech, text: str, voice: str) -> list[tuple[str, float, float]]:
    """Phones of synthesised speech. espeak's phoneme events run up to a frame behind the
    sound they make (the closure of a /b/ is reported late), so English speech is
    force-aligned to its text, which finds where each phone is heard; other languages
    (and a failed alignment) keep espeak's timings."""
    from ..audio.phones import AlignmentError, align
    from ..audio.tts import espeak_to_arpabet

    with job.stage("phones"):
        if voice.lower().startswith("en"):
            try:
                return align(speech, text)
            except AlignmentError as e:
                log.info("aligning the synthesised speech failed (%s); using espeak's timings", e)
        return [(espeak_to_arpabet(p), a, b) for p, a, b in syn.phones]


def personal_model(info: VideoInfo, track: FaceTrack, base=None):
    """A motion model (``motion.learned.MotionNet``) of how this speaker's lips follow
    their voice, from the video's own soundtrack and its tracked face (``track``, every
    frame): ``base`` (a model) with its last layer refitted to them, sound and picture
    first aligned to ``base``'s prediction; without a base, a linear model fitted to this
    video alone."""
    from ..audio.io import load_speech
    from ..motion.learned import (FEAT_HZ, FEATURE_KIND, SYNC_MAX_LAG_S, audio_features, best_lag, clip_from_track,
                                  fit_linear, refit_head, shift_clip)
    from .lipdata import measure_mouth

    own = load_speech(info.path)
    ch = measure_mouth(track)
    kind = base.meta.get("feature_kind", FEATURE_KIND) if base is not None else FEATURE_KIND
    clip = clip_from_track("own video", audio_features(own, kind), ch, track.found & np.isfinite(ch["mouth_open"]),
                           info.fps, kind=kind)
    if clip.mask.sum() < 25:
        raise FaceError(f"--personalize: the face was measured in too few frames of {info.path}")
    if base is None:
        return fit_linear([clip])
    p = base.predict(clip.feats)[:, 0]
    _, lag = best_lag(p[clip.mask], clip.targets[clip.mask, 0], int(round(SYNC_MAX_LAG_S * FEAT_HZ)))
    log.info("personalising on %d frames of %s (sound/picture offset %+d ms)", int(clip.mask.sum()), info.path,
             round(lag * 1000 / FEAT_HZ))
    return refit_head(base, [shift_clip(clip, lag)])


def dub_video(video: str | os.PathLike, out: str | os.PathLike, options: DubOptions | None = None, *,
              audio: str | os.PathLike | None = None, text: str | None = None, voice: str = "en-us",
              transcript: str | None = None, crf: int = 20, lossless: bool = False,
              progress: Progress | None = None, motion_model: str | os.PathLike | None = None,
              personalize: bool = False) -> Result:
    """Write ``out`` (MP4): ``video`` lip-synced to new speech (``audio``: a file, or
    ``text`` spoken by the built-in voice ``voice``). The new speech replaces the
    soundtrack; the video is cut to its length, or extended by playing the frames back
    and forth (ping-pong) with the mouth re-rendered. transcript: the words of
    ``audio`` (English) for exact lip sync. motion_model: "analytic" or a learned model
    file (``motion.learned``) for the mouth; personalize: fit how this speaker's lips
    follow their own voice in ``video`` (the whole video is tracked) and use that.
    options: a ``DubOptions``; without it the keyword arguments make one."""
    from ..audio.features import n_frames
    from ..motion.analytic import mouth_from_phones

    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    # 1. check inputs
    if (audio is None) == (text is None):
        raise InputError("give either --audio or --text")
    if options is None:
        options = DubOptions(voice=voice, transcript=transcript, crf=crf, lossless=lossless,
                             motion_model=os.fspath(motion_model) if motion_model else "analytic",
                             personalize=personalize)
    opts = options.validate()
    voice, transcript, crf, lossless = opts.voice, opts.transcript, opts.crf, opts.lossless
    motion_model, personalize = opts.motion_model, opts.personalize
    if text is not None:
        check_text(text, "--text", "max_text_chars")
    out = check_job({"video": video, "--audio": audio}, {"--output": out})["--output"]
    info = probe(input_file(video, "video"))
    _check_size(info, lossless)
    net = None
    if motion_model not in (None, "analytic"):
        from ..motion.learned import load_model

        net = load_model(input_file(motion_model, "motion model"))
    if personalize and not info.has_audio:
        raise InputError(f"--personalize learns from the video's own speech, and {info.path} has no soundtrack")
    timings["probe"] = time.perf_counter() - t0
    # 2. new speech (and its phones, recognised in a worker thread during tracking)
    ta = time.perf_counter()
    speech, phones, mux_audio = _speech_and_phones(audio, text, voice, transcript, opts.rate)
    n_out = n_frames(speech.duration_s, info.fps)
    timings["audio"] = time.perf_counter() - ta
    # 3. pass 1: track the face in the frames the output uses
    ta = time.perf_counter()
    track, _ = _track(info, limit=None if personalize else n_out)
    n_src = track.n_frames
    src_of = pingpong(np.arange(n_out), n_src) if n_out > n_src else np.arange(n_out)
    timings["track"] = time.perf_counter() - ta
    # 4. mouth controls from the phones
    ta = time.perf_counter()
    phones = job.wait(phones)
    job.report("motion", 0, 0)
    if personalize:
        net = personal_model(info, track, net)
    if net is not None:
        from ..motion.learned import mouth_channels

        ctl = mouth_channels(net, speech, info.fps, n_out, phones)
        scale = 1.0 if personalize else speaker_scale(track, ctl["mouth_open"])  # personal: already theirs
        ctl["mouth_open"] = hold_bilabials(ctl["mouth_open"] * scale, phones, info.fps)
        jaw_open = np.minimum(ctl["jaw_open"] * scale, ctl["mouth_open"] + 0.1).astype(np.float32)
    else:
        ctl = mouth_from_phones(speech, info.fps, n_out, phones)
        ctl["mouth_open"] = hold_bilabials(ctl["mouth_open"] * speaker_scale(track, ctl["mouth_open"]), phones,
                                           info.fps)
        jaw_open = jaw_from_mouth(ctl["mouth_open"], info.fps)  # the chin lags the lips, as in generate
    job.report("motion", 1, 1)
    timings["motion"] = time.perf_counter() - ta
    lm = track.landmarks
    renderer: VideoFaceRenderer | None = None  # set up on the first frame with a face (its mouth palette too)
    # 5. pass 2: re-render the mouth of every output frame and encode, streamed
    #    (frames held in memory only when they are played back and forth)
    h, w = info.height, info.width
    held: list[np.ndarray] | None = [] if n_out > n_src else None

    def source():
        for j, f in enumerate(frames(info)):
            if j >= n_src:
                return
            if held is not None:
                held.append(f)
            yield f
        if held is not None:
            for i in range(n_src, n_out):
                yield held[src_of[i]]

    def render(item) -> np.ndarray:
        nonlocal renderer
        i, f = item
        j = int(src_of[i])
        if track.found[j]:
            renderer = renderer or VideoFaceRenderer(f, lm[j])
            mouth = {"open": ctl["mouth_open"][i], "wide": ctl["mouth_wide"][i], "round": ctl["mouth_round"][i],
                     "tuck": ctl["lip_tuck"][i], "jaw": jaw_open[i]}
            f = renderer.render_video_frame(f, lm[j], mouth=mouth)
        return info.to_stored(f)

    with VideoWriter(out, w, h, info.fps, audio=mux_audio, crf=crf, lossless=lossless,
                     rotation_deg=info.rotation_deg) as writer:
        st = render_encode(writer, itertools.islice(enumerate(source()), n_out), render, total=n_out,
                           progress=progress)
        te = time.perf_counter()
    timings["edit"] = st.render_s
    timings["encode"] = st.encode_s + time.perf_counter() - te
    timings["decode"] = st.source_s
    timings["total"] = time.perf_counter() - t0
    return Result("dub", out, n_out, info.fps, w, h, n_out / info.fps, timings,
                  frames_with_face=int(track.found.sum()))
