"""`phototalk batch`: a manifest of good and bad rows, run locally and on a Ray cluster of
two nodes on 127.0.0.1 (one module-wide cluster, stopped at the end), resumed, stopped
with Ctrl-C, and with a worker node killed mid-batch.

Jobs are 128 px, about a second of speech each, so that a job takes about a second."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from phototalk.batch import EXIT_SOME_FAILED, read_manifest, run_manifest
from phototalk.cli import main

from conftest import write_wav

# A Ray cluster whose servers listen on 127.0.0.1 only (Ray otherwise binds to the machine's
# network address); read when ray is first imported, which only this module does.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

SIZE = 128  # px: the longer side of every test video
GOOD = {  # output -> the rows that must succeed
    "a.mp4", "sub/b.mp4", "c.mp4",
}
BAD = {  # output -> a piece of its one-line error
    "d.mp4": "image not found",
    "e.mp4": "no face",
    "f.mp4": "cannot decode audio",
    "../escape.mp4": "must stay inside --out-dir",
    "g.mp4": "--speed must be between",
}


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    """A JSONL manifest of 8 rows (3 good, 5 bad) beside its inputs."""
    from PIL import Image
    from skimage import data

    from phototalk.audio.tts import synthesize

    d = tmp_path_factory.mktemp("batch_in")
    Image.fromarray(data.astronaut()).resize((256, 256)).save(d / "face.png")
    Image.fromarray(np.full((160, 160, 3), 128, np.uint8)).save(d / "blank.png")
    (d / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + os.urandom(200))
    syn = synthesize("Hello.")
    write_wav(d / "hello.wav", syn.samples, syn.sr)
    opts = {"size": SIZE}
    rows = [
        {"kind": "generate", "image": "face.png", "text": "Hello there.", "output": "a.mp4",
         "options": dict(opts, seed=1, save_audio="audio/a.wav")},
        {"kind": "generate", "image": "face.png", "audio": "hello.wav", "output": "sub/b.mp4",
         "options": dict(opts, seed=2, transcript="hello")},
        {"kind": "generate", "image": "face.png", "text": "Good morning.", "output": "c.mp4",
         "options": dict(opts, seed=3)},
        {"kind": "generate", "image": "missing.png", "text": "Hi.", "output": "d.mp4", "options": opts},
        {"kind": "generate", "image": "blank.png", "text": "Hi.", "output": "e.mp4", "options": opts},
        {"kind": "generate", "image": "face.png", "audio": "corrupt.wav", "output": "f.mp4", "options": opts},
        {"kind": "generate", "image": "face.png", "text": "Hi.", "output": "../escape.mp4", "options": opts},
        {"kind": "generate", "image": "face.png", "text": "Hi.", "output": "g.mp4", "options": dict(opts, speed=9)},
    ]
    m = d / "jobs.jsonl"
    m.write_text("# a comment line, then one request per line\n" + "".join(json.dumps(r) + "\n" for r in rows))
    return m


def _report(out: Path) -> dict[str, dict]:
    lines = (out / "batch-report.jsonl").read_text().splitlines()
    return {r["output"]: r for r in map(json.loads, lines)}


def _decode(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


@pytest.fixture(scope="module")
def local_out(manifest, tmp_path_factory) -> tuple[Path, int, str]:
    """The manifest run once on the local engine with 2 workers: (out-dir, exit code, stdout)."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("batch_local")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["batch", str(manifest), "--out-dir", str(out), "--workers", "2"])
    return out, code, buf.getvalue()


def test_csv_manifest_gives_the_same_requests(manifest, tmp_path):
    """CSV: the same fields as columns, options as further columns (typed from their text)."""
    jsonl = read_manifest(manifest, tmp_path)[:3]  # the good rows
    csv = manifest.with_suffix(".csv")
    csv.write_text("kind,image,text,audio,output,size,seed,save-audio,transcript\n"
                   f"generate,face.png,Hello there.,,a.mp4,{SIZE},1,audio/a.wav,\n"
                   f"generate,face.png,,hello.wav,sub/b.mp4,{SIZE},2,,hello\n"
                   f"generate,face.png,Good morning.,,c.mp4,{SIZE},3,,\n")
    rows = read_manifest(csv, tmp_path)
    assert [r.request for r in rows] == [j.request for j in jsonl]
    assert rows[0].request["options"]["seed"] == 1 and rows[0].request["image"] == str(manifest.parent / "face.png")
    assert rows[0].request["options"]["save_audio"] == str(tmp_path / "audio" / "a.wav")


