"""Manifest rows -> jobs: one request (the JSON of `phototalk run`) per row.

A manifest is JSONL (one request object per line, exactly the request JSON of `phototalk
run`; blank lines and lines starting with ``#`` are skipped) or CSV (a header of field
names: ``kind``, ``image``, ``video``, ``audio``, ``text``, ``output`` and any option
name, e.g. ``seed``, ``voice`` or ``face-index``; an empty cell leaves the field out).

Paths: inputs are relative to the manifest's folder; every output (``output`` and the
output options such as ``save_audio``) is relative to the batch's out-dir and may not
leave it. A row that cannot be made into a job becomes a ``Job`` with ``error`` set: it
is reported as failed and the other rows still run.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import posixpath
from dataclasses import dataclass, field

from ..errors import InputError
from ..validate import input_file

# Where a request names files. A location is (key,) for a top-level field or
# ("options", key) for an option.
INPUT_FIELDS = ("image", "video", "audio")
INPUT_OPTIONS = ("transcript_file", "track_in")  # together: every option whose OptionSpec has path=True
OUTPUT_OPTIONS = ("save_audio", "save_track", "export_arkit")
TOP_FIELDS = ("kind", "image", "video", "audio", "text", "output")  # CSV columns that are not options

STATE_DIR = ".phototalk-batch"  # inside the out-dir: the state file, the lock and the local work folder
MAX_MANIFEST_BYTES = 256 * 2 ** 20  # a manifest is text; 256 MiB is millions of rows


@dataclass
class Job:
    """One manifest row.

    row: 1-based line number in the manifest (the CSV header is line 1);
    output: the main output, relative to the out-dir ('/'-separated, normalised): the
    job's name in the state file and the report;
    request: the request dict with absolute input and output paths (None for a bad row);
    inputs: location -> absolute input path; outputs: location -> path relative to the
    out-dir (the main output's location is ("output",));
    error: why the row cannot run (one line), or None.
    """

    row: int
    output: str
    request: dict | None = None
    inputs: dict[tuple, str] = field(default_factory=dict)
    outputs: dict[tuple, str] = field(default_factory=dict)
    error: str | None = None


def get_at(d: dict, loc: tuple):
    for k in loc[:-1]:
        d = d.get(k) or {}
    return d.get(loc[-1])


def set_at(d: dict, loc: tuple, value) -> None:
    for k in loc[:-1]:
        d = d.setdefault(k, {})
    d[loc[-1]] = value


def _locations(request: dict) -> tuple[list[tuple], list[tuple]]:
    """The input and output locations this request fills."""
    ins = [(k,) for k in INPUT_FIELDS] + [("options", k) for k in INPUT_OPTIONS]
    outs = [("output",)] + [("options", k) for k in OUTPUT_OPTIONS]
    return [loc for loc in ins if get_at(request, loc) is not None], \
        [loc for loc in outs if get_at(request, loc) is not None]


def output_relpath(name, what: str = "output") -> str:
    """``name`` as a normalised '/'-separated path inside the out-dir, or InputError when it
    is absolute, empty or climbs out with '..'."""
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"{what} must be a file name relative to --out-dir, got {name!r}")
    p = name.replace("\\", "/")
    if posixpath.isabs(p) or os.path.isabs(name) or (len(p) > 1 and p[1] == ":"):
        raise InputError(f"{what} must be relative to --out-dir, got an absolute path: {name}")
    norm = posixpath.normpath(p)
    if norm == ".." or norm.startswith("../") or norm in (".", ""):
        raise InputError(f"{what} must stay inside --out-dir: {name}")
    if norm.split("/")[0] == STATE_DIR:
        raise InputError(f"{what} may not be inside --out-dir/{STATE_DIR} (the batch's own files): {name}")
    return norm


def out_path(out_dir: str, rel: str) -> str:
    """The absolute path of ``rel`` in ``out_dir``; InputError when a symlinked folder on
    the way would put it outside."""
    path = os.path.join(out_dir, *rel.split("/"))
    parent = os.path.realpath(os.path.dirname(path))
    root = os.path.realpath(out_dir)
    if parent != root and not parent.startswith(root + os.sep):
        raise InputError(f"output {rel} would leave --out-dir through a symbolic link ({parent})")
    return path


def _job(row: int, raw, base_dir: str, out_dir: str) -> Job:
    if not isinstance(raw, dict):
        return Job(row, f"(row {row})", error=f"a row must be a JSON object (a request), got {type(raw).__name__}")
    request = json.loads(json.dumps(raw))  # a deep copy we may rewrite
    if request.get("options") is not None and not isinstance(request["options"], dict):
        return Job(row, f"(row {row})", error="'options' must be a JSON object")
    try:
        main = output_relpath(request.get("output"))
    except InputError as e:
        return Job(row, str(request.get("output") or f"(row {row})"), error=str(e))
    job = Job(row, main)
    try:
        ins, outs = _locations(request)
        for loc in ins:
            value = get_at(request, loc)
            if not isinstance(value, str):
                raise InputError(f"{loc[-1]} must be a path, got {value!r}")
            job.inputs[loc] = os.path.abspath(os.path.join(base_dir, os.path.expanduser(value)))
            set_at(request, loc, job.inputs[loc])
        for loc in outs:
            rel = output_relpath(get_at(request, loc), loc[-1])
            job.outputs[loc] = rel
            set_at(request, loc, out_path(out_dir, rel))
        absolute_outs = {os.path.realpath(get_at(request, loc)) for loc in outs}
        if len(absolute_outs) < len(outs):
            raise InputError("two outputs of this row name the same file")
        for loc, path in job.inputs.items():
            if os.path.realpath(path) in absolute_outs:
                raise InputError(f"an output would overwrite the input {loc[-1]} {path}")
    except InputError as e:
        job.error = str(e)
        return job
    job.request = request
    return job


LIST_SEPARATOR = ";"  # between the items of a list option in one CSV cell: "2-4.5;6-7"
TRUE_WORDS, FALSE_WORDS = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def parse_cell(name: str, text: str):
    """A CSV cell as the typed value of option ``name`` (checked by its OptionSpec), or
    InputError. An unknown name is passed on as text: the request's check names it."""
    from ..options import SPECS

    spec = SPECS.get(name)
    if spec is None:
        return text
    t, s = spec.type, text.strip()
    try:
        if t is bool:
            if s.lower() not in TRUE_WORDS + FALSE_WORDS:
                raise ValueError
            value = s.lower() in TRUE_WORDS
        elif t is int:
            value = int(s)
        elif t is float:
            value = float(s)
        elif t is list:
            value = [v.strip() for v in s.split(LIST_SEPARATOR) if v.strip()]
        else:
            value = text
    except ValueError:
        kind = {bool: "true or false", int: "a whole number", float: "a number"}[t]
        raise InputError(f"column {name}: {spec.flag} must be {kind}, got {text!r}") from None
    return spec.parse(value)


def _csv_rows(text: str) -> list[tuple[int, dict]]:
    """(line number, request dict) per CSV data row; option cells typed by their spec."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        return []
    names = [h.strip().lstrip("-").replace("-", "_") for h in header]
    seen = set()
    for n in names:
        if not n:
            raise InputError("the CSV header has an empty column name")
        if n in seen:
            raise InputError(f"the CSV header names the column {n!r} twice")
        seen.add(n)
    rows = []
    for values in reader:
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue
        if len(values) > len(names):
            rows.append((line, InputError(f"{len(values)} cells but the header has {len(names)} columns")))
            continue
        cells = {n: v for n, v in zip(names, values) if v != ""}
        request = {k: cells.pop(k) for k in TOP_FIELDS if k in cells}
        try:
            if cells:
                request["options"] = {k: parse_cell(k, v) for k, v in cells.items()}
        except InputError as e:
            rows.append((line, e))
            continue
        rows.append((line, request))
    return rows


def _jsonl_rows(text: str) -> list[tuple[int, object]]:
    rows = []
    for i, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        try:
            rows.append((i, json.loads(s)))
        except json.JSONDecodeError as e:
            rows.append((i, InputError(f"not JSON: {e.msg} at column {e.colno}")))
    return rows


def read_manifest(path: str | os.PathLike, out_dir: str | os.PathLike) -> list[Job]:
    """The jobs of the manifest at ``path`` (.csv or .jsonl/.json), outputs under ``out_dir``.
    An unreadable manifest is an InputError; a bad row is a Job with ``error`` set. Two rows
    naming the same output: the later one is an error."""
    path = input_file(path, "manifest")
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".csv", ".jsonl", ".json", ".ndjson"):
        raise InputError(f"a manifest must be .csv or .jsonl, got {path}")
    with open(path, "rb") as f:
        data = f.read(MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:
        raise InputError(f"manifest {path} is larger than {MAX_MANIFEST_BYTES // 2 ** 20} MiB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"manifest {path} is not UTF-8 text (byte {e.start})") from None
    rows = _csv_rows(text) if ext == ".csv" else _jsonl_rows(text)
    base_dir, out_dir = os.path.dirname(os.path.abspath(path)), os.path.abspath(out_dir)
    jobs, owner = [], {}
    for line, raw in rows:
        job = Job(line, f"(row {line})", error=str(raw)) if isinstance(raw, InputError) else \
            _job(line, raw, base_dir, out_dir)
        for rel in job.outputs.values() if job.error is None else ():
            if rel in owner:
                job.error = f"output {rel} is also written by row {owner[rel]}"
                break
        for rel in job.outputs.values() if job.error is None else ():
            owner[rel] = line
        jobs.append(job)
    return jobs


def file_digest(path: str, cache: dict | None = None) -> str:
    """sha256 hex of a file's bytes (cached per path for one batch run)."""
    if cache is not None and path in cache:
        return cache[path]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    if cache is not None:
        cache[path] = h.hexdigest()
    return h.hexdigest()
