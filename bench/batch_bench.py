"""Batch throughput: jobs per minute with 1 and 2 local workers and with 2 Ray workers.

    .venv/bin/python bench/batch_bench.py [--jobs 8] [--size 256] [--runs local1,local2,ray2,...] [--json OUT]

Each run makes the same ``--jobs`` videos (skimage's astronaut saying a ~3 s sentence,
each row its own seed) into a fresh folder with ``run_manifest`` and reports: wall
seconds (worker start-up included), jobs/min, the engine's start-up (Ray: starting a
private local Ray), jobs/min without it, mean seconds per job inside the worker, and the
peak resident memory of each worker process. The speed-up of local2 over local1 is the
acceptance number (>= 1.7x on 2 cores): run it on a machine doing nothing else, since
other work on the cores shows up directly in it. Runs named ``-free`` set
PHOTOTALK_BATCH_PIN=0: jobs are not pinned to their own CPUs (a free job also uses the
other core: espeak beside the face analysis, x264's frame threads).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

SENTENCE = "Thank you for watching. Here is the next part of the course, number {i}."


def _manifest(d: Path, n: int, size: int) -> Path:
    from PIL import Image
    from skimage import data

    Image.fromarray(data.astronaut()).save(d / "face.png")
    m = d / "jobs.jsonl"
    m.write_text("".join(json.dumps({"kind": "generate", "image": "face.png", "text": SENTENCE.format(i=i),
                                     "output": f"v{i:03d}.mp4", "options": {"size": size, "seed": i}}) + "\n"
                         for i in range(n)))
    return m


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--runs", default="local1,local2,ray2,local1-free,local2-free",
                    help="comma list of ENGINE+WORKERS[-free], e.g. local2,ray2; -free: jobs not pinned to CPUs")
    ap.add_argument("--json", help="also write the numbers here")
    a = ap.parse_args()
    from phototalk.batch import run_manifest

    rows = []
    with tempfile.TemporaryDirectory(prefix="batch_bench_") as tmp:
        m = _manifest(Path(tmp), a.jobs, a.size)
        for spec in a.runs.split(","):
            name, _, free = spec.partition("-")  # "local2-free": jobs not pinned to CPUs
            engine, workers = name.rstrip("0123456789"), int(name[len(name.rstrip("0123456789")):] or 1)
            out = Path(tmp) / f"out_{spec}"
            os.environ["PHOTOTALK_BATCH_PIN"] = "0" if free else "1"  # read by the workers, which inherit it
            t0 = time.perf_counter()
            s = run_manifest(m, out, engine=engine, workers=workers)
            wall = time.perf_counter() - t0
            ok = s.count("ok")
            rss: dict = {}  # (node, pid) -> the peak RSS of that worker after each of its jobs (a peak only grows)
            for o in sorted(s.outcomes, key=lambda o: o.row):
                if o.pid is not None and o.peak_rss_mb:
                    rss.setdefault((o.node, o.pid), []).append(o.peak_rss_mb)
            secs = [o.seconds for o in s.outcomes if o.status == "ok"]
            row = {"run": spec, "engine": engine, "workers": workers, "jobs_ok": ok, "wall_s": round(wall, 2),
                   "jobs_per_min": round(60 * ok / wall, 2), "engine_start_s": round(s.engine_start_s, 2),
                   "jobs_per_min_after_start": round(60 * ok / max(wall - s.engine_start_s, 1e-9), 2),
                   "mean_job_s": round(sum(secs) / max(len(secs), 1), 2),
                   "mean_job_cpu_s": round(sum(o.cpu_s for o in s.outcomes if o.status == "ok") / max(ok, 1), 2),
                   "worker_peak_rss_mb": sorted(round(max(v)) for v in rss.values()),
                   # growth of a worker's peak from its first job to its last (a leak would show here)
                   "worker_rss_growth_mb": sorted(round(max(v) - min(v)) for v in rss.values())}
            rows.append(row)
            print(json.dumps(row), flush=True)
    by = {r["run"]: r for r in rows}
    print(f"\n{'run':<8} {'wall_s':>7} {'jobs/min':>9} {'start_s':>8} {'jobs/min*':>10} {'job_s':>6}  "
          "worker peak RSS MiB")
    for r in rows:
        print(f"{r['run']:<8} {r['wall_s']:>7.1f} {r['jobs_per_min']:>9.1f} {r['engine_start_s']:>8.1f} "
              f"{r['jobs_per_min_after_start']:>10.1f} {r['mean_job_s']:>6.2f}  {r['worker_peak_rss_mb']}")
    print("jobs/min*: without the engine's start-up (Ray only)")
    for a1, a2 in (("local1", "local2"), ("local1-free", "local2-free"), ("local1-free", "local2")):
        if a1 in by and a2 in by:
            print(f"speed-up {a2} / {a1}: {by[a2]['jobs_per_min'] / by[a1]['jobs_per_min']:.2f}x "
                  f"(acceptance >= 1.7x on 2 cores; load average now {os.getloadavg()[0]:.1f})")
    if "local1" in by and "ray2" in by:
        print(f"speed-up ray2 / local1: {by['ray2']['jobs_per_min'] / by['local1']['jobs_per_min']:.2f}x, "
              f"{by['ray2']['jobs_per_min_after_start'] / by['local1']['jobs_per_min']:.2f}x after Ray's start-up")
    if a.json:
        Path(a.json).write_text(json.dumps({"jobs": a.jobs, "size": a.size, "runs": rows,
                                            "loadavg": os.getloadavg()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
