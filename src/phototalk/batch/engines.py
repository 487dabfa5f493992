"""Where batch jobs run: a local process pool, or Ray tasks on a (local or remote) cluster.

An engine takes jobs (``submit(key, spec)``, at most ``capacity`` at a time is what keeps
it busy) and hands back finished ones (``wait``: [(key, result dict)], see
``worker.execute``). A job whose worker died comes back with ``lost`` set; the local
engine leaves its retry to the caller (``retries_lost``), Ray retries it itself
(``max_retries``) on another worker or node.
"""
from __future__ import annotations

import logging
import os
import sys

from ..errors import InputError
from .worker import execute, init_local_worker

log = logging.getLogger(__name__)

WORKER_MAX_JOBS = 100  # a worker process is replaced after this many jobs: any slow growth of memory stays bounded
LOCAL_RAY_OBJECT_STORE_BYTES = 256 * 2 ** 20  # inputs in flight + returned videos; Ray's minimum is 75 MiB
LOOPBACK_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": a single-node Ray on 127.0.0.1 only
STOP_GRACE_S = 3.0  # how long stopped workers get to remove their temporary files before they are killed


def _lost(message: str) -> dict:
    return {"ok": False, "lost": True, "error": message, "outputs": {}}


class LocalEngine:
    """A pool of ``workers`` processes on this machine (spawned: no state shared with the
    caller). Inputs are read in place; outputs are left in the spec's work_dir."""

    name = "local"
    ship = False
    retries_lost = True

    def __init__(self, workers: int, threads: int = 1):
        self.capacity = max(1, int(workers))
        self.threads = threads
        self._pool = None
        self._futures: dict = {}  # future -> (key, the pool it was given to)

    def _executor(self):
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            kw = {"max_tasks_per_child": WORKER_MAX_JOBS} if sys.version_info >= (3, 11) else {}
            self._pool = ProcessPoolExecutor(self.capacity, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=init_local_worker, initargs=(self.threads,), **kw)
        return self._pool

    def submit(self, key, spec: dict) -> None:
        pool = self._executor()
        self._futures[pool.submit(execute, spec)] = (key, pool)

    def __len__(self) -> int:
        return len(self._futures)

    def wait(self, timeout: float) -> list[tuple[object, dict]]:
        from concurrent.futures import FIRST_COMPLETED
        from concurrent.futures import wait as wait_futures
        from concurrent.futures.process import BrokenProcessPool

        done, _ = wait_futures(list(self._futures), timeout=timeout, return_when=FIRST_COMPLETED)
        out = []
        for fut in done:
            key, pool = self._futures.pop(fut)
            try:
                out.append((key, fut.result()))
            except BrokenProcessPool:
                # Which job's process died is unknown: every job in flight then counts it as
                # an attempt, and the pool is rebuilt for the retries.
                out.append((key, _lost("a worker process died (killed, or out of memory)")))
                if pool is self._pool:
                    self._discard_pool()
        return out

    def _discard_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def close(self, cancel: bool = False) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if not cancel:
            pool.shutdown(wait=True)
            return
        procs = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:  # a running job has no other way to end early
            p.terminate()
        for p in procs:
            p.join(STOP_GRACE_S)
            if p.is_alive():
                p.kill()
        self._futures.clear()


