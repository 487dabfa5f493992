"""Text -> talking video with the built-in espeak-ng voice, streamed for any length.

espeak reports every phoneme's start, so the mouth needs no recognition. Long text is
spoken in chunks of whole sentences:

1. the text is split into sentence groups of about ``chunk_chars`` characters;
2. each group is synthesised and appended to one 16-bit WAV on disk (the soundtrack, and
   ``save_audio`` when asked), keeping only its timed phones in memory; every chunk is
   padded with silence to a whole number of video frames, so chunk k starts exactly on
   frame ``frame0`` and the video has round(total audio s x fps) frames;
3. chunk by chunk, its audio is read back, its MotionTrack built (the motion model,
   one seeded generator per chunk), joined to the previous chunk without a jump, rendered
   and encoded into the one MP4 while the encoder streams the WAV beside it.

Memory holds one chunk of audio (~17 s) and one chunk of motion whatever the length.
Chunks meet in a pause (SEAM_PAUSE_S of silence, split around the seam), where the lips
rest shut; slow processes (head pose, anything else that drifts) are blended across the
seam so that value and velocity continue; a blink the seam would cut is dropped.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import time
import wave
from dataclasses import dataclass, fields
from typing import Iterator

import numpy as np

from .audio.io import Speech, WavWriter
from .core import job
from .core.result import Result
from .audio.tts import arpabet_phones, check_script, resolve_voice, synthesize
from .errors import InputError
from .motion.base import MotionModel, get_motion_model
from .motion.track import MotionTrack, apply_overrides, load_overrides
from .motion.visemes import extend_stop_closures
from .options import SPECS
from .pipeline import Progress, fit_to_portrait, generate_options, prepare_rig, render_video, write_track_files
from .validate import check_job, check_text
from .core.atomic import atomic_path

log = logging.getLogger(__name__)

CHUNK_CHARS = 300  # characters per synthesis chunk: ~50 words, ~17 s of speech at 175 wpm (motion
# analysis of a chunk briefly needs ~6 MB per second of its audio, so chunks stay short)
SEAM_PAUSE_S = 0.3  # s of silence between chunks (a sentence break); 1/3 ends one, 2/3 starts the next
SEAM_LEAD_S = SEAM_PAUSE_S / 3
SEAM_BLEND_S = 1.0  # s over which a slow channel is pulled onto its predecessor's course
# espeak's level falls only as the lips close on a /p b/ (no noise, no reverb), so the lips
# count as shut once it is below this fraction of the vowel before (measured: "map", "apple"
# fall from 0.08-0.15 to under 0.03 within 20 ms of where a forced aligner puts the closure)
CLOSING_LEVEL = 0.35
ARTICULATORY = ("mouth_", "lip_", "jaw_", "blink")  # channels that rest at a pause: never blended
_SENTENCE_END = re.compile(r"(?<=[.!?;:…])\s+|(?<=[。！？；])|\n\s*")


def split_text(text: str, chunk_chars: int = CHUNK_CHARS) -> list[str]:
    """Split ``text`` into chunks of whole sentences of at most ``chunk_chars`` characters
    (a longer sentence is a chunk of its own; one longer than twice that is cut between
    words, or anywhere in scripts without spaces). Chunks with nothing to speak join
    their neighbour.
    Raises InputError when the whole text has nothing to speak."""
    if not any(ch.isalnum() for ch in text):
        raise InputError("text has nothing to speak")
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        while len(sentence) > 2 * chunk_chars:
            cut = sentence.rfind(" ", chunk_chars // 2, chunk_chars)
            cut = chunk_chars if cut < 0 else cut + 1
            pieces.append(sentence[:cut])
            sentence = sentence[cut:]
        pieces.append(sentence)
    chunks: list[str] = []
    cur = ""
    for p in pieces:
        p = p.strip()
        if not p:
            continue
        # pack whole sentences up to chunk_chars: the longest chunk sets the peak memory
        if cur and len(cur) + 1 + len(p) > chunk_chars and any(ch.isalnum() for ch in cur):
            chunks.append(cur)
            cur = ""
        cur = f"{cur} {p}" if cur else p
    if cur:
        if any(ch.isalnum() for ch in cur) or not chunks:
            chunks.append(cur)
        else:
            chunks[-1] += " " + cur
    return chunks


@dataclass
class SpokenChunk:
    """One synthesised chunk on the padded timeline of the soundtrack.

    start: first sample in the WAV; n_samples: its length (padding included); sr: Hz;
    frame0, n_frames: the video frames it covers; phones: ARPAbet [(label, start_s,
    end_s)] in seconds from the chunk's start, contiguous over its whole length."""

    text: str
    start: int
    n_samples: int
    sr: int
    frame0: int
    n_frames: int
    phones: list


