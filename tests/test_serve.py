"""`phototalk serve` over real HTTP on 127.0.0.1: a server in a subprocess (uvicorn, a
pool of worker processes, SQLite), driven with httpx, schemathesis and headless
Chromium. Jobs are tiny (--size 128, a short sentence in the built-in voice) so each
takes a second or two."""
from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

httpx = pytest.importorskip("httpx", reason="the serve extra is not installed")
pytest.importorskip("fastapi", reason="the serve extra is not installed")

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 60.0
JOB_TIMEOUT_S = 90.0
TEXT = "Hello there."
TERMINAL = ("succeeded", "failed", "canceled")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`phototalk serve` in a subprocess; stops by itself after ``life_s`` at the latest."""

    def __init__(self, data_dir: Path, *args: str, life_s: float = 600.0):
        self.data_dir, self.args, self.life_s = data_dir, args, life_s
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / f"server-{self.port}.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            ["timeout", "-s", "KILL", str(int(life_s)), sys.executable, "-m", "phototalk.cli", "serve",
             "--port", str(self.port), "--data-dir", str(data_dir), *args],
            stdout=open(self.log, "wb"), stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        t0 = time.monotonic()
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=2).json()["workers_alive"] >= 1:
                    break
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            if self.proc.poll() is not None or time.monotonic() - t0 > START_TIMEOUT_S:
                self.stop()
                raise AssertionError(f"server did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.2)

    def server_pid(self) -> int:
        """The Python server process (the child of `timeout`)."""
        return int(Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()[0])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def portrait_png() -> bytes:
    from PIL import Image
    from skimage import data

    b = io.BytesIO()
    Image.fromarray(data.astronaut()).resize((256, 256)).save(b, "PNG")
    return b.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("serve") / "data"
    s = Server(d, "--workers", "2", "--max-upload-mb", "1", "--max-media-s", "20", "--max-text-chars", "2000",
               "--max-image-pixels", "4000000")
    yield s
    s.stop()


def submit(url: str, png: bytes, text: str = TEXT, headers: dict | None = None, **fields):
    data = {"text": text, "size": "128", **{k: str(v) for k, v in fields.items()}}
    return httpx.post(url + "/v1/jobs", files={"image": ("portrait.jpg", png)}, data=data, headers=headers or {},
                      timeout=30)


def wait(url: str, job: dict, headers: dict | None = None, until=TERMINAL, timeout_s: float = JOB_TIMEOUT_S) -> dict:
    t0 = time.monotonic()
    while True:
        j = httpx.get(url + job["urls"]["self"], headers=headers or {}, timeout=10).json()
        if j["status"] in until or (until == "rendering" and (j.get("progress") or {}).get("stage") == "render"):
            return j
        assert time.monotonic() - t0 < timeout_s, f"job stuck: {j}"
        time.sleep(0.1)


def decode_mp4(data: bytes) -> dict:
    """Decode every frame of an MP4; its codecs, pixel format, frame count, top-level atoms."""
    import av

    with av.open(io.BytesIO(data)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        info = {"video": v.codec_context.name, "pix_fmt": v.codec_context.pix_fmt, "audio": a.codec_context.name}
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(v)]
    atoms, i = [], 0
    while i < len(data):
        n = int.from_bytes(data[i:i + 4], "big")
        atoms.append(data[i + 4:i + 8].decode("latin-1"))
        i += n or len(data)
    return {**info, "n_frames": len(frames), "frames": frames, "atoms": atoms}


def sse(url: str, path: str, headers: dict | None = None) -> list[tuple[int, str, dict]]:
    out = []
    with httpx.stream("GET", url + path, headers=headers or {}, timeout=JOB_TIMEOUT_S) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        ev: dict = {}
        for line in r.iter_lines():
            if line.startswith(("id:", "event:", "data:")):
                k, v = line.split(":", 1)
                ev[k] = v.strip()
            elif not line and "data" in ev:
                out.append((int(ev["id"]), ev["event"], json.loads(ev["data"])))
                ev = {}
    return out


class Hook(http.server.BaseHTTPRequestHandler):
    got: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        Hook.got.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *a):
        pass


def test_submit_poll_download_events_webhook(server, portrait_png):
    hook = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    try:
        r = submit(server.url, portrait_png, webhook=f"http://127.0.0.1:{hook.server_port}/hook")
        assert r.status_code == 202, r.text
        job = r.json()
        assert r.headers["location"] == job["urls"]["self"] and job["status"] == "queued"
        done = wait(server.url, job)
        assert done["status"] == "succeeded", done
        assert done["progress"]["fraction"] == 1.0 and done["started_at"] and done["finished_at"]
        # the output: the whole file, then a byte range of it
        r = httpx.get(server.url + job["urls"]["output"], timeout=30)
        assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
        v = decode_mp4(r.content)
        assert (v["video"], v["pix_fmt"], v["audio"]) == ("h264", "yuv420p", "aac")
        assert v["atoms"].index("moov") < v["atoms"].index("mdat"), v["atoms"]  # faststart: plays while loading
        assert v["n_frames"] == done["result"]["n_frames"] > 10
        assert v["frames"][0].shape == (128, 128, 3)
        assert np.std(v["frames"][len(v["frames"]) // 2]) > 20  # a picture, not a blank frame
        part = httpx.get(server.url + job["urls"]["output"], headers={"Range": "bytes=100-199"}, timeout=10)
        assert part.status_code == 206 and part.content == r.content[100:200]
        # server-sent events, replayed in order after the fact
        evs = sse(server.url, job["urls"]["events"])
        seqs = [e[0] for e in evs]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        statuses = [e[2]["status"] for e in evs if e[1] == "status"]
        assert statuses == ["queued", "running", "succeeded"]
        fr = [e[2]["fraction"] for e in evs if e[1] == "progress"]
        assert len(fr) >= 3 and fr == sorted(fr) and fr[-1] == 1.0
        assert evs[0][1] == "status" and evs[-1] == (seqs[-1], "status", {"status": "succeeded"})
        # resuming after the 2nd event gives the rest
        assert sse(server.url, job["urls"]["events"], {"Last-Event-ID": str(seqs[1])}) == evs[2:]
        # the webhook: Standard Webhooks headers, HMAC-SHA256 with the server's secret
        t0 = time.monotonic()
        while not Hook.got and time.monotonic() - t0 < 10:
            time.sleep(0.1)
        headers, body = Hook.got[0]
        h = {k.lower(): v for k, v in headers.items()}
        secret = base64.b64decode((server.data_dir / "webhook_secret").read_text().strip().removeprefix("whsec_"))
        signed = f"{h['webhook-id']}.{h['webhook-timestamp']}.".encode() + body
        assert h["webhook-signature"] == "v1," + base64.b64encode(
            hmac.new(secret, signed, hashlib.sha256).digest()).decode()
        payload = json.loads(body)
        assert payload["type"] == "job.succeeded" and payload["data"]["id"] == job["id"]
        # listed, then deleted with its files
        ids = [j["id"] for j in httpx.get(server.url + "/v1/jobs?limit=100").json()["jobs"]]
        assert job["id"] in ids
        assert httpx.delete(server.url + job["urls"]["self"]).status_code == 204
        assert httpx.get(server.url + job["urls"]["self"]).status_code == 404
        assert not (server.data_dir / "jobs" / job["id"]).exists()
    finally:
        hook.shutdown()


def test_cancel_running_job(server, portrait_png):
    long_text = " ".join(["This sentence is here to make the job last long enough to cancel it."] * 12)
    job = submit(server.url, portrait_png, long_text).json()
    wait(server.url, job, until="rendering")
    r = httpx.post(server.url + job["urls"]["cancel"])
    assert r.status_code == 200
    t0 = time.monotonic()
    j = wait(server.url, job)
    assert j["status"] == "canceled" and time.monotonic() - t0 < 3.0, j
    assert j["error"]["code"] == "canceled"
    assert httpx.get(server.url + job["urls"]["output"]).status_code == 409
    d = server.data_dir / "jobs" / job["id"]
    assert not (d / "work").exists() and not (d / "output.mp4").exists()


def test_idempotent_resubmission(server, portrait_png):
    key = {"Idempotency-Key": f"test-{time.time()}"}
    a = submit(server.url, portrait_png, "One.", headers=key)
    b = submit(server.url, portrait_png, "One.", headers=key)
    assert a.status_code == 202 and b.status_code == 200 and b.headers["idempotent-replayed"] == "true"
    assert a.json()["id"] == b.json()["id"]
    c = submit(server.url, portrait_png, "Two.", headers=key)  # same key, another request
    assert c.status_code == 422 and c.json()["error"]["code"] == "idempotency_conflict"
    assert wait(server.url, a.json())["status"] == "succeeded"
    n = sum(j["id"] == a.json()["id"] for j in httpx.get(server.url + "/v1/jobs?limit=100").json()["jobs"])
    assert n == 1


def test_json_submission_then_dub_and_edit_of_its_video(server, portrait_png):
    body = {"kind": "generate", "image": "data:image/png;base64," + base64.b64encode(portrait_png).decode(),
            "text": "Hi there.", "options": {"size": 128, "seed": 3}}
    r = httpx.post(server.url + "/v1/jobs", json=body, timeout=30)
    assert r.status_code == 202, r.text
    assert wait(server.url, r.json())["status"] == "succeeded"
    video = httpx.get(server.url + r.json()["urls"]["output"], timeout=30).content
    # the service's own output as the input of the two other kinds of job
    dub = httpx.post(server.url + "/v1/jobs", files={"video": ("v.mp4", video)},
                     data={"kind": "dub", "text": "Good morning to you all."}, timeout=30)
    edit = httpx.post(server.url + "/v1/jobs", files={"video": ("v.mp4", video)},
                      data={"kind": "edit", "options": json.dumps({"close_mouth": ["0-0.4"]})}, timeout=30)
    assert dub.status_code == 202 and edit.status_code == 202, (dub.text, edit.text)
    for job, kind in ((dub.json(), "dub"), (edit.json(), "edit")):
        j = wait(server.url, job)
        assert j["status"] == "succeeded" and j["kind"] == kind, j
        v = decode_mp4(httpx.get(server.url + job["urls"]["output"], timeout=30).content)
        assert v["n_frames"] == j["result"]["n_frames"] > 10 and v["frames"][0].shape == (128, 128, 3)
    assert decode_mp4(video)["n_frames"] == j["result"]["n_frames"]  # an edit keeps the video's length


def _wav(seconds: float, sr: int = 8000) -> bytes:
    import wave

    b = io.BytesIO()
    with wave.open(b, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(sr)
        w.writeframes((np.sin(np.arange(int(seconds * sr)) * 0.05) * 8000).astype("<i2").tobytes())
    return b.getvalue()


def test_bad_uploads_are_413_or_422(server, portrait_png):
    from PIL import Image

    def post(files=None, data=None, **kw):
        return httpx.post(server.url + "/v1/jobs", files=files, data=data, timeout=30, **kw)

    def code(r):
        return r.status_code, r.json()["error"]["code"]

    img = {"image": ("a.png", portrait_png)}
    # too large: bytes (one file; a whole body by Content-Length), pixels, seconds, characters
    assert code(post({"image": ("a.png", os.urandom(1_200_000))}, {"text": "Hi"})) == (413, "file_too_large")
    assert post(content=b"x" * 5_000_000, headers={"content-type": "application/json"}).status_code == 413
    big = io.BytesIO()
    Image.new("RGB", (2100, 2100), (128, 100, 90)).save(big, "PNG")  # 4.4 MP, a few KB
    assert code(post({"image": ("a.png", big.getvalue())}, {"text": "Hi"})) == (413, "image_too_large")
    assert code(post({**img, "audio": ("a.wav", _wav(25))})) == (413, "audio_too_long")
    assert code(post(img, {"text": "a" * 2001})) == (413, "text_too_long")
    # malformed: sniffed content, not the name
    assert code(post({"image": ("a.png", b"not an image at all" * 10)}, {"text": "Hi"})) == (422, "invalid_image")
    assert code(post({"image": ("a.png", portrait_png[:len(portrait_png) // 2])}, {"text": "Hi"}))[0] == 422
    assert code(post({**img, "audio": ("a.wav", portrait_png)})) == (422, "invalid_audio")
    assert code(post({**img, "audio": ("a.wav", _wav(1)[:30])}))[0] == 422
    assert code(post({"image": ("a.png", portrait_png)})) == (422, "invalid_input")  # no speech
    assert code(post({**img, "audio": ("a.wav", _wav(1))}, {"text": "Hi"})) == (422, "invalid_input")  # both
    assert code(post(img, {"text": "Hi", "bogus": "1"})) == (422, "invalid_input")
    r = post(img, {"text": "Hi", "speed": "5"})  # the library's own one-line message
    assert code(r) == (422, "invalid_input") and "--speed must be between 0.1 and 1.9" in r.json()["error"]["message"]
    assert post(img, {"text": "Hi", "options": "{not json"}).status_code == 422
    assert post(content=b"{", headers={"content-type": "application/json"}).status_code == 422
    assert post(json={"image": "/etc/passwd", "text": "Hi"}).status_code == 422  # no server paths
    assert post(content=b"hello", headers={"content-type": "text/plain"}).status_code == 415
    # and nothing of them was kept
    listed = httpx.get(server.url + "/v1/jobs?limit=100").json()["jobs"]
    assert len(list((server.data_dir / "jobs").iterdir())) == len(listed)


def test_openapi_property_no_5xx(server, tmp_path):
    """schemathesis generates requests from /openapi.json (valid and invalid); none may get a 5xx."""
    st = shutil.which("schemathesis", path=os.path.dirname(sys.executable))
    if st is None:
        pytest.skip("schemathesis is not installed")
    spec = httpx.get(server.url + "/openapi.json").json()
    assert spec["openapi"].startswith("3.1") and "/v1/jobs" in spec["paths"]
    r = subprocess.run([st, "run", server.url + "/openapi.json", "--checks", "not_a_server_error", "-n", "15",
                        "--seed", "1", "--phases", "coverage,fuzzing", "-w", "1", "--no-shrink"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    tail = r.stdout[-6000:]
    assert r.returncode == 0, tail
    assert " passed" in tail and "failed" not in tail.split("Test cases:")[-1], tail


def test_restart_after_kill9_midjob(tmp_path, portrait_png):
    """kill -9 of the server while a job renders; a new server on the same data runs it
    again to success, once; no partial files are left."""
    key = {"Authorization": "Bearer s3cret"}
    d = tmp_path / "data"
    s = Server(d, "--workers", "1", "--api-key", "s3cret", life_s=120)
    try:
        assert httpx.post(s.url + "/v1/jobs", data={"text": "Hi"}).status_code == 401  # the key is required
        text = " ".join(["The server dies while this sentence is being rendered."] * 4)
        job = submit(s.url, portrait_png, text, headers=key).json()
        wait(s.url, job, key, until="rendering")
        pid = s.server_pid()
        workers = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        os.kill(pid, signal.SIGKILL)
        s.proc.wait(10)
        t0 = time.monotonic()
        while any(Path(f"/proc/{w}").exists() and "Z" not in Path(f"/proc/{w}/stat").read_text().split()[2]
                  for w in workers):
            assert time.monotonic() - t0 < 5, "a worker outlived its server"
            time.sleep(0.05)
        assert (d / "jobs" / job["id"] / "work").exists()  # the killed attempt's partial output
        orphan = d / "jobs" / ("f" * 32) / "in"  # an upload the dead server never acknowledged
        orphan.mkdir(parents=True)
        (orphan / "image.upload").write_bytes(b"x")
    finally:
        s.stop()
    # (the restarted server also keeps files only 5.4 s after a job finishes, to see them expire)
    s2 = Server(d, "--workers", "1", "--api-key", "s3cret", "--ttl-hours", "0.0015", life_s=120)
    try:
        j = wait(s2.url, job, key)
        assert j["status"] == "succeeded" and j["attempt"] == 2, j
        assert not orphan.parent.exists()
        v = decode_mp4(httpx.get(s2.url + job["urls"]["output"], headers=key, timeout=30).content)
        assert v["n_frames"] == j["result"]["n_frames"]
        evs = sse(s2.url, job["urls"]["events"], key)
        statuses = [e[2]["status"] for e in evs if e[1] == "status"]
        assert statuses == ["queued", "running", "queued", "running", "succeeded"], statuses
        left = [p for p in d.rglob("*") if p.is_file() and (".tmp" in p.name or "work" in p.parts or
                                                                 "tmp" in p.relative_to(d).parts)]
        assert left == [], left
        t0 = time.monotonic()
        while httpx.get(s2.url + job["urls"]["output"], headers=key).status_code != 410:
            assert time.monotonic() - t0 < 30, "the output did not expire"
            time.sleep(0.5)
        assert httpx.get(s2.url + job["urls"]["self"], headers=key).json()["expired"] is True
        assert not (d / "jobs" / job["id"]).exists()
    finally:
        s2.stop()


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


def test_web_ui_in_headless_chromium(server, portrait_png, tmp_path):
    """Upload a portrait, type text, generate; the video element plays; a screenshot."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    exe = _chromium()
    if exe is None:
        pytest.skip("no Chromium: `apt-get install chromium` (.ci/run does it where apt works)")
    img = tmp_path / "me.png"
    img.write_bytes(portrait_png)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, headless=True,
                                    args=["--autoplay-policy=no-user-gesture-required"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(server.url + "/")
            page.wait_for_selector("#opt-size")  # the options came from /v1/options
            assert float(page.input_value("#opt-speed")) == 1.0 and page.input_value("#opt-voice") == "en-us"
            page.set_input_files("#image", str(img))
            page.fill("#text", "Hello from the browser.")
            page.fill("#opt-size", "128")
            page.click("#go")
            page.wait_for_selector("#out:not(.hidden)", timeout=JOB_TIMEOUT_S * 1000)
            assert page.text_content("#stage") == "done" and page.text_content("#err") == ""
            assert "rendering frames" in page.evaluate("window.phototalkStages")
            page.evaluate("() => { const v = document.querySelector('#out'); v.muted = true; return v.play(); }")
            page.wait_for_function("document.querySelector('#out').currentTime > 0.3", timeout=15000)
            size = page.evaluate("[document.querySelector('#out').videoWidth, document.querySelector('#out').videoHeight]")
            assert size == [128, 128]
            page.evaluate("document.querySelector('#out').pause()")
            page.screenshot(path="/tmp/phototalk-serve-ui.png", full_page=True)
        finally:
            browser.close()


def test_serve_cli_errors_are_one_line(server, tmp_path):
    for args, needle in ((["--port", str(server.port)], "cannot listen on 127.0.0.1:"),
                         (["--workers", "0"], "--workers must be 1 or more")):
        r = subprocess.run([sys.executable, "-m", "phototalk.cli", "serve", "--data-dir", str(tmp_path), *args],
                           capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert r.returncode == 2 and r.stderr.startswith("phototalk: error: ") and needle in r.stderr, r.stderr
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
