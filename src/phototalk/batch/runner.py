"""``run_manifest``: every row of a manifest through an engine, resumable.

The out-dir holds, besides the outputs:
  .phototalk-batch/state.json  output name -> hash of the request that made it and the
                               size of each file it wrote; rewritten atomically;
  .phototalk-batch/lock        held while a batch writes into the folder;
  .phototalk-batch/work/       the local engine's unfinished outputs (emptied each run);
  batch-report.jsonl           one line per row (unless ``report`` names another path).

A row is skipped when the state records the same request hash for its output (the hash
covers the canonical request with every input file's sha256 in place of its path) and
every file it wrote is still there with the recorded size. Outputs are written whole
(renamed into place) before the state names them, so a stop at any moment loses at most
the jobs in flight.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from ..errors import InputError, OutputError
from ..core.atomic import atomic_path, check_writable
from .manifest import STATE_DIR, Job, file_digest, out_path, read_manifest, set_at

log = logging.getLogger(__name__)

STATE_VERSION = 1
STATE_SAVE_INTERVAL_S = 1.0  # the state is rewritten at most this often (and at the end)
REPORT_NAME = "batch-report.jsonl"
WAIT_SLICE_S = 0.2  # the driver wakes this often while jobs run (a stop is seen within it)
QUEUE_PER_WORKER = 2  # jobs handed to the engine per worker slot, so no worker waits for the driver

EXIT_OK = 0  # every row done now or before
EXIT_SOME_FAILED = 3  # the batch ran to the end and at least one row failed (see the report)


@dataclass
class JobOutcome:
    """How one row ended. status: "ok", "failed", "skipped" (done by an earlier run) or
    "not run" (the batch was stopped first). seconds: the worker's time for the last
    attempt, cpu_s its CPU time (all threads); attempts: runs started (a lost worker costs one)."""

    row: int
    output: str
    status: str
    seconds: float | None = None
    cpu_s: float | None = None
    error: str | None = None
    attempts: int = 0
    host: str | None = None
    node: str | None = None
    pid: int | None = None
    peak_rss_mb: float | None = None
    result: dict = field(default_factory=dict)
    traceback: str | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("seconds", "cpu_s"):
            if d[k] is not None:
                d[k] = round(d[k], 3)
        if d["peak_rss_mb"] is not None:
            d["peak_rss_mb"] = round(d["peak_rss_mb"], 1)
        return {k: v for k, v in d.items() if v not in (None, {}) or k in ("error", "seconds")}


@dataclass
class BatchSummary:
    """The batch's outcome: one JobOutcome per manifest row (in row order)."""

    outcomes: list[JobOutcome]
    wall_s: float
    report: str
    engine: str
    workers: int
    stopped: bool = False
    engine_start_s: float = 0.0  # part of wall_s spent starting the engine (Ray: connecting or starting it)

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def exit_code(self) -> int:
        return EXIT_SOME_FAILED if self.count("failed") else EXIT_OK

    @property
    def jobs_per_min(self) -> float:
        return 60.0 * self.count("ok") / max(self.wall_s, 1e-9)