def _pad_phones(phones, lead_s: float, end_s: float) -> list[tuple[str, float, float]]:
    """Shift phones by ``lead_s`` and let pauses cover the padding at both ends."""
    out = [(lab, a + lead_s, b + lead_s) for lab, a, b in phones]
    if lead_s > 0:
        if out and out[0][0] == "SIL":
            out[0] = ("SIL", 0.0, out[0][2])
        else:
            out.insert(0, ("SIL", 0.0, lead_s))
    if out and out[-1][2] < end_s:
        if out[-1][0] == "SIL":
            out[-1] = ("SIL", out[-1][1], end_s)
        else:
            out.append(("SIL", out[-1][2], end_s))
    return out


def synthesize_to_wav(chunks: list[str], wav_path: str, fps: float, *, voice: str = "en-us",
                      rate_wpm: int = 175) -> list[SpokenChunk]:
    """Speak each text chunk into one mono 16-bit WAV at ``wav_path`` (appended as it
    goes; memory holds one chunk). Every chunk is padded with silence so that it ends on
    a video frame boundary at ``fps``; every chunk starts with SEAM_LEAD_S and ends with
    the rest of SEAM_PAUSE_S of silence. Phones are ARPAbet,
    with /p b/ starting where the sound falls as the lips close."""
    out: list[SpokenChunk] = []
    sr = None
    total = 0  # samples written
    frames = 0  # frames covered so far
    w = None  # opened with the first chunk, whose rate sets the file's
    try:
        for k, text in enumerate(chunks):
            job.report("tts", k, len(chunks))
            syn = synthesize(text, voice=voice, rate_wpm=rate_wpm)
            if w is None:
                sr = syn.sr
                w = WavWriter(wav_path, sr)
            lead = int(round(SEAM_LEAD_S * sr))  # the first chunk too: lips start at rest
            tail = int(round((SEAM_PAUSE_S - SEAM_LEAD_S) * sr))  # the last too: the video ends at rest
            end_raw = total + lead + len(syn.samples) + tail
            end_frame = int(np.ceil(end_raw * fps / sr - 1e-9))
            end = int(round(end_frame * sr / fps))
            y = np.zeros(end - total, np.float32)
            y[lead:lead + len(syn.samples)] = syn.samples
            w.write(y)
            n = end - total
            phones = extend_stop_closures(arpabet_phones(syn.phones), syn.samples, sr, quiet_frac=CLOSING_LEVEL)
            phones = _pad_phones(phones, lead / sr, n / sr)
            out.append(SpokenChunk(text, total, n, sr, frames, end_frame - frames, phones))
            total, frames = end, end_frame
        job.report("tts", len(chunks), len(chunks))
    finally:
        if w is not None:
            w.close()
    return out


def _read_chunk(wav_path: str, c: SpokenChunk) -> Speech:
    with wave.open(wav_path, "rb") as w:
        w.setpos(c.start)
        pcm = np.frombuffer(w.readframes(c.n_samples), np.int16)
        return Speech(pcm.astype(np.float32) / 32768.0, w.getframerate())


