"""`phototalk batch MANIFEST --out-dir D`: the command line of ``run_manifest`` (prints).

Exit codes (README, "Many videos"): 0 every row done (now or by an earlier run); 3 the
batch ran to the end and some rows failed (the table and the report say which and why);
2 the batch could not start (unreadable manifest, bad option, Ray missing or
unreachable); 1 writing the report or the state failed; 128 + N stopped by signal N
(130 for Ctrl-C): the finished rows are kept and the same command continues.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys

TABLE_MAX_ROWS = 40  # longer batches list only the rows that did not succeed
ENGINES = ("local", "ray")


def add_parser(sub) -> None:
    b = sub.add_parser("batch", help="run every job of a manifest (.csv or .jsonl), locally or on a Ray cluster",
                       description="Run each row of MANIFEST as one job (the request JSON of `phototalk run`; "
                                   "input paths relative to the manifest, outputs relative to --out-dir). "
                                   "Finished rows are skipped by a re-run; a bad row is reported and the rest "
                                   "go on. Exit code 3 when some rows failed.")
    b.add_argument("manifest", help="jobs: .jsonl (one request object per line) or .csv (a column per field "
                                    "and option)")
    b.add_argument("--out-dir", "-d", required=True, help="folder the outputs, the state and the report go to")
    b.add_argument("--engine", choices=ENGINES, default="local",
                   help="local: a process pool here; ray: Ray tasks (default: local)")
    b.add_argument("--address", metavar="HOST:PORT",
                   help="with --engine ray: an existing cluster ('auto' finds the local one); default: start a "
                        "private Ray on 127.0.0.1")
    b.add_argument("--workers", "-j", type=int, metavar="N",
                   help="jobs at once (default: one per CPU core; with --address, the cluster's CPUs)")
    b.add_argument("--retries", type=int, default=2, metavar="K",
                   help="runs again of a job whose worker process or node died (default: 2)")
    b.add_argument("--cpus-per-job", type=float, default=1, metavar="C",
                   help="CPUs each job runs on (pinned on Linux; its threads; Ray's num_cpus) (default: 1)")
    b.add_argument("--report", metavar="PATH", help="the JSONL report (default: OUT_DIR/batch-report.jsonl)")
    b.add_argument("--quiet", "-q", action="store_true", help="no progress bar or table")
    b.add_argument("--verbose", "-v", action="store_true", help="log what the batch does")


def _fmt_s(s) -> str:
    return "" if s is None else f"{s:.1f}"


def print_table(summary, file=None) -> None:
    """The rows (all, or only the unsuccessful ones of a long batch) and the totals
    (to ``file``, default the current sys.stdout)."""
    file = file or sys.stdout
    rows = summary.outcomes
    if len(rows) > TABLE_MAX_ROWS:
        rows = [o for o in rows if o.status not in ("ok", "skipped")][:TABLE_MAX_ROWS]
    width = shutil.get_terminal_size((120, 20)).columns
    if rows:
        out_w = min(max(len("output"), *(len(o.output) for o in rows)), 40)
        print(f"{'row':>5}  {'status':<8} {'time_s':>7}  {'output':<{out_w}}  error", file=file)
        for o in rows:
            line = f"{o.row:>5}  {o.status:<8} {_fmt_s(o.seconds):>7}  {o.output[-out_w:]:<{out_w}}  {o.error or ''}"
            print(line if len(line) <= width else line[:width - 1] + "…", file=file)
    ok, failed, skipped, not_run = (summary.count(s) for s in ("ok", "failed", "skipped", "not run"))
    rss = [o.peak_rss_mb for o in summary.outcomes if o.peak_rss_mb]
    mem = f", worker memory up to {max(rss):.0f} MiB" if rss else ""
    start = f", {summary.engine_start_s:.0f} s of it starting {summary.engine}" if summary.engine_start_s >= 1 else ""
    n = summary.workers
    print(f"{len(summary.outcomes)} rows: {ok} ok, {failed} failed, {skipped} skipped"
          f"{f', {not_run} not run' if not_run else ''} in {summary.wall_s:.1f} s{start} "
          f"({summary.jobs_per_min:.1f} jobs/min on {n} {summary.engine} worker{'s' if n != 1 else ''}{mem}); "
          f"report: {os.path.relpath(summary.report)}", file=file)


def main(a: argparse.Namespace) -> int:
    from tqdm import tqdm

    from . import run_manifest

    bar = tqdm(total=None, unit="job", desc="batch", disable=True if a.quiet else None, file=sys.stderr,
               dynamic_ncols=True)

    def on_job(outcome, done, total):
        if bar.total != total:
            bar.reset(total)
        bar.update(done - bar.n)
        if outcome.status == "failed" and not bar.disable:  # else the table says it once, at the end
            bar.write(f"row {outcome.row} failed: {outcome.error}", file=sys.stderr)

    try:
        summary = run_manifest(a.manifest, a.out_dir, engine=a.engine, address=a.address, workers=a.workers,
                               retries=a.retries, cpus_per_job=a.cpus_per_job, report=a.report, on_job=on_job)
    except KeyboardInterrupt as e:
        bar.close()
        signum = int(getattr(e, "signum", signal.SIGINT))
        summary = getattr(e, "summary", None)
        if summary is not None and not a.quiet:
            print_table(summary)
        done = "" if summary is None else \
            f" after {len(summary.outcomes) - summary.count('not run')} of {len(summary.outcomes)} rows"
        print(f"phototalk: error: stopped by {signal.Signals(signum).name}{done}; finished rows are kept, "
              f"run the same command again to continue", file=sys.stderr)
        return 128 + signum
    finally:
        bar.close()
    if not a.quiet:
        print_table(summary)
    return summary.exit_code