def request_hash(job: Job, digests: dict) -> str:
    """sha256 of the job's canonical request, each input file by its content hash and
    each output by its name in the out-dir (so the hash survives moving the folders)."""
    from ..api import Request

    canon = Request.from_dict(job.request).validate().to_dict()  # every option, defaults filled in
    for loc, path in job.inputs.items():
        set_at(canon, loc, "sha256:" + file_digest(path, digests))
    for loc, rel in job.outputs.items():
        set_at(canon, loc, rel)
    return hashlib.sha256(json.dumps(canon, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class _State:
    def __init__(self, path: str):
        self.path = path
        self.jobs: dict[str, dict] = {}
        self.dirty = False
        self.saved_at = 0.0
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
            if data.get("version") == STATE_VERSION:
                self.jobs = dict(data.get("jobs") or {})
        except FileNotFoundError:
            pass
        except (OSError, ValueError, AttributeError) as e:  # damaged: start over rather than trust it
            log.warning("ignoring the batch state %s (%s): every row runs again", path, e)

    def done(self, job: Job, h: str, out_dir: str) -> bool:
        rec = self.jobs.get(job.output)
        if not rec or rec.get("hash") != h:
            return False
        sizes = rec.get("outputs") or {}
        for rel in job.outputs.values():
            try:
                if os.path.getsize(out_path(out_dir, rel)) != sizes.get(rel):
                    return False
            except (OSError, InputError):
                return False
        return True

    def record(self, job: Job, h: str, sizes: dict[str, int]) -> None:
        self.jobs[job.output] = {"hash": h, "outputs": sizes, "row": job.row}
        self.dirty = True

    def save(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self.dirty or (not force and now - self.saved_at < STATE_SAVE_INTERVAL_S):
            return
        with atomic_path(self.path) as tmp, open(tmp, "w", encoding="utf-8") as f:
            json.dump({"version": STATE_VERSION, "jobs": self.jobs}, f, indent=0, sort_keys=True)
        self.dirty, self.saved_at = False, now


@contextlib.contextmanager
def _locked(state_dir: str):
    """Hold the out-dir's lock: two batches writing into one folder would undo each other's state."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here; run one batch per folder
        yield
        return
    fd = os.open(os.path.join(state_dir, "lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise InputError(f"another phototalk batch is writing into {os.path.dirname(state_dir)}") from None
        yield
    finally:
        os.close(fd)


def _write_report(path: str, outcomes: list[JobOutcome]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for o in outcomes:
            f.write(json.dumps(o.to_dict(), ensure_ascii=False) + "\n")


def _place(res: dict, job: Job, out_dir: str, ship: bool) -> dict[str, int]:
    """Move (local) or write (shipped bytes) the job's outputs into the out-dir, each
    atomically; their sizes."""
    sizes = {}
    for rel, data in res["outputs"].items():
        final = out_path(out_dir, rel)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        if ship:
            with atomic_path(final) as tmp, open(tmp, "wb") as f:
                f.write(data)
        else:
            from ..validate import output_file

            output_file(final)  # never replace a folder, device or pipe
            os.replace(data, final)
        sizes[rel] = os.path.getsize(final)
    return sizes


def _spec(job: Job, ship: bool, work_dir: str, cpus_per_job: float) -> dict:
    """What a worker gets for ``job`` (see ``worker.execute``)."""
    return {"request": job.request, "inputs": [(list(loc), p) for loc, p in job.inputs.items()],
            "outputs": [(list(loc), r) for loc, r in job.outputs.items()], "ship": ship, "work_dir": work_dir,
            "threads": max(1, int(cpus_per_job))}


def _make_engine(engine: str, *, workers: int | None, address: str | None, cpus_per_job: float, retries: int):
    from .engines import LocalEngine, RayEngine

    if engine == "local":
        if address is not None:
            raise InputError("--address is for --engine ray")
        return LocalEngine(workers or os.cpu_count() or 1, threads=max(1, int(cpus_per_job)))
    if engine == "ray":
        return RayEngine(address=address, workers=workers, cpus_per_job=cpus_per_job, retries=retries)
    raise InputError(f"--engine must be local or ray, got {engine!r}")


def run_manifest(manifest: str | os.PathLike, out_dir: str | os.PathLike, *, engine: str = "local",
                 address: str | None = None, workers: int | None = None, retries: int = 2,
                 cpus_per_job: float = 1, report: str | os.PathLike | None = None,
                 on_job: Callable[[JobOutcome, int, int], None] | None = None) -> BatchSummary:
    """Run every row of ``manifest`` (.csv or .jsonl; see ``phototalk.batch.manifest``),
    writing the outputs under ``out_dir``. Rows finished by an earlier run with the same
    request and inputs are skipped; a bad row is reported and the others go on.

    engine: "local" (a pool of ``workers`` processes, default one per core) or "ray"
    (Ray tasks; ``address`` an existing cluster, else a private local one with
    ``workers`` CPUs); retries: further runs of a job whose worker died (not of a job
    that failed: that would fail again); cpus_per_job: CPUs each job holds (its
    threads); report: the JSONL report's path (default out_dir/batch-report.jsonl);
    on_job(outcome, n_done, n_total): called in this thread as each row ends.

    Returns a BatchSummary (``exit_code``: 0, or 3 when some row failed). Raises
    InputError for an unusable manifest, out-dir or engine. On a stop (KeyboardInterrupt,
    e.g. the CLI's Ctrl-C) the workers are ended, the state and the report are written
    (unfinished rows "not run") and the exception is re-raised with ``.summary`` set; the
    same call later continues where it stopped.
    """
    t0 = time.perf_counter()
    if retries < 0:
        raise InputError(f"--retries must be 0 or more, got {retries}")
    if workers is not None and workers < 1:
        raise InputError(f"--workers must be 1 or more, got {workers}")
    if not cpus_per_job > 0:
        raise InputError(f"--cpus-per-job must be more than 0, got {cpus_per_job}")
    out_dir = os.path.abspath(out_dir)
    jobs = read_manifest(manifest, out_dir)  # before anything is created: a wrong path changes nothing
    state_dir = os.path.join(out_dir, STATE_DIR)
    try:
        os.makedirs(state_dir, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create --out-dir {out_dir}: {e.strerror or e}") from None
    report = os.path.abspath(report) if report is not None else os.path.join(out_dir, REPORT_NAME)
    check_writable(report)  # before any job runs: a report that cannot be written is a usage error
    with _locked(state_dir):
        state = _State(os.path.join(state_dir, "state.json"))
        work_dir = os.path.join(state_dir, "work")
        shutil.rmtree(work_dir, ignore_errors=True)  # a killed run's leftovers (we hold the lock)
        outcomes = [JobOutcome(j.row, j.output, "not run") for j in jobs]
        total, n_done = len(jobs), 0
        hashes: dict[int, str] = {}
        pending: list[int] = []
        digests: dict[str, str] = {}

        def finish(i: int, **kw) -> None:
            nonlocal n_done
            for k, v in kw.items():
                setattr(outcomes[i], k, v)
            n_done += 1
            if on_job is not None:
                on_job(outcomes[i], n_done, total)

        # 1. rows that cannot run, and rows already done
        for i, job in enumerate(jobs):
            if job.error is None and os.path.realpath(report) in \
                    {os.path.realpath(out_path(out_dir, r)) for r in job.outputs.values()}:
                job.error = f"output {job.output} is the batch report"
            if job.error is None:
                try:
                    from ..validate import input_file

                    for loc, path in job.inputs.items():
                        input_file(path, loc[-1].replace("_", " "))
                    hashes[i] = request_hash(job, digests)
                except InputError as e:
                    job.error = str(e)
                except OSError as e:
                    job.error = f"cannot read {e.filename}: {e.strerror}"
            if job.error is not None:
                finish(i, status="failed", error=job.error)
            elif state.done(job, hashes[i], out_dir):
                finish(i, status="skipped")
            else:
                pending.append(i)
        log.info("%d rows: %d to run, %d skipped, %d bad", total, len(pending),
                 sum(o.status == "skipped" for o in outcomes), sum(o.status == "failed" for o in outcomes))

        # 2. the rest through the engine
        eng = None
        engine_start_s = 0.0
        try:
            if pending:
                t_engine = time.perf_counter()
                eng = _make_engine(engine, workers=workers, address=address, cpus_per_job=cpus_per_job,
                                   retries=retries)
                engine_start_s = time.perf_counter() - t_engine
                os.makedirs(work_dir, exist_ok=True)
                queue = list(reversed(pending))
                while queue or len(eng):
                    while queue and len(eng) < eng.capacity * QUEUE_PER_WORKER:
                        i = queue.pop()
                        outcomes[i].attempts += 1
                        eng.submit(i, _spec(jobs[i], eng.ship, work_dir, cpus_per_job))
                    for i, res in eng.wait(WAIT_SLICE_S):
                        o = outcomes[i]
                        o.seconds, o.cpu_s, o.host, o.node, o.pid = (res.get(k) for k in
                                                                      ("seconds", "cpu_s", "host", "node", "pid"))
                        o.peak_rss_mb, o.result = res.get("peak_rss_mb"), res.get("result") or {}
                        if res.get("lost") and eng.retries_lost and o.attempts <= retries:
                            log.warning("row %d: %s; running it again", o.row, res["error"])
                            queue.append(i)
                            continue
                        if not res["ok"]:
                            finish(i, status="failed", error=res["error"], traceback=res.get("traceback"))
                            continue
                        try:
                            sizes = _place(res, jobs[i], out_dir, eng.ship)
                        except (OutputError, InputError) as e:
                            finish(i, status="failed", error=str(e))
                            continue
                        except OSError as e:
                            finish(i, status="failed", error=f"cannot write {e.filename}: {e.strerror}")
                            continue
                        finally:
                            if res.get("work"):
                                shutil.rmtree(res["work"], ignore_errors=True)
                        with _stop_signals_held():  # the state and the report must agree on this row
                            state.record(jobs[i], hashes[i], sizes)
                            finish(i, status="ok")
                        state.save()
        except BaseException as e:  # a stop (or a bug): end the workers, keep what is done
            summary = _close(eng, True, state, report, outcomes, work_dir, t0, engine, workers, engine_start_s)
            if isinstance(e, KeyboardInterrupt):
                e.summary = summary
            raise
        return _close(eng, False, state, report, outcomes, work_dir, t0, engine, workers, engine_start_s)


STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))


@contextlib.contextmanager
def _stop_signals_held():
    """Hold stop signals (delivered on leaving): a Ctrl-C landing between recording a
    finished row in the state and in the outcomes left the state naming the row done while
    the report called it "not run" (seen once in 3 runs of the Ctrl-C test on a quiet
    machine). Only the main thread can hold them; elsewhere this does nothing."""
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _close(eng, stopped: bool, state: _State, report: str, outcomes: list[JobOutcome], work_dir: str, t0: float,
           engine: str, workers: int | None, engine_start_s: float) -> BatchSummary:
    """End the engine, then write what is known: the state and the report (atomically)."""
    capacity = getattr(eng, "capacity", workers or 0)
    if eng is not None:
        eng.close(cancel=stopped)
    state.save(force=True)
    shutil.rmtree(work_dir, ignore_errors=True)
    _write_report(report, outcomes)
    return BatchSummary(outcomes, time.perf_counter() - t0, report, engine, capacity, stopped, engine_start_s)
