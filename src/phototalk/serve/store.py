"""Durable job state: the ``JobStore`` interface and its embedded SQLite implementation.

The server process and every worker process open the same store; all coordination
between them (claiming a job, progress, cancel requests, results) goes through it, so a
server killed at any moment loses nothing that was acknowledged. A shared database
(Postgres, ...) can replace SQLite by implementing ``JobStore``.

Run-once rule: a claim bumps the job's ``attempt``; ``progress`` and ``finish`` only
count for the attempt that currently holds the job, so a worker that lost its job (the
job was re-queued after a crash) can never complete it a second time.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from abc import ABC, abstractmethod

STATUSES = ("queued", "running", "succeeded", "failed", "canceled")
TERMINAL = frozenset({"succeeded", "failed", "canceled"})
BUSY_TIMEOUT_MS = 10_000  # how long a writer waits for another process's transaction


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before with a different request."""


class JobStore(ABC):
    """What the service needs from a job database. Jobs are plain dicts (see ``_row``)."""

    @abstractmethod
    def create(self, kind: str, request: dict, *, webhook: str | None = None, idem_key: str | None = None,
               idem_hash: str | None = None, job_id: str | None = None) -> tuple[dict, bool]:
        """Insert a queued job; with ``idem_key`` seen before return (that job, False)
        or raise ``IdempotencyConflict`` when its ``idem_hash`` differs."""

    @abstractmethod
    def get(self, job_id: str) -> dict | None: ...

    @abstractmethod
    def list(self, limit: int, offset: int) -> tuple[list[dict], int]:
        """Newest first; (jobs, total count)."""

    @abstractmethod
    def claim(self, worker: str) -> dict | None:
        """Atomically take the oldest queued job (-> running, attempt + 1), or None."""

    @abstractmethod
    def progress(self, job_id: str, attempt: int, progress: dict) -> bool:
        """Record progress of ``attempt``; False when the attempt no longer holds the job."""

    @abstractmethod
    def cancel_requested(self, job_id: str, attempt: int) -> bool: ...

    @abstractmethod
    def finish(self, job_id: str, attempt: int, status: str, *, result: dict | None = None,
               error: dict | None = None) -> bool:
        """Move ``attempt``'s running job to a terminal status; False (nothing changed)
        when that attempt no longer holds it."""

    @abstractmethod
    def request_cancel(self, job_id: str) -> dict | None:
        """Queued -> canceled at once; running -> flagged for its worker. The job after."""

    @abstractmethod
    def requeue_running(self, worker: str | None = None) -> list[str]:
        """Running jobs (of ``worker``, or all) back to queued; their ids."""

    @abstractmethod
    def delete(self, job_id: str) -> bool: ...

    @abstractmethod
    def expire(self, finished_before: float) -> list[str]:
        """Mark terminal jobs finished before that time expired; their ids."""

    @abstractmethod
    def events(self, job_id: str, after_seq: int) -> list[dict]:
        """The job's events with seq > after_seq, in order: {seq, type, data, at}."""

    @abstractmethod
    def counts(self) -> dict: ...

    @abstractmethod
    def set_webhook_status(self, job_id: str, status: str) -> None: ...


SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    request TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    progress TEXT,
    error TEXT,
    result TEXT,
    webhook TEXT,
    webhook_status TEXT,
    idem_key TEXT UNIQUE,
    idem_hash TEXT,
    attempt INTEGER NOT NULL DEFAULT 0,
    worker TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    expired INTEGER NOT NULL DEFAULT 0,
    seq INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, created_at);
