"""The public job API (phototalk.run): requests in their JSON form, the CLI's request files,
progress through every stage, and cancellation at every stage. Speech is espeak's, so
these run without ../shared; videos are 128 px."""
from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import phototalk
from phototalk import CancelToken, Cancelled, InputError, Request, run
from phototalk.options import SPECS, option_specs

import pixels
from conftest import write_wav

CANCEL_LIMIT_S = 1.0  # the contract: a cancel stops a job within a second
SHORT_TEXT = "Mama made a map."


def sha(p: Path) -> str:
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def leftovers(d: Path, keep: set[str]) -> list[str]:
    """Files in ``d`` besides ``keep`` (outputs, hidden .part files, anything)."""
    return sorted(p.name for p in d.iterdir() if p.name not in keep)


@pytest.fixture(scope="module")
def espeak_wav(tmp_path_factory) -> Path:
    """~1.5 s of espeak speech as a WAV file."""
    from phototalk.audio.tts import synthesize

    syn = synthesize(SHORT_TEXT + " Bob ate a pie.")
    return write_wav(tmp_path_factory.mktemp("aud") / "speech.wav", syn.samples, syn.sr)


def test_option_specs_define_each_option_once():
    for kind in ("generate", "edit", "dub"):
        specs = option_specs(kind)
        names = [s.name for s in specs]
        assert len(names) == len(set(names))
        assert all(s is SPECS[s.name] for s in specs)  # one definition, shared by every kind
    crf = {id(s) for k in ("generate", "edit", "dub") for s in option_specs(k) if s.name == "crf"}
    assert len(crf) == 1
    assert SPECS["speed"].parse(1.5) == 1.5 and SPECS["seed"].parse(3.0) == 3
    for name, bad in (("speed", 2.5), ("crf", 52), ("seed", -1), ("emotion", "bored"), ("still", "yes"),
                      ("rate", 20), ("fps", float("nan")), ("seed", 1.5), ("ease", 3)):
        with pytest.raises(InputError, match=SPECS[name].flag):
            SPECS[name].parse(bad)


def test_request_json_form(tmp_path):
    d = {"kind": "generate", "image": "me.jpg", "text": "Hi.", "output": "o.mp4", "options": {"seed": 2}}
    req = Request.from_dict(d, base_dir=tmp_path).validate()
    assert req.image == str(tmp_path / "me.jpg") and req.output == str(tmp_path / "o.mp4")
    full = req.to_dict()
    assert full["options"]["seed"] == 2 and full["options"]["crf"] == 20 and full["options"]["voice"] == "en-us"
    assert set(full["options"]) == {s.name for s in option_specs("generate")}
    again = Request.from_dict(json.loads(json.dumps(full)))
    assert again.to_dict() == full  # the canonical form is a fixed point: hashable job identity
    bad = [({**d, "options": {"sped": 1}}, "unknown option 'sped'"),
           ({**d, "options": {"speed": 3}}, "--speed must be between 0.1 and 1.9"),
           ({**d, "audio": "a.wav"}, "exactly one of"),
           ({**d, "kind": "edit"}, "takes no 'image'"),
           ({**d, "colour": 1}, "unknown request field"),
           ({"kind": "dub", "video": "v.mp4", "text": "x", "output": "o.mp4", "options": {"ease": 0.1}},
            "unknown option 'ease'"),
           ({"kind": "generate", "image": "a.jpg", "audio": "a.wav", "output": "o.mp4",
             "options": {"voice": "fr"}}, "--voice only apply to --text")]
    for req_d, msg in bad:
        with pytest.raises(InputError, match=msg):
            Request.from_dict(req_d).validate()


