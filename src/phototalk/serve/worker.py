"""The worker pool: N processes that take jobs from the store and run them.

Each worker runs one job at a time, so memory is bounded by the worker count. A worker
dies with its server (Linux: PR_SET_PDEATHSIG; elsewhere it notices its parent is gone
within a poll), so after a ``kill -9`` of the server no job goes on running unowned; the
restarted server re-queues what was running (``JobStore.requeue_running``) and wipes the
killed attempt's partial files, and the attempt counter keeps a stale worker from
completing a job twice.

Files of job J (all under the data directory, never a path a client chose):
``jobs/J/in/`` the uploads, ``jobs/J/work/`` the running attempt's output (and its
temporary files), ``jobs/J/output.mp4`` the finished video (renamed from work/).
Library temporary files go to ``tmp/<worker>/`` (TMPDIR), wiped on every start.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import multiprocessing as mp
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.request

from .store import SQLiteStore

log = logging.getLogger(__name__)

POLL_S = 0.2  # how often an idle worker looks for a queued job
CANCEL_POLL_S = 0.3  # how often a running job's cancel flag is read (the API stops within 1 s of it)
PROGRESS_MIN_STEP = 0.01  # fraction of the job between two stored progress events...
PROGRESS_MAX_GAP_S = 1.0  # ...unless the stage changed or this long passed
WEBHOOK_TIMEOUT_S = 5.0
WEBHOOK_TRIES = 3
OUTPUT_NAME = "output.mp4"


def job_dir(data_dir: str, job_id: str) -> str:
    return os.path.join(data_dir, "jobs", job_id)


def store_path(data_dir: str) -> str:
    return os.path.join(data_dir, "jobs.sqlite3")


def reset_attempt_files(data_dir: str, job_id: str) -> None:
    """Remove what a killed attempt left (its partial output, its temporary files)."""
    shutil.rmtree(os.path.join(job_dir(data_dir, job_id), "work"), ignore_errors=True)


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            PR_SET_PDEATHSIG = 1
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except OSError:
            pass


def sign_webhook(secret: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks signature: ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``."""
    mac = hmac.new(secret, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def send_webhook(url: str, secret: bytes, job: dict, payload: dict) -> str:
    """POST ``payload`` to ``url`` with Standard Webhooks headers (webhook-id,
    webhook-timestamp, webhook-signature); a few tries. Returns "delivered" or why not."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    msg_id = f"msg_{job['id']}_{job['attempt']}"
    why = "not sent"
    for i in range(WEBHOOK_TRIES):
        ts = int(time.time())
        req = urllib.request.Request(url, data=body, method="POST", headers={
            "content-type": "application/json", "webhook-id": msg_id, "webhook-timestamp": str(ts),
            "webhook-signature": sign_webhook(secret, msg_id, ts, body), "user-agent": "phototalk-serve"})
        try:
            with urllib.request.urlopen(req, timeout=WEBHOOK_TIMEOUT_S) as r:
                if 200 <= r.status < 300:
                    return "delivered"
                why = f"HTTP {r.status}"
        except Exception as e:  # any failure of a remote endpoint is reported, never raised
            why = str(e)[:200]
        time.sleep(0.5 * 2 ** i)
    return f"failed: {why}"


class _Reporter:
    """Turns the API's progress callback into throttled store events; sets the cancel
    token when the store says so (from a poller thread: stages report rarely)."""

    def __init__(self, store, job, token):
        self.store, self.job, self.token = store, job, token
        self.last = (None, -1.0, 0.0)
        # the API may report from two threads (face analysis beside speech synthesis): one
        # at a time, so the stored events keep the callback's order and fractions never fall
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll_cancel, daemon=True)

    def _poll_cancel(self):
        while not self.stop.wait(CANCEL_POLL_S):
            if self.store.cancel_requested(self.job["id"], self.job["attempt"]):
                self.token.cancel()
                return

    def __call__(self, stage, done, total, fraction):
        with self.lock:
            self._report(stage, done, total, fraction)

    def _report(self, stage, done, total, fraction):
        now = time.monotonic()
        stage0, frac0, t0 = self.last
        fraction = max(fraction, frac0)
        if stage == stage0 and fraction - frac0 < PROGRESS_MIN_STEP and now - t0 < PROGRESS_MAX_GAP_S \
                and not (total and done == total):
            return
        self.last = (stage, fraction, now)
        ok = self.store.progress(self.job["id"], self.job["attempt"],
                                 {"stage": stage, "done": done, "total": total, "fraction": round(fraction, 4)})
        if not ok:
            self.token.cancel()


def error_code(e: Exception) -> str:
    """A stable machine-readable code for a ``PhototalkError`` (FaceError -> face_error)."""
    from ..errors import FaceError, InputError, OutputError

    for cls, code in ((FaceError, "face_error"), (InputError, "invalid_input"), (OutputError, "output_error")):
        if isinstance(e, cls):
            return code
    return "error"


def run_one(store, data_dir: str, job: dict, secret: bytes) -> str:
    """Run a claimed job to a terminal status; returns it."""
    from ..errors import PhototalkError
    from . import engine

    jid, attempt = job["id"], job["attempt"]
    d = job_dir(data_dir, jid)
    reset_attempt_files(data_dir, jid)
    work = os.path.join(d, "work")
    os.makedirs(work)
    req = dict(job["request"])
    for k in ("image", "audio", "video"):
        if req.get(k):
            req[k] = os.path.join(d, req[k])
    req["output"] = os.path.join(work, OUTPUT_NAME)
    token = engine.make_cancel_token()
    rep = _Reporter(store, job, token)
    rep.thread.start()
    result = error = None
    try:
        result = engine.run_request(req, rep, token)
        os.replace(req["output"], os.path.join(d, OUTPUT_NAME))
        result["output"] = OUTPUT_NAME
        status = "succeeded"
    except engine.cancelled_error():
        status, error = "canceled", {"code": "canceled", "message": "cancelled"}
    except PhototalkError as e:
        status, error = "failed", {"code": error_code(e), "message": str(e)}
    except Exception as e:  # a bug: the job fails, the worker lives on
        log.exception("job %s crashed", jid)
        status, error = "failed", {"code": "internal_error", "message": f"internal error: {type(e).__name__}"}
    finally:
        rep.stop.set()
    shutil.rmtree(work, ignore_errors=True)
    if not store.finish(jid, attempt, status, result=result, error=error):
        log.warning("job %s attempt %d lost its claim; result dropped", jid, attempt)
        if store.get(jid) is None:  # deleted while it ran: nothing of it may stay
            shutil.rmtree(d, ignore_errors=True)
        return "lost"
    if job.get("webhook"):
        final = store.get(jid)
        store.set_webhook_status(jid, send_webhook(job["webhook"], secret, job,
                                                   {"type": f"job.{status}", "data": public_job(final)}))
    return status


def public_job(job: dict, base: str = "") -> dict:
    """The job as the API shows it (no internal columns, no server paths)."""
    jid = job["id"]
    out = {
        "id": jid, "kind": job["kind"], "status": job["status"],
        "created_at": _iso(job["created_at"]), "started_at": _iso(job["started_at"]),
        "finished_at": _iso(job["finished_at"]), "progress": job["progress"], "error": job["error"],
        "attempt": job["attempt"], "expired": job["expired"], "webhook_status": job.get("webhook_status"),
        "urls": {"self": f"{base}/v1/jobs/{jid}", "output": f"{base}/v1/jobs/{jid}/output",
                 "events": f"{base}/v1/jobs/{jid}/events", "cancel": f"{base}/v1/jobs/{jid}/cancel"},
    }
    r = job["result"] or {}
    out["result"] = {k: r.get(k) for k in ("n_frames", "fps", "width", "height", "duration_s")} if r else None
    out["timings_s"] = r.get("timings_s") if r else None
    return out


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def worker_main(data_dir: str, name: str, parent_pid: int, secret: bytes) -> None:
    """Entry of a worker process: claim, run, repeat, until the parent is gone."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the server, which stops us
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    tmp = os.path.join(data_dir, "tmp", name)
    os.makedirs(tmp, exist_ok=True)
    os.environ["TMPDIR"] = tmp
    tempfile.tempdir = tmp
    logging.basicConfig(level=logging.WARNING, format=f"%(levelname)s {name} %(name)s: %(message)s")
    store = SQLiteStore(store_path(data_dir))
    from . import engine

    engine.warm_up()  # imports (~2 s) before the first job, not in its time
    while os.getppid() == parent_pid:
        job = store.claim(name)
        if job is None:
            time.sleep(POLL_S)
            continue
        run_one(store, data_dir, job, secret)


class Pool:
    """Starts ``n`` worker processes and replaces any that dies (its job is re-queued)."""

    def __init__(self, data_dir: str, n: int, secret: bytes, store):
        self.data_dir, self.n, self.secret, self.store = data_dir, n, secret, store
        self.ctx = mp.get_context("spawn")  # no fork of a threaded server
        self.procs: dict[str, mp.Process] = {}
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._supervise, daemon=True)

    def _spawn(self, name: str) -> None:
        p = self.ctx.Process(target=worker_main, args=(self.data_dir, name, os.getpid(), self.secret),
                             name=f"phototalk-{name}", daemon=True)
        p.start()
        self.procs[name] = p

    def start(self) -> None:
        shutil.rmtree(os.path.join(self.data_dir, "tmp"), ignore_errors=True)
        for i in range(self.n):
            self._spawn(f"w{i}")
        self.thread.start()

    def _supervise(self) -> None:
        while not self.stop_event.wait(0.5):
            for name, p in list(self.procs.items()):
                if not p.is_alive():
                    log.warning("worker %s died (exit %s); its job is re-queued", name, p.exitcode)
                    for jid in self.store.requeue_running(name):
                        reset_attempt_files(self.data_dir, jid)
                    shutil.rmtree(os.path.join(self.data_dir, "tmp", name), ignore_errors=True)
                    self._spawn(name)

    def alive(self) -> int:
        return sum(p.is_alive() for p in self.procs.values())

    def stop(self) -> None:
        self.stop_event.set()
        for p in self.procs.values():
            p.kill()
        for p in self.procs.values():
            p.join(5)