CREATE TABLE IF NOT EXISTS events (
    job_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (job_id, seq)
);
"""


def _row(r: sqlite3.Row | None) -> dict | None:
    if r is None:
        return None
    d = dict(r)
    for k in ("request", "progress", "error", "result"):
        d[k] = json.loads(d[k]) if d[k] else None
    d["cancel_requested"] = bool(d["cancel_requested"])
    d["expired"] = bool(d["expired"])
    return d


class SQLiteStore(JobStore):
    """``JobStore`` in one SQLite file (WAL: readers never block the one writer).
    One connection per thread; safe across processes."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self._local = threading.local()
        self._conn().executescript(SCHEMA)  # its own transaction (executescript commits)

    def _conn(self) -> sqlite3.Connection:
        c = getattr(self._local, "conn", None)
        if c is None:
            c = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            c.row_factory = sqlite3.Row
            c.execute("PRAGMA journal_mode=WAL")
            c.execute("PRAGMA synchronous=NORMAL")
            c.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self._local.conn = c
        return c

    class _Tx:
        def __init__(self, c):
            self.c = c

        def __enter__(self):
            self.c.execute("BEGIN IMMEDIATE")  # take the write lock first: no upgrade deadlocks
            return self.c

        def __exit__(self, et, e, tb):
            self.c.execute("ROLLBACK" if et else "COMMIT")

    def _tx(self):
        return self._Tx(self._conn())

    @staticmethod
    def _event(c, job_id: str, type_: str, data: dict) -> None:
        seq = c.execute("UPDATE jobs SET seq = seq + 1 WHERE id = ? RETURNING seq", (job_id,)).fetchone()[0]
        c.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?)", (job_id, seq, type_, json.dumps(data), time.time()))

    def create(self, kind, request, *, webhook=None, idem_key=None, idem_hash=None, job_id=None):
        with self._tx() as c:
            if idem_key is not None:
                old = c.execute("SELECT * FROM jobs WHERE idem_key = ?", (idem_key,)).fetchone()
                if old is not None:
                    if old["idem_hash"] != idem_hash:
                        raise IdempotencyConflict(idem_key)
                    return _row(old), False
            job_id = job_id or uuid.uuid4().hex
            c.execute("INSERT INTO jobs (id, kind, status, request, created_at, webhook, idem_key, idem_hash) "
                      "VALUES (?, ?, 'queued', ?, ?, ?, ?, ?)",
                      (job_id, kind, json.dumps(request), time.time(), webhook, idem_key, idem_hash))
            self._event(c, job_id, "status", {"status": "queued"})
            return _row(c.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()), True

    def get(self, job_id):
        return _row(self._conn().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())

    def list(self, limit, offset):
        c = self._conn()
        rows = c.execute("SELECT * FROM jobs ORDER BY created_at DESC, id LIMIT ? OFFSET ?", (limit, offset))
        return [_row(r) for r in rows], c.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]

    def claim(self, worker):
        with self._tx() as c:
            r = c.execute("UPDATE jobs SET status = 'running', attempt = attempt + 1, worker = ?, started_at = ?, "
                          "progress = NULL WHERE id = (SELECT id FROM jobs WHERE status = 'queued' "
                          "ORDER BY created_at, id LIMIT 1) RETURNING *", (worker, time.time())).fetchone()
            if r is None:
                return None
            self._event(c, r["id"], "status", {"status": "running", "attempt": r["attempt"]})
            return _row(r)

    def progress(self, job_id, attempt, progress):
        with self._tx() as c:
            n = c.execute("UPDATE jobs SET progress = ? WHERE id = ? AND attempt = ? AND status = 'running'",
                          (json.dumps(progress), job_id, attempt)).rowcount
            if n:
                self._event(c, job_id, "progress", progress)
            return bool(n)

    def cancel_requested(self, job_id, attempt):
        r = self._conn().execute("SELECT cancel_requested, attempt, status FROM jobs WHERE id = ?",
                                 (job_id,)).fetchone()
        return r is None or bool(r[0]) or r[1] != attempt or r[2] != "running"

    def finish(self, job_id, attempt, status, *, result=None, error=None):
        assert status in TERMINAL
        with self._tx() as c:
            n = c.execute("UPDATE jobs SET status = ?, finished_at = ?, result = ?, error = ? "
                          "WHERE id = ? AND attempt = ? AND status = 'running'",
                          (status, time.time(), json.dumps(result) if result else None,
                           json.dumps(error) if error else None, job_id, attempt)).rowcount
            if n:
                data = {"status": status}
                if error:
                    data["error"] = error
                self._event(c, job_id, "status", data)
            return bool(n)

    def request_cancel(self, job_id):
        with self._tx() as c:
            r = c.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if r is None:
                return None
            if r[0] == "queued":
                c.execute("UPDATE jobs SET status = 'canceled', finished_at = ?, error = ? WHERE id = ?",
                          (time.time(), json.dumps({"code": "canceled", "message": "cancelled"}), job_id))
                self._event(c, job_id, "status", {"status": "canceled"})
            elif r[0] == "running":
                c.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
            return _row(c.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())

    def requeue_running(self, worker=None):
        with self._tx() as c:
            q = "SELECT id, cancel_requested FROM jobs WHERE status = 'running'" + (" AND worker = ?" if worker else "")
            rows = c.execute(q, (worker,) if worker else ()).fetchall()
            ids = []
            for job_id, cancel in rows:
                if cancel:  # its owner asked for it to stop: it stops here
                    c.execute("UPDATE jobs SET status = 'canceled', finished_at = ?, error = ? WHERE id = ?",
                              (time.time(), json.dumps({"code": "canceled", "message": "cancelled"}), job_id))
                    self._event(c, job_id, "status", {"status": "canceled"})
                    continue
                c.execute("UPDATE jobs SET status = 'queued', worker = NULL, progress = NULL WHERE id = ?", (job_id,))
                self._event(c, job_id, "status", {"status": "queued", "requeued": True})
                ids.append(job_id)
            return ids

    def delete(self, job_id):
        with self._tx() as c:
            c.execute("DELETE FROM events WHERE job_id = ?", (job_id,))
            return bool(c.execute("DELETE FROM jobs WHERE id = ?", (job_id,)).rowcount)

    def expire(self, finished_before):
        with self._tx() as c:
            rows = c.execute("UPDATE jobs SET expired = 1 WHERE expired = 0 AND finished_at IS NOT NULL "
                             "AND finished_at < ? RETURNING id", (finished_before,)).fetchall()
            return [r[0] for r in rows]

    def events(self, job_id, after_seq):
        rows = self._conn().execute("SELECT seq, type, data, at FROM events WHERE job_id = ? AND seq > ? "
                                    "ORDER BY seq", (job_id, after_seq))
        return [{"seq": r[0], "type": r[1], "data": json.loads(r[2]), "at": r[3]} for r in rows]

    def counts(self):
        rows = self._conn().execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        return {s: 0 for s in STATUSES} | {r[0]: r[1] for r in rows}

    def set_webhook_status(self, job_id, status):
        with self._tx() as c:
            c.execute("UPDATE jobs SET webhook_status = ? WHERE id = ?", (status, job_id))