class RayEngine:
    """Each job one Ray task (``num_cpus=cpus_per_job``, retried up to ``retries`` times
    when its worker process or node is lost). Input files go through Ray's object store
    (``ray.put`` once per file, shared by the jobs that use it), so the workers need not
    see this machine's files; outputs come back as bytes.

    address None: a private local Ray on 127.0.0.1 with ``workers * cpus_per_job`` CPUs,
    no dashboard and a small object store, shut down by ``close``; otherwise the cluster
    at ``address`` ("HOST:PORT" or "auto"), each node with phototalk installed."""

    name = "ray"
    ship = True
    retries_lost = False

    def __init__(self, *, address: str | None, workers: int | None, cpus_per_job: float = 1, retries: int = 2):
        if address is None and "ray" not in sys.modules:
            # Ray binds its servers to this machine's network address even when asked for
            # 127.0.0.1, unless multi-node clustering is off (read when ray is imported).
            os.environ.setdefault(LOOPBACK_ONLY_ENV, "0")
        try:
            import ray
        except ImportError:
            raise InputError("--engine ray needs Ray: pip install 'phototalk[batch]'") from None
        self.ray = ray
        kw = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                  configure_logging=False)
        try:
            if address is None:
                # the private instance is on 127.0.0.1 only; Ray's notice about its token is noise here
                logging.getLogger("ray._private.authentication").setLevel(logging.ERROR)
                n_cpus = max(1, int(workers or os.cpu_count() or 1)) * cpus_per_job
                ray.init(address="local", num_cpus=n_cpus, object_store_memory=LOCAL_RAY_OBJECT_STORE_BYTES,
                         _node_ip_address="127.0.0.1", **kw)
            else:
                kw.pop("include_dashboard")
                ray.init(address=address, **kw)
        except (ConnectionError, ValueError, RuntimeError) as e:
            raise InputError(f"cannot start or reach Ray{f' at {address}' if address else ''}: "
                             f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
        cluster_slots = int(ray.cluster_resources().get("CPU", 1) // cpus_per_job) or 1
        self.capacity = max(1, int(workers)) if workers else cluster_slots
        self.retries = retries
        self._task = ray.remote(num_cpus=cpus_per_job, max_retries=retries, retry_exceptions=False,
                                max_calls=WORKER_MAX_JOBS)(execute)
        self._inflight: dict = {}  # ObjectRef -> (key, input paths)
        self._blobs: dict[str, list] = {}  # input path -> [ObjectRef of its bytes, jobs in flight using it]

    def _put(self, path: str):
        entry = self._blobs.get(path)
        if entry is None:
            with open(path, "rb") as f:
                entry = self._blobs[path] = [self.ray.put(f.read()), 0]
        entry[1] += 1
        return entry[0]

    def _release(self, paths) -> None:
        for p in paths:
            entry = self._blobs[p]
            entry[1] -= 1
            if entry[1] == 0:  # freed from the object store once no task holds it
                del self._blobs[p]

    def submit(self, key, spec: dict) -> None:
        paths = [path for _, path in spec["inputs"]]
        ref = self._task.remote(spec, *[self._put(p) for p in paths])
        self._inflight[ref] = (key, paths)

    def __len__(self) -> int:
        return len(self._inflight)

    def wait(self, timeout: float) -> list[tuple[object, dict]]:
        ray = self.ray
        refs = list(self._inflight)
        if not refs:
            return []
        ready, _ = ray.wait(refs, num_returns=1, timeout=timeout)
        if ready:
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        out = []
        for ref in ready:
            key, paths = self._inflight.pop(ref)
            self._release(paths)
            try:
                out.append((key, ray.get(ref)))
            except ray.exceptions.RayError as e:
                first = str(e).strip().splitlines()[0] if str(e).strip() else ""
                out.append((key, _lost(f"Ray task failed after {self.retries} retries: {type(e).__name__}: "
                                       f"{first}"[:300])))
        return out

    def close(self, cancel: bool = False) -> None:
        ray = self.ray
        if cancel and self._inflight:
            # A KeyboardInterrupt in each running task first, so that it removes its temporary
            # files; what has not ended after the grace time has its worker process killed.
            refs = list(self._inflight)
            for force in (False, True):
                for ref in refs:
                    try:
                        ray.cancel(ref, force=force)
                    except Exception:  # already finished or its worker gone: nothing left to stop
                        pass
                if not force:
                    _, refs = ray.wait(refs, num_returns=len(refs), timeout=STOP_GRACE_S)
                    if not refs:
                        break
        self._inflight.clear()
        self._blobs.clear()
        ray.shutdown()