def test_request_file_runs_identically_through_api_and_cli(tmp_path, astronaut_path):
    """One request, run by phototalk.run and by `phototalk run FILE`: the same bytes; the
    progress callback sees each stage of a text job, its fraction rising to 1."""
    from phototalk.cli import main

    opts = {"size": 128, "crf": 0, "seed": 4, "speed": 1.4}
    api_out, cli_out = tmp_path / "api.mp4", tmp_path / "cli.mp4"
    events = []
    res = run({"kind": "generate", "image": str(astronaut_path), "text": SHORT_TEXT, "output": str(api_out),
               "options": opts}, on_progress=events.append)
    req_file = tmp_path / "job.json"
    req_file.write_text(json.dumps({"kind": "generate", "image": str(astronaut_path), "text": SHORT_TEXT,
                                    "output": "cli.mp4", "options": opts}))  # relative: the file's folder
    rep = tmp_path / "rep.json"
    assert main(["run", str(req_file), "-q", "--report", str(rep)]) == 0
    assert sha(api_out) == sha(cli_out)
    assert res.n_frames > 25 and res.width == 128 and res.kind == "generate"
    assert {"tts", "face", "motion", "render", "total"} <= set(res.timings_s)
    assert json.loads(rep.read_text())["frames"] == res.n_frames
    stages = {e.stage for e in events}
    assert stages == {"tts", "face", "motion", "render"}, stages
    fr = [e.fraction for e in events]
    assert all(b >= a for a, b in zip(fr, fr[1:])) and fr[-1] == 1.0 and fr[0] < 0.2
    assert sum(e.stage == "render" for e in events) >= res.n_frames
    json.dumps(res.to_dict())  # JSON-able


def test_progress_sees_audio_and_phones_stages(tmp_path, astronaut_path, espeak_wav):
    events = []
    out = tmp_path / "o.mp4"
    res = run(Request(kind="generate", image=str(astronaut_path), audio=str(espeak_wav), output=str(out),
                      options={"size": 128}), on_progress=events.append)
    order = []
    for e in events:
        if not order or order[-1] != e.stage:
            order.append(e.stage)
    assert order == ["audio", "phones", "motion", "face", "render"], order
    assert res.timings_s["phones"] > 0 and out.exists()


def _cancelled_run(request: dict, when, tmp_path: Path, keep: set[str]):
    """Run ``request``; cancel when ``when(event)`` is true (from the progress callback,
    i.e. while that stage runs). Returns (seconds from cancel to Cancelled, events)."""
    token = CancelToken()
    events, t_cancel = [], []

    def on_progress(ev):
        events.append(ev)
        if not t_cancel and when(ev):
            t_cancel.append(time.perf_counter())
            token.cancel()

    with pytest.raises(Cancelled, match="^cancelled$"):
        run(request, on_progress=on_progress, cancel=token)
    took = time.perf_counter() - t_cancel[0]
    assert leftovers(tmp_path, keep) == []  # no output, no temporary file
    return took, events


def test_cancel_during_face_analysis(tmp_path, astronaut_path, espeak_wav):
    req = {"kind": "generate", "image": str(astronaut_path), "audio": str(espeak_wav),
           "output": str(tmp_path / "o.mp4"), "options": {"size": 128, "save_track": str(tmp_path / "t.json")}}
    took, events = _cancelled_run(req, lambda e: e.stage == "face", tmp_path, set())
    assert took < CANCEL_LIMIT_S and events[-1].stage == "face"
    assert not any(e.stage == "render" for e in events)


def test_cancel_during_rendering(tmp_path, astronaut_path):
    req = {"kind": "generate", "image": str(astronaut_path), "text": SHORT_TEXT, "output": str(tmp_path / "o.mp4"),
           "options": {"size": 128, "save_audio": str(tmp_path / "s.wav")}}
    took, events = _cancelled_run(req, lambda e: e.stage == "render" and e.done == 5, tmp_path, set())
    assert took < CANCEL_LIMIT_S
    assert max(e.done for e in events if e.stage == "render") == 5  # stopped at the next frame


