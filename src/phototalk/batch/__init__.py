"""Many videos from one manifest: ``phototalk batch`` and ``run_manifest``.

    from phototalk.batch import run_manifest
    summary = run_manifest("jobs.jsonl", "out/", engine="local", workers=2)
    print(summary.count("ok"), summary.count("failed"), summary.exit_code)

Each manifest row is one job request (see ``phototalk.batch.manifest``); jobs run in a
local process pool or as Ray tasks (``engine="ray"``); a re-run skips what is done.
"""
from .manifest import Job, read_manifest
from .runner import EXIT_OK, EXIT_SOME_FAILED, BatchSummary, JobOutcome, run_manifest

__all__ = ["run_manifest", "read_manifest", "BatchSummary", "JobOutcome", "Job", "EXIT_OK", "EXIT_SOME_FAILED"]
