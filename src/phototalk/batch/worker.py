"""What runs in a batch worker (a local pool process or a Ray task): one request.

``execute(spec, *blobs)`` never raises for a bad job: a ``PhototalkError`` becomes a
result with its one-line ``error``, anything else (a bug) one with "internal error" and
the traceback, so one row cannot stop the batch. Only a stop (``KeyboardInterrupt``)
propagates.

spec (a plain dict, so that it pickles the same for every engine):
  request: the request dict, absolute paths as the driver sees them;
  inputs: [(location, path)] of every input file, in the order of ``blobs``;
  outputs: [(location, relative output name)];
  ship: True when the inputs come as ``blobs`` (bytes; the worker may not see the
        driver's files) and the outputs go back as bytes; False: inputs are read in
        place and the outputs are left in ``work_dir`` for the driver to move;
  work_dir: where outputs are written when not shipped (inside the out-dir, so the
        driver's rename is atomic); temporary files otherwise go to the system's;
  threads: CPU threads the job may use (OpenCV's pool), = CPUs per job.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sys
import tempfile
import time
import traceback

from ..errors import PhototalkError
from .manifest import set_at


def _peak_rss_mb() -> float | None:
    """The peak resident memory of this worker process so far, in MiB (None off Unix)."""
    try:
        import resource
    except ImportError:
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2 ** 20 if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB on Linux


def _ray_node() -> str | None:
    """The Ray node this runs on (None outside a Ray worker)."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return None
    return ray.get_runtime_context().get_node_id()


def limit_threads(threads: int) -> None:
    """Keep a job on its share of the CPUs: N workers on N cores, each with its own
    thread pool, would otherwise contend (OpenCV sizes its pool by the core count)."""
    try:
        import cv2

        cv2.setNumThreads(max(1, int(threads)))
    except ImportError:
        pass


PIN_ENV = "PHOTOTALK_BATCH_PIN"  # "0": jobs are not pinned to CPUs
CPU_LOCK_PREFIX = "phototalk-batch-cpu-"  # lock files in the temp folder: which CPUs a job on this machine holds


@contextlib.contextmanager
def own_cpus(n: int):
    """Run the job on ``n`` of this process's CPUs (Linux), preferring CPUs no other batch
    job on the machine holds. A job left free spreads over every core (espeak beside the
    face analysis, x264's frame threads), so N workers on N cores contend and scale
    poorly; pinned, each worker has its own cores. x264 sizes its thread pool by the CPUs
    it may use, so every job sees exactly ``n`` of them (shared ones when all are held):
    the output bytes do not depend on which engine or how busy the machine was.
    PHOTOTALK_BATCH_PIN=0 (in the workers' environment) leaves jobs free: better on a
    machine busy with other work, where a pinned job cannot move to an idle core."""
    if os.environ.get(PIN_ENV, "1") == "0":
        yield
        return
    try:
        import fcntl

        before = os.sched_getaffinity(0)
    except (ImportError, AttributeError):  # macOS, Windows: no CPU affinity to set
        yield
        return
    cpus = sorted(before)
    n = max(1, min(int(n), len(cpus)))
    groups = [cpus[i:i + n] for i in range(0, len(cpus) - n + 1, n)]
    chosen, held = groups[os.getpid() % len(groups)], None
    for g in groups:
        fd = os.open(os.path.join(tempfile.gettempdir(), f"{CPU_LOCK_PREFIX}{g[0]}.lock"), os.O_RDWR | os.O_CREAT,
                     0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        chosen, held = g, fd
        break
    os.sched_setaffinity(0, chosen)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)
        if held is not None:
            os.close(held)  # releases the lock


def init_local_worker(threads: int) -> None:
    """Initializer of a local pool process: Ctrl-C in the terminal reaches the whole
    process group, and only the driver decides what stops (it ends the workers itself)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limit_threads(threads)


REPORTED_RESULT = ("n_frames", "fps", "width", "height", "duration_s")  # of phototalk.Result, into the report


def execute(spec: dict, *blobs: bytes) -> dict:
    """Run one job (see the module docstring); returns a JSON-able dict plus output bytes:
    ok, error (one line or None), traceback (bugs only), outputs {relative name: bytes or a
    path in work_dir}, work (that folder, to remove once they are moved), result (frames,
    size), seconds, cpu_s, host, node, pid, peak_rss_mb."""
    from ..api import run

    t0, cpu0 = time.perf_counter(), time.process_time()
    limit_threads(spec.get("threads", 1))
    request = json.loads(json.dumps(spec["request"]))  # ours to rewrite, whatever the engine shares
    shown: dict[str, str] = {}  # worker-side path -> the path the user knows, for error messages
    tmp = tempfile.mkdtemp(prefix="phototalk-batch-", dir=None if spec["ship"] else spec["work_dir"])
    out: dict = {"ok": False, "error": None, "outputs": {}, "host": socket.gethostname(), "pid": os.getpid(),
                 "node": _ray_node()}
    try:
        if spec["ship"]:
            for i, ((loc, path), blob) in enumerate(zip(spec["inputs"], blobs)):
                local = os.path.join(tmp, f"in{i}", os.path.basename(path))
                os.makedirs(os.path.dirname(local))
                with open(local, "wb") as f:
                    f.write(blob)
                set_at(request, tuple(loc), local)
                shown[local] = path
        written = []
        for i, (loc, rel) in enumerate(spec["outputs"]):
            local = os.path.join(tmp, f"out{i}", os.path.basename(rel))
            os.makedirs(os.path.dirname(local))
            shown[local] = rel
            set_at(request, tuple(loc), local)
            written.append((rel, local))
        with own_cpus(spec.get("threads", 1)):
            res = run(request)
        for rel, local in written:
            if not os.path.exists(local):  # an output option the job did not use
                continue
            if spec["ship"]:
                with open(local, "rb") as f:
                    out["outputs"][rel] = f.read()
            else:
                out["outputs"][rel] = local
        d = res.to_dict()
        out.update(ok=True, result={k: d[k] for k in REPORTED_RESULT})
        if not spec["ship"]:
            out["work"] = tmp  # the driver moves the outputs out, then removes it
    except PhototalkError as e:
        out["error"] = _unmask(str(e).splitlines()[0] if str(e) else type(e).__name__, shown)
    except Exception as e:  # a bug in phototalk: the batch goes on and the report keeps the trace
        out["error"] = _unmask(f"internal error: {type(e).__name__}: {e}".splitlines()[0], shown)
        out["traceback"] = _unmask(traceback.format_exc(), shown)
    finally:
        if spec["ship"] or not out["ok"]:
            shutil.rmtree(tmp, ignore_errors=True)
    out["seconds"] = time.perf_counter() - t0
    out["cpu_s"] = time.process_time() - cpu0  # all of this process's threads: what sizing a cluster needs
    out["peak_rss_mb"] = _peak_rss_mb()
    return out


def _unmask(message: str, shown: dict[str, str]) -> str:
    for local in sorted(shown, key=len, reverse=True):
        message = message.replace(local, shown[local])
    return message