def stitch(prev: MotionTrack | None, cur: MotionTrack) -> MotionTrack:
    """Join ``cur`` onto ``prev`` (the chunk before it, as already emitted), in place.

    Slow channels get a correction that starts at the value and velocity ``prev`` was
    heading for and fades out over SEAM_BLEND_S with a raised cosine (so the head does
    not jump or kink at the seam). A blink cut by either end of ``cur`` is dropped: a
    half-closed lid must not jump open. Articulatory channels rest at the pause and are
    left alone."""
    b = cur.blink
    n = len(b)
    j = n
    while j > 0 and b[j - 1] > 0:
        j -= 1
    b[j:] = 0.0
    if prev is None or n < 2 or prev.n_frames < 2:
        return cur
    j = 0
    while j < n and b[j] > 0:
        j += 1
    b[:j] = 0.0
    length = max(2, int(round(SEAM_BLEND_S * cur.fps)))
    i = np.arange(n, dtype=np.float64)
    w = np.where(i < length, 0.5 * (1 + np.cos(np.pi * np.minimum(i, length) / length)), 0.0)
    for f in fields(MotionTrack):
        if f.name == "fps" or f.name.startswith(ARTICULATORY):
            continue
        p, c = getattr(prev, f.name), getattr(cur, f.name)
        if not isinstance(c, np.ndarray) or c.ndim != 1 or len(c) != n or len(p) < 2:
            continue
        v = float(p[-1]) - float(p[-2])
        d0 = float(p[-1]) + v - float(c[0])  # where prev was heading, minus where cur starts
        d1 = v - (float(c[1]) - float(c[0]))  # velocity mismatch
        c += ((d0 + d1 * i) * w).astype(c.dtype)
    return cur


def text_motion(chunks: list[SpokenChunk], wav_path: str, fps: float, *, seed: int = 0, lipsync: str = "phones",
                timings: dict | None = None, keep: list | None = None, model: MotionModel | None = None,
                **motion) -> Iterator[MotionTrack]:
    """MotionTrack of each chunk in turn, joined seamlessly (see ``stitch``). Chunk 0 uses
    ``seed`` itself (a one-chunk text moves exactly as ``generate`` would move it); chunk k
    draws from seed sequence (seed, k). keep: a list that collects every emitted chunk.
    model: the motion model (default: ``get_motion_model()``, the analytic one).
    motion: further motion-model options (speed, still, emotion, ...)."""
    model = get_motion_model() if model is None else model
    timings = {} if timings is None else timings
    prev = None
    for k, c in enumerate(chunks):
        job.report("motion", k, len(chunks))
        t0 = time.perf_counter()
        speech = _read_chunk(wav_path, c)
        chunk_seed = seed if k == 0 else int(np.random.SeedSequence([seed, k]).generate_state(1)[0])
        track = model(speech, fps, seed=chunk_seed, phones=c.phones if lipsync == "phones" else None,
                                **motion)
        if track.n_frames != c.n_frames:  # the padding makes this exact; guard the invariant
            raise RuntimeError(f"chunk {k}: {track.n_frames} motion frames for {c.n_frames} video frames")
        track = stitch(prev, track)
        prev = track
        timings["motion"] = timings.get("motion", 0.0) + time.perf_counter() - t0
        if keep is not None:
            keep.append(track)
        job.report("motion", k + 1, len(chunks))
        yield track


def concat_tracks(tracks: list[MotionTrack]) -> MotionTrack:
    """One MotionTrack from consecutive chunks."""
    names = [f.name for f in fields(MotionTrack) if f.name != "fps"]
    return MotionTrack(fps=tracks[0].fps, **{n: np.concatenate([getattr(t, n) for t in tracks]) for n in names})


