"""Load test of `phototalk serve` over HTTP on 127.0.0.1: N concurrent jobs against a
server with W worker processes; every output decoded; peak RSS of the whole process
tree (server + workers) sampled from /proc.

    .venv/bin/python bench/serve_load.py --jobs 20 --workers 1 2 --size 256

Prints one line per worker count: jobs ok, HTTP 5xx seen, wall time, jobs/s, seconds of
video made per second, peak RSS (MB).
"""
from __future__ import annotations

import argparse
import io
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
PAGE_KB = os.sysconf("SC_PAGE_SIZE") / 1024


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants, MB."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * PAGE_KB / 1024
            for t in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (t / "children").read_text().split()]
        except (OSError, ValueError):
            pass
    return total


def portrait() -> bytes:
    from PIL import Image
    from skimage import data

    b = io.BytesIO()
    Image.fromarray(data.astronaut()).save(b, "PNG")
    return b.getvalue()


def run(workers: int, n_jobs: int, size: int, text: str) -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    data_dir = tempfile.mkdtemp(prefix="phototalk-load-")
    proc = subprocess.Popen([sys.executable, "-m", "phototalk.cli", "serve", "--port", str(port), "--data-dir",
                             data_dir, "--workers", str(workers)], stdout=subprocess.DEVNULL, cwd=ROOT)
    peak = [0.0]
    stop = threading.Event()

    def sample():
        while not stop.wait(0.1):
            peak[0] = max(peak[0], tree_rss_mb(proc.pid))

    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/healthz", timeout=1).json()["workers_alive"] == workers:
                    break
            except (httpx.HTTPError, KeyError, ValueError):
                time.sleep(0.2)
        threading.Thread(target=sample, daemon=True).start()
        png = portrait()
        statuses: list[int] = []

        def one(i: int) -> tuple[bool, float]:
            with httpx.Client(timeout=60) as c:
                r = c.post(url + "/v1/jobs", files={"image": ("p.png", png)},
                           data={"text": text, "size": str(size), "seed": str(i)})
                statuses.append(r.status_code)
                job = r.json()
                while True:
                    g = c.get(url + job["urls"]["self"])
                    statuses.append(g.status_code)
                    j = g.json()
                    if j["status"] in ("succeeded", "failed", "canceled"):
                        break
                    time.sleep(0.25)
                if j["status"] != "succeeded":
                    return False, 0.0
                o = c.get(url + job["urls"]["output"])
                statuses.append(o.status_code)
                import av

                with av.open(io.BytesIO(o.content)) as f:
                    n = sum(1 for _ in f.decode(f.streams.video[0]))
                return n == j["result"]["n_frames"] > 0, j["result"]["n_frames"] / j["result"]["fps"]

        t0 = time.perf_counter()
        with ThreadPoolExecutor(n_jobs) as ex:
            results = list(ex.map(one, range(n_jobs)))
        wall = time.perf_counter() - t0
        return {"workers": workers, "ok": sum(ok for ok, _ in results), "jobs": n_jobs,
                "5xx": sum(s >= 500 for s in statuses), "wall_s": wall, "jobs_per_s": n_jobs / wall,
                "video_s_per_s": sum(d for _, d in results) / wall, "peak_rss_mb": peak[0]}
    finally:
        stop.set()
        proc.terminate()
        proc.wait(15)
        import shutil

        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=20)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--text", default="Hello there. This is a short test of the service.")
    a = ap.parse_args()
    for w in a.workers:
        r = run(w, a.jobs, a.size, a.text)
        print(f"workers {r['workers']}: {r['ok']}/{r['jobs']} decodable videos, {r['5xx']} HTTP 5xx, "
              f"{r['wall_s']:.1f} s wall, {r['jobs_per_s']:.2f} jobs/s, {r['video_s_per_s']:.2f} s of video/s, "
              f"peak RSS {r['peak_rss_mb']:.0f} MB (server + workers)", flush=True)


if __name__ == "__main__":
    main()