def test_cancel_during_tts_from_another_thread(tmp_path, astronaut_path):
    """A long text (several synthesis chunks); cancelled from a timer thread while espeak
    speaks: espeak's callback aborts the synthesis, and the run stops within a second."""
    # 160 sentences: ~40 chunks; a quiet machine speaks 10 chunks in ~0.25 s, so the cancel
    # comes right after the first chunk, not after a fixed delay the synthesis can outrun.
    text = " ".join(f"Sentence number {k} is spoken by the built-in voice, slowly and clearly." for k in range(160))
    token = CancelToken()
    events, t_cancel = [], []
    started = threading.Event()

    def on_progress(ev):
        events.append(ev)
        if ev.stage == "tts" and ev.done >= 1:
            started.set()

    def cancel_soon():
        started.wait(30)
        t_cancel.append(time.perf_counter())
        token.cancel()

    th = threading.Thread(target=cancel_soon)
    th.start()
    req = {"kind": "generate", "image": str(astronaut_path), "text": text, "output": str(tmp_path / "o.mp4"),
           "options": {"size": 128}}
    with pytest.raises(Cancelled):
        run(req, on_progress=on_progress, cancel=token)
    t_end = time.perf_counter()
    th.join()
    assert t_end - t_cancel[0] < CANCEL_LIMIT_S
    tts = [e for e in events if e.stage == "tts"]
    assert tts[-1].done < tts[-1].total  # stopped inside the synthesis, not after it
    assert not any(e.stage == "render" for e in events)
    assert leftovers(tmp_path, set()) == []


def test_cancelled_before_start_and_wrappers_unchanged(tmp_path, astronaut_path):
    token = CancelToken()
    token.cancel()
    out = tmp_path / "o.mp4"
    with pytest.raises(Cancelled):
        run({"kind": "generate", "image": str(astronaut_path), "text": "Hi.", "output": str(out)}, cancel=token)
    assert not out.exists()
    assert isinstance(Cancelled(), phototalk.PhototalkError) and str(Cancelled()) == "cancelled"
    # the thin wrappers still take their old keyword options
    res = phototalk.speak(astronaut_path, "Hi.", out, size=128, rate_wpm=200)
    assert res.n_frames > 5 and out.exists()
    assert np.isclose(res.fps, 25.0)


def test_jobs_in_parallel_threads_match_a_lone_run(tmp_path, astronaut_path):
    """A server runs jobs side by side: face models (one LiteRT interpreter per thread),
    TTS and rendering in two threads at once give the bytes of a job run alone."""
    from concurrent.futures import ThreadPoolExecutor

    def job(name: str, seed: int):
        out = tmp_path / name
        run({"kind": "generate", "image": str(astronaut_path), "text": SHORT_TEXT, "output": str(out),
             "options": {"size": 128, "crf": 0, "seed": seed}})
        return sha(out)

    alone = [job("a0.mp4", 1), job("b0.mp4", 2)]
    with ThreadPoolExecutor(2) as pool:
        both = list(pool.map(job, ["a1.mp4", "b1.mp4"], [1, 2]))
    assert both == alone and alone[0] != alone[1]


@pytest.fixture(scope="module")
def talking_video(tmp_path_factory, astronaut_path) -> Path:
    """A 2 s talking video made by phototalk itself (128 px): edit and dub need no ../shared."""
    out = tmp_path_factory.mktemp("vid") / "talk.mp4"
    run({"kind": "generate", "image": str(astronaut_path), "text": "Mama made a map for Bob.", "output": str(out),
         "options": {"size": 128, "seed": 3}})
    return out


def test_edit_and_dub_requests(tmp_path, talking_video):
    """edit and dub go through run too: their stages are reported, and a cancel while the
    face is tracked through the video stops the job within a second."""
    events = []
    res = run({"kind": "dub", "video": str(talking_video), "text": "Hello there.", "output": str(tmp_path / "d.mp4"),
               "options": {"rate": 200}}, on_progress=events.append)
    assert res.kind == "dub" and res.frames_with_face > 0.9 * res.n_frames
    assert {e.stage for e in events} == {"tts", "phones", "face", "motion", "render"}
    assert Request.from_dict({"kind": "dub", "video": "v.mp4", "text": "x", "output": "o.mp4"}).to_dict()[
        "options"]["rate"] == SPECS["rate"].default
    req = {"kind": "edit", "video": str(talking_video), "output": str(tmp_path / "e.mp4"),
           "options": {"close_mouth": ["0.2-1.0"], "ease": 0.05}}
    took, events = _cancelled_run(req, lambda e: e.stage == "face" and e.done == 10, tmp_path, {"d.mp4"})
    assert took < CANCEL_LIMIT_S and not any(e.stage == "render" for e in events)
    res = run(req)
    assert res.kind == "edit" and res.n_frames == len(pixels.decode(tmp_path / "e.mp4")[0])