def test_every_path_option_is_known_as_an_input_or_an_output():
    """A new path option must be placed here, or the batch would neither ship it nor keep it in --out-dir."""
    from phototalk.batch.manifest import INPUT_OPTIONS, OUTPUT_OPTIONS
    from phototalk.options import SPECS

    assert {s.name for s in SPECS.values() if s.path} == set(INPUT_OPTIONS) | set(OUTPUT_OPTIONS)


def test_csv_cells_are_typed_and_checked_by_the_option_specs(tmp_path):
    m = tmp_path / "m.csv"
    m.write_text("kind,video,output,close-mouth,lossless,ease\n"
                 "edit,talk.mp4,e.mp4,1-2;3-4.5,yes,0\n"
                 "edit,talk.mp4,f.mp4,1-2,maybe,0\n"
                 "edit,talk.mp4,g.mp4,1-2,no,9\n")
    ok, bad_bool, bad_range = read_manifest(m, tmp_path / "out")
    assert ok.request["options"] == {"close_mouth": ["1-2", "3-4.5"], "lossless": True, "ease": 0.0}
    assert "--lossless must be true or false, got 'maybe'" in bad_bool.error
    assert "--ease must be between" in bad_range.error


def test_local_batch_reports_bad_rows_and_makes_the_good_videos(manifest, local_out, tmp_path):
    out, code, stdout = local_out
    assert code == EXIT_SOME_FAILED == 3
    rep = _report(out)
    assert set(rep) == GOOD | set(BAD)
    for name in GOOD:
        assert rep[name]["status"] == "ok", rep[name]
    for name, piece in BAD.items():
        assert rep[name]["status"] == "failed" and piece in rep[name]["error"], rep[name]
        assert "\n" not in rep[name]["error"] and "Traceback" not in rep[name]["error"]
        assert "phototalk-batch-" not in rep[name]["error"]  # the user's paths, not the worker's
    assert "8 rows: 3 ok, 5 failed, 0 skipped" in stdout and "no face" in stdout
    for name in GOOD:
        frames = _decode(out / name)
        assert frames.shape[0] == rep[name]["result"]["n_frames"] > 10
        assert max(frames.shape[1:3]) == SIZE
        # the face talks: consecutive frames differ (a still or blank video would not)
        assert np.abs(np.diff(frames.astype(np.int16), axis=0)).max() > 20
    assert (out / "audio" / "a.wav").stat().st_size > 10_000  # an output option lands in the out-dir too
    assert not (out.parent / "escape.mp4").exists()
    leftovers = [p for p in out.rglob("*") if ".part" in p.name or p.name.startswith("phototalk-batch-")]
    assert not leftovers
    # the batch ran the row's request as it is: the same request alone, on one CPU as a batch
    # job runs (x264 sizes its threads by the CPUs it sees), gives the same bytes
    from phototalk import run
    from phototalk.batch.worker import own_cpus

    job = read_manifest(manifest, tmp_path)[2]
    job.request["output"] = str(tmp_path / "alone.mp4")
    with own_cpus(1):
        run(job.request)
    assert (tmp_path / "alone.mp4").read_bytes() == (out / "c.mp4").read_bytes()


def test_rerun_skips_finished_rows_and_redoes_a_changed_one(manifest, local_out, tmp_path):
    import shutil

    out0, _, _ = local_out
    out = tmp_path / "out"
    shutil.copytree(out0, out)
    mtimes = {n: (out / n).stat().st_mtime_ns for n in GOOD}
    s = run_manifest(manifest, out, workers=1)  # only the bad rows run again
    assert s.exit_code == 3
    st = {o.output: o.status for o in s.outcomes}
    assert {n for n in GOOD if st[n] == "skipped"} == GOOD
    assert all(st[n] == "failed" for n in BAD)
    assert {n: (out / n).stat().st_mtime_ns for n in GOOD} == mtimes
    # a changed request (another seed) is run again; a removed output is made again
    changed = manifest.parent / "changed.jsonl"
    changed.write_text(manifest.read_text().replace('"seed": 3', '"seed": 4'))
    (out / "a.mp4").unlink()
    s = run_manifest(changed, out, workers=2)
    st = {o.output: o.status for o in s.outcomes}
    assert (st["a.mp4"], st["sub/b.mp4"], st["c.mp4"]) == ("ok", "skipped", "ok")
    assert (out / "c.mp4").read_bytes() != (out0 / "c.mp4").read_bytes()
    assert (out / "a.mp4").read_bytes() == (out0 / "a.mp4").read_bytes()