def speak(image: str | os.PathLike | np.ndarray, text: str, out: str | os.PathLike, *, voice: str = "en-us",
          rate_wpm: int = 175, save_audio: str | os.PathLike | None = None, chunk_chars: int = CHUNK_CHARS,
          progress: Progress | None = None, **options) -> Result:
    """Make ``out`` (MP4) of the portrait in ``image`` saying ``text`` in espeak-ng's voice.

    voice: a language code ("en-us", "en-gb", "cmn", "es", "fr", "de", "ja") or a voice
    identifier (see ``tts.voice_languages``); rate_wpm: words per minute, 80..450;
    save_audio: also write the speech there as a 16-bit WAV (atomically).
    options: see ``GenerateOptions`` (all but the transcript ones, as for ``generate``).
    Any length streams (see the module docstring); raises ``PhototalkError`` subclasses
    with one-line messages on bad input, before any expensive work where it can.
    """
    t0 = time.perf_counter()
    stats: dict = {}
    timings: dict[str, float] = {}
    # 1. check inputs
    opts = generate_options(options)
    if opts.transcript or opts.transcript_file:
        raise InputError("--transcript is for --audio: with text the words are known")
    SPECS["rate"].check(rate_wpm)
    paths = check_job({"--image": image, "--track-in": opts.track_in},
                      {"--output": out, "--save-track": opts.save_track, "--export-arkit": opts.export_arkit,
                       "--save-audio": save_audio})
    out, save_audio = paths["--output"], paths["--save-audio"]
    check_text(text, "text", "max_text_chars")
    overrides = load_overrides(opts.track_in) if opts.track_in else None
    model = get_motion_model(opts.motion_model)
    check_script(text, resolve_voice(voice))
    chunks = split_text(text, chunk_chars)
    # 2. face analysis in a worker thread while the text is synthesised (both native code)
    pending = job.in_thread(prepare_rig, image, size=opts.size, face_index=opts.face_index)
    with tempfile.TemporaryDirectory(prefix="phototalk-") as tmpdir, contextlib.ExitStack() as stack:
        # --save-audio is written atomically: it appears only when the video does
        wav_path = stack.enter_context(atomic_path(save_audio)) if save_audio is not None else \
            os.path.join(tmpdir, "speech.wav")
        # 3. speech: every chunk into one WAV, keeping only timed phones
        ta = time.perf_counter()
        spoken = synthesize_to_wav(chunks, wav_path, opts.fps, voice=voice, rate_wpm=rate_wpm)
        timings["tts"] = time.perf_counter() - ta
        n_total = spoken[-1].frame0 + spoken[-1].n_frames
        ta = time.perf_counter()
        rig = job.wait(pending)
        timings["analysis"] = time.perf_counter() - ta  # the part not hidden behind synthesis
        log.info("%d chunks, %d frames", len(spoken), n_total)
        # 4. motion, render and encode chunk by chunk
        still = opts.still_head()
        kept: list[MotionTrack] | None = [] if opts.save_track or opts.export_arkit else None
        raw = text_motion(spoken, wav_path, opts.fps, seed=opts.seed, lipsync=opts.lipsync,
                          timings=timings, model=model, speed=opts.speed, still=still, emotion=opts.emotion,
                          emotion_strength=opts.emotion_strength, gaze=opts.gaze,
                          singing="on" if opts.singing == "on" else "off")  # espeak speaks, it never sings

        def fitted():  # each chunk bent towards frontal for this portrait, as generate does
            for chunk in raw:
                chunk = fit_to_portrait(chunk, rig)
                if kept is not None:
                    kept.append(chunk)
                yield chunk
        motion = fitted()
        if overrides is not None:  # --track-in addresses the whole timeline: motion first (it is small)
            motion = apply_overrides(concat_tracks(list(motion)), overrides)
            kept = [motion] if kept is not None else None
        n, first = render_video(rig, motion, wav_path, out, crf=opts.crf, progress=progress, timings=timings,
                                fps=opts.fps, n_frames=n_total, region=opts.region,
                                region_box=opts.region_box_px(), stats=stats)
        if kept:
            track = concat_tracks(kept)
            write_track_files(track, opts)
    duration_s = (spoken[-1].start + spoken[-1].n_samples) / spoken[-1].sr
    timings["total"] = time.perf_counter() - t0
    h, w_ = rig.image.shape[:2]
    log.info("wrote %s: %d frames, %dx%d, %.2f s", out, n, w_, h, n / opts.fps)
    return Result(kind="generate", output=out, n_frames=n, fps=opts.fps, width=w_, height=h, duration_s=duration_s,
                          timings_s=timings, first_frame_s=first - t0, render_stats=stats)