def test_ctrl_c_stops_cleanly_and_a_rerun_continues(manifest, tmp_path):
    rows = [{"kind": "generate", "image": str(manifest.parent / "face.png"), "text": "One, two, three.",
             "output": f"v{i}.mp4", "options": {"size": SIZE, "seed": i}} for i in range(3)]
    m = tmp_path / "many.jsonl"
    m.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    p = subprocess.Popen([sys.executable, "-m", "phototalk.cli", "batch", str(m), "--out-dir", str(out),
                          "--workers", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    state = out / ".phototalk-batch" / "state.json"  # names a row once its output is in place
    deadline = time.monotonic() + 120
    while not (state.exists() and "v0.mp4" in state.read_text()) and time.monotonic() < deadline \
            and p.poll() is None:
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == 130, stderr
    assert "stopped by SIGINT" in stderr and "Traceback" not in stderr
    done = {o["output"] for o in map(json.loads, (out / "batch-report.jsonl").read_text().splitlines())
            if o["status"] == "ok"}
    assert "v0.mp4" in done and len(done) < 3
    assert not [q for q in out.rglob("*") if ".part" in q.name]
    assert not (out / ".phototalk-batch" / "work").exists()
    s = run_manifest(m, out, workers=2)
    st = {o.output: o.status for o in s.outcomes}
    assert {n for n, v in st.items() if v == "skipped"} == done
    assert all(v in ("ok", "skipped") for v in st.values()) and s.exit_code == 0


# --- Ray: a head and one worker node on 127.0.0.1, started here, one for the module ---

@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """(cluster, worker node, the worker node's TMPDIR: a job running there has a folder in it)."""
    pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    store = 80 * 2 ** 20  # bytes: the smallest store Ray accepts is 75 MiB
    cluster = Cluster(initialize_head=True, connect=False,
                      head_node_args={"num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False,
                                      "object_store_memory": store})
    marker = tmp_path_factory.mktemp("ray_worker_tmp")
    old = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(marker)  # inherited by the worker node's processes only
    try:
        worker = cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1", object_store_memory=store)
    finally:
        if old is None:
            del os.environ["TMPDIR"]
        else:
            os.environ["TMPDIR"] = old
    cluster.wait_for_nodes()
    yield cluster, worker, marker
    cluster.shutdown()


def test_ray_cluster_gives_byte_identical_videos(manifest, local_out, ray_cluster, tmp_path):
    cluster, _, _ = ray_cluster
    out0, _, _ = local_out
    out = tmp_path / "ray_out"
    s = run_manifest(manifest, out, engine="ray", address=cluster.address, workers=2)
    assert s.exit_code == 3
    rep, rep0 = _report(out), _report(out0)
    for name in GOOD:
        assert rep[name]["status"] == "ok"
        assert (out / name).read_bytes() == (out0 / name).read_bytes(), name
    assert (out / "audio" / "a.wav").read_bytes() == (out0 / "audio" / "a.wav").read_bytes()
    for name in BAD:
        assert rep[name]["error"] == rep0[name]["error"]  # worker paths mapped back to the user's
    assert len({o.node for o in s.outcomes if o.node}) == 2  # both nodes worked


def test_ray_worker_node_killed_mid_batch_its_jobs_run_elsewhere(manifest, ray_cluster, tmp_path):
    cluster, worker, marker = ray_cluster
    rows = [{"kind": "generate", "image": str(manifest.parent / "face.png"), "text": "One, two, three.",
             "output": f"k{i}.mp4", "options": {"size": SIZE, "seed": i}} for i in range(4)]
    m = tmp_path / "kill.jsonl"
    m.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = {}
    t = threading.Thread(target=lambda: result.update(
        s=run_manifest(m, tmp_path / "out", engine="ray", address=cluster.address, workers=2, retries=2)))
    t.start()
    deadline = time.monotonic() + 120
    while not any(marker.glob("phototalk-batch-*")) and time.monotonic() < deadline and t.is_alive():
        time.sleep(0.02)
    running_there = bool(any(marker.glob("phototalk-batch-*")))
    cluster.remove_node(worker, allow_graceful=False)  # the node dies with a job on it
    t.join(180)
    assert running_there and not t.is_alive()
    s = result["s"]
    assert [o.status for o in s.outcomes] == ["ok"] * 4, [o.to_dict() for o in s.outcomes]
    # the job that had started on the dead node was finished by the head node
    assert worker.node_id not in {o.node for o in s.outcomes}
    for i in range(4):
        assert _decode(tmp_path / "out" / f"k{i}.mp4").shape[0] > 10
