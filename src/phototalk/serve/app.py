"""The HTTP API (FastAPI) and the web UI of ``phototalk serve``.

Jobs follow the shape of hosted video-generation APIs (Replicate's predictions):
``POST /v1/jobs`` -> 202 + a job resource that is polled (``GET /v1/jobs/{id}``),
streamed (``/events``, server-sent events) and downloaded (``/output``). Everything a
job needs is uploaded with it; the server stores it under names it chooses.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import secrets
import shutil
import threading
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from . import engine
from .store import TERMINAL, IdempotencyConflict, JobStore, SQLiteStore
from .uploads import Limits, TooLarge, Unprocessable, UploadError, check_text, save_stream, sniff_image, sniff_media
from .worker import OUTPUT_NAME, Pool, job_dir, public_job, reset_attempt_files, store_path

log = logging.getLogger(__name__)

SSE_POLL_S = 0.2  # how often an event stream looks for new events
SSE_HEARTBEAT_S = 15.0  # a comment line this often keeps proxies from closing an idle stream
MAX_PAGE = 100
MAX_WEBHOOK_URL_CHARS = 2048
STATIC = os.path.join(os.path.dirname(__file__), "static")


@dataclass
class Config:
    data_dir: str
    workers: int = 1
    api_key: str | None = None
    limits: Limits = field(default_factory=Limits)
    ttl_s: float = 24 * 3600.0  # finished jobs' files are deleted this long after they finish
    janitor_s: float = 60.0  # how often expired files are looked for
    webhook_secret: str | None = None  # "whsec_<base64>" (Standard Webhooks); default: one kept in data_dir


# ---- documented models (OpenAPI 3.1) ----

class ErrorBody(BaseModel):
    code: str = Field(description="machine-readable, e.g. invalid_input, face_error, file_too_large")
    message: str = Field(description="one line, the same text the CLI prints after 'phototalk: error:'")


class ErrorResponse(BaseModel):
    error: ErrorBody


class Progress(BaseModel):
    stage: str = Field(description="audio, tts, phones, face, motion or render")
    done: int
    total: int = Field(description="0 = unknown")
    fraction: float = Field(ge=0, le=1, description="of the whole job, monotone")


class JobUrls(BaseModel):
    self: str
    output: str
    events: str
    cancel: str


class JobResult(BaseModel):
    n_frames: Optional[int] = None
    fps: Optional[float] = None
    width: Optional[int] = None
    height: Optional[int] = None
    duration_s: Optional[float] = None


class Job(BaseModel):
    id: str
    kind: Literal["generate", "edit", "dub"]
    status: Literal["queued", "running", "succeeded", "failed", "canceled"]
    created_at: str
    started_at: Optional[str] = None
    finished_at: Optional[str] = None
    progress: Optional[Progress] = None
    error: Optional[ErrorBody] = None
    result: Optional[JobResult] = None
    timings_s: Optional[dict[str, float]] = None
    attempt: int = Field(description="how many times a worker took the job (more than 1 after a crash)")
    expired: bool = Field(description="its files were deleted after the retention time")
    webhook_status: Optional[str] = None
    urls: JobUrls


class JobList(BaseModel):
    jobs: list[Job]
    total: int
    limit: int
    offset: int


class OptionInfo(BaseModel):
    name: str
    flag: Optional[str] = None
    type: str
    default: Any = None
    help: str
    choices: Optional[list] = None
    min: Optional[float] = None
    max: Optional[float] = None
    metavar: Optional[str] = None


class OptionList(BaseModel):
    kind: str
    options: list[OptionInfo]


class Health(BaseModel):
    status: str
    workers: int
    workers_alive: int
    jobs: dict[str, int]


ERRORS = {401: {"model": ErrorResponse, "description": "missing or wrong API key"},
          404: {"model": ErrorResponse, "description": "no such job"},
          422: {"model": ErrorResponse, "description": "invalid request"}}

def _option_schemas() -> dict:
    """JSON Schema of every option a job takes over HTTP (all kinds), from the option specs:
    the OpenAPI document then lists them with their CLI help, defaults, choices and bounds."""
    out: dict = {}
    for kind in engine.KINDS:
        for spec in engine.service_options(kind):
            t = {bool: "boolean", int: "integer", float: "number", list: "array"}.get(spec.type, "string")
            sch: dict = {"type": t, "description": f"{spec.flag}: {spec.help}"}
            if t == "array":
                sch["items"] = {"type": "string"}
            if spec.default is not None and spec.default != []:
                sch["default"] = spec.default
            if spec.choices:
                sch["enum"] = list(spec.choices)
            if spec.min is not None:
                sch["minimum"] = spec.min
            if spec.max is not None:
                sch["maximum"] = spec.max
            out.setdefault(spec.name, sch)
    return out


def _job_request_doc() -> dict:
    opts = _option_schemas()
    common = {"kind": {"type": "string", "enum": list(engine.KINDS), "default": "generate"},
              "text": {"type": "string", "description": "words to speak instead of audio (generate, dub)"},
              "webhook": {"type": "string", "format": "uri", "description": "POSTed when the job finishes"}}
    return {"requestBody": {
        "required": True,
        "description": "multipart (files + fields) or JSON (files as data: URIs). Options are the CLI's, "
                       "with underscores (GET /v1/options), as form fields or an `options` JSON object.",
        "content": {
            "multipart/form-data": {"schema": {"type": "object", "properties": {
                **common,
                "image": {"type": "string", "format": "binary", "description": "the portrait (generate)"},
                "audio": {"type": "string", "format": "binary", "description": "speech (generate, dub)"},
                "video": {"type": "string", "format": "binary", "description": "the video (edit, dub)"},
                "options": {"type": "string", "description": "JSON object of options"},
                **opts}}},
            "application/json": {"schema": {"type": "object", "properties": {
                **common,
                "image": {"type": "string", "description": "data: URI (base64)"},
                "audio": {"type": "string", "description": "data: URI (base64)"},
                "video": {"type": "string", "description": "data: URI (base64)"},
                "options": {"type": "object", "properties": opts}}}},
        },
    }}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def _error(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes gets 413 (by Content-Length
    at once, or while it streams in), before any of it is parsed or stored."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for k, v in scope.get("headers", ()):
            if k == b"content-length":
                try:
                    too_big = int(v) > self.limit
                except ValueError:
                    too_big = False
                if too_big:
                    return await _error(413, "request_too_large", f"request body exceeds {self.limit} bytes")(
                        scope, receive, send)
        seen = 0
        started = False

        async def counted():
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    raise _BodyTooLarge()
            return msg

        async def tracked_send(msg):
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, counted, tracked_send)
        except _BodyTooLarge:
            if not started:
                await _error(413, "request_too_large", f"request body exceeds {self.limit} bytes")(
                    scope, receive, send)


class _BodyTooLarge(Exception):
    pass


def _webhook_secret(cfg: Config) -> bytes:
    s = cfg.webhook_secret
    if s is None:
        p = os.path.join(cfg.data_dir, "webhook_secret")
        if not os.path.exists(p):
            with open(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
                f.write("whsec_" + base64.b64encode(secrets.token_bytes(24)).decode())
        with open(p) as f:
            s = f.read().strip()
    return base64.b64decode(s.removeprefix("whsec_"))


def _coerce(spec, value):
    """An option's value as a form field (a string) or JSON gives it -> its type, checked by
    the option's own ``parse`` (bounds, choices); InputError (one line) otherwise."""
    from ..errors import InputError

    t = spec.type
    if isinstance(value, str) and t in (bool, int, float):  # a form field: text to type
        v = value.strip().lower()
        try:
            if t is bool:
                if v not in BOOL_WORDS:
                    raise ValueError
                value = BOOL_WORDS[v]
            elif t is int:
                value = int(v)
            else:
                value = float(v)
        except ValueError:
            raise InputError(f"{spec.flag} must be {BOOL_HINT if t is bool else 'a number'}, got {value!r}") \
                from None
    return spec.parse(value)


BOOL_WORDS = {"1": True, "true": True, "on": True, "yes": True, "0": False, "false": False, "off": False, "no": False}
BOOL_HINT = "true or false"


def _decode_data_uri(s: Any, name: str) -> bytes:
    if not isinstance(s, str) or not s.startswith("data:") or "," not in s:
        raise Unprocessable("invalid_input", f"{name} must be a data: URI (data:<type>;base64,<bytes>)")
    head, payload = s.split(",", 1)
    if not head.endswith(";base64"):
        raise Unprocessable("invalid_input", f"{name} must be base64 encoded (data:<type>;base64,...)")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise Unprocessable("invalid_input", f"{name} is not valid base64") from None


def create_app(cfg: Config, store: JobStore | None = None) -> FastAPI:
    os.makedirs(os.path.join(cfg.data_dir, "jobs"), exist_ok=True)
    store = store or SQLiteStore(store_path(cfg.data_dir))
    secret = _webhook_secret(cfg)
    pool = Pool(cfg.data_dir, cfg.workers, secret, store)
    janitor_stop = threading.Event()

    def janitor():
        while not janitor_stop.wait(cfg.janitor_s):
            for jid in store.expire(time.time() - cfg.ttl_s):
                shutil.rmtree(job_dir(cfg.data_dir, jid), ignore_errors=True)

    @asynccontextmanager
    async def lifespan(app):
        # A job that was running when the last server died runs again from the start.
        for jid in store.requeue_running():
            reset_attempt_files(cfg.data_dir, jid)
            log.warning("job %s was interrupted by a restart; re-queued", jid)
        # uploads of a request that was never acknowledged (the server died while it came in)
        for jid in os.listdir(os.path.join(cfg.data_dir, "jobs")):
            if store.get(jid) is None:
                shutil.rmtree(job_dir(cfg.data_dir, jid), ignore_errors=True)
        pool.start()
        threading.Thread(target=janitor, daemon=True).start()
        yield
        janitor_stop.set()
        pool.stop()

    app = FastAPI(title="phototalk", version=_version(), lifespan=lifespan,
                  description="One portrait + speech -> an MP4 of that person talking. Jobs are queued, run by a "
                              "pool of worker processes and kept in SQLite; see README 'Serve it'.")
    app.state.store, app.state.pool, app.state.cfg = store, pool, cfg
    app.add_middleware(BodyLimit, limit=cfg.limits.max_request_bytes)

    @app.exception_handler(ApiError)
    async def _api_error(request, e: ApiError):
        return _error(e.status, e.code, e.message, e.headers)

    @app.exception_handler(UploadError)
    async def _upload_error(request, e: UploadError):
        return _error(e.status, e.code, str(e))

    @app.exception_handler(HTTPException)
    async def _http_error(request, e: HTTPException):
        return _error(e.status_code, "http_error", str(e.detail), getattr(e, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request, e: RequestValidationError):
        errs = e.errors()
        msg = "; ".join(f"{'.'.join(str(x) for x in er.get('loc', ()))}: {er.get('msg')}" for er in errs[:3])
        return _error(422, "invalid_request", msg or "invalid request")

    def auth(authorization: Optional[str] = Header(None, include_in_schema=False),
             x_api_key: Optional[str] = Header(None, include_in_schema=False),
             api_key: Optional[str] = Query(None, include_in_schema=False)):
        if cfg.api_key is None:
            return
        given = x_api_key or api_key
        if authorization and authorization.lower().startswith("bearer "):
            given = authorization[7:].strip()
        if not given or not hmac.compare_digest(given.encode(), cfg.api_key.encode()):
            raise ApiError(401, "unauthorized", "missing or wrong API key", {"WWW-Authenticate": "Bearer"})

    def base_url(request: Request) -> str:
        return ""  # relative URLs: right behind any proxy

    def get_job(job_id: str) -> dict:
        job = store.get(job_id)
        if job is None:
            raise ApiError(404, "not_found", f"no job {job_id}")
        return job

    @app.get("/", include_in_schema=False)
    def ui():
        with open(os.path.join(STATIC, "index.html"), encoding="utf-8") as f:
            return HTMLResponse(f.read())

    @app.get("/healthz", response_model=Health, tags=["service"])
    def healthz():
        return {"status": "ok", "workers": cfg.workers, "workers_alive": pool.alive(), "jobs": store.counts()}

    @app.get("/v1/options", response_model=OptionList, responses=ERRORS, tags=["service"],
             dependencies=[Depends(auth)])
    def options(kind: Literal["generate", "edit", "dub"] = "generate"):
        """The options a job of ``kind`` takes: the CLI's, with its defaults and help (no server paths)."""
        return {"kind": kind, "options": [engine.spec_json(s) for s in engine.service_options(kind)]}

    @app.get("/v1/voices", tags=["service"], responses=ERRORS, dependencies=[Depends(auth)])
    def voices() -> list[dict[str, Any]]:
        """The voices ``options.voice`` takes (as `phototalk voices`)."""
        return _voices()

    @app.get("/v1/examples/portrait.png", tags=["service"], include_in_schema=False)
    def example_portrait():
        p = os.path.join(cfg.data_dir, "example_portrait.png")
        if not os.path.exists(p):
            from PIL import Image
            from skimage import data

            tmp = p + f".{uuid.uuid4().hex}.tmp"
            Image.fromarray(data.astronaut()).resize((256, 256)).save(tmp)
            os.replace(tmp, p)
        return FileResponse(p, media_type="image/png")

    @app.post("/v1/jobs", status_code=202, response_model=Job, tags=["jobs"], openapi_extra=_job_request_doc(),
              dependencies=[Depends(auth)],
              responses={**ERRORS, 200: {"model": Job, "description": "Idempotency-Key replay: the job made before"},
                         413: {"model": ErrorResponse, "description": "an upload over a limit"},
                         415: {"model": ErrorResponse, "description": "neither multipart nor JSON"}})
    async def submit(request: Request, idempotency_key: Optional[str] = Header(None, max_length=255)):
        """Queue a job. Multipart: files ``image``/``audio``/``video``, fields ``kind``, ``text``,
        ``webhook``, options by name or as an ``options`` JSON field. JSON: the same keys,
        files as base64 ``data:`` URIs."""
        jid = uuid.uuid4().hex
        d = job_dir(cfg.data_dir, jid)
        os.makedirs(os.path.join(d, "in"))
        try:
            fields, files, hashes = await _read_submission(request, d, cfg.limits)
            request_dict, webhook = await run_in_threadpool(_build_request, fields, files, d, cfg.limits)
            ident = json.dumps({"r": {k: v for k, v in request_dict.items() if k not in files}, "f": hashes,
                                "w": webhook}, sort_keys=True)
            job, created = store.create(request_dict["kind"], request_dict, webhook=webhook, job_id=jid,
                                        idem_key=idempotency_key, idem_hash=hashlib.sha256(ident.encode()).hexdigest())
        except IdempotencyConflict:
            shutil.rmtree(d, ignore_errors=True)
            raise ApiError(422, "idempotency_conflict", "this Idempotency-Key was used with a different request")
        except BaseException:
            shutil.rmtree(d, ignore_errors=True)
            raise
        if not created:
            shutil.rmtree(d, ignore_errors=True)
        body = public_job(job, base_url(request))
        return JSONResponse(body, status_code=202 if created else 200,
                            headers={"Location": body["urls"]["self"], **({} if created else {"Idempotent-Replayed": "true"})})

    @app.get("/v1/jobs", response_model=JobList, responses=ERRORS, tags=["jobs"], dependencies=[Depends(auth)])
    def list_jobs(request: Request, limit: int = Query(20, ge=1, le=MAX_PAGE), offset: int = Query(0, ge=0, le=2**62)):
        """Jobs, newest first."""
        jobs, total = store.list(limit, offset)
        return {"jobs": [public_job(j, base_url(request)) for j in jobs], "total": total, "limit": limit,
                "offset": offset}

    @app.get("/v1/jobs/{job_id}", response_model=Job, responses=ERRORS, tags=["jobs"], dependencies=[Depends(auth)])
    def job(job_id: str, request: Request):
        return public_job(get_job(job_id), base_url(request))

    @app.get("/v1/jobs/{job_id}/output", tags=["jobs"], dependencies=[Depends(auth)],
             responses={**ERRORS, 200: {"content": {"video/mp4": {}}, "description": "the MP4 (range requests)"},
                        206: {"description": "a byte range of the MP4"},
                        409: {"model": ErrorResponse, "description": "not finished, or failed"},
                        410: {"model": ErrorResponse, "description": "expired"}})
    def output(job_id: str):
        """The video: H.264 yuv420p + AAC, moov atom first (plays while downloading)."""
        j = get_job(job_id)
        if j["expired"]:
            raise ApiError(410, "expired", "the job's files were deleted after the retention time")
        if j["status"] != "succeeded":
            raise ApiError(409, "not_ready", f"the job is {j['status']}")
        p = os.path.join(job_dir(cfg.data_dir, job_id), OUTPUT_NAME)
        if not os.path.exists(p):
            raise ApiError(410, "expired", "the job's output is gone")
        return FileResponse(p, media_type="video/mp4", filename=f"phototalk-{job_id}.mp4",
                            content_disposition_type="inline")

    @app.get("/v1/jobs/{job_id}/events", tags=["jobs"], dependencies=[Depends(auth)],
             responses={**ERRORS, 200: {"content": {"text/event-stream": {}},
                                        "description": "server-sent events: `status` and `progress`, in order; "
                                                       "`id` is the event's sequence number (Last-Event-ID resumes)"}})
    async def events(job_id: str, request: Request, last_event_id: Optional[str] = Header(None)):
        get_job(job_id)
        try:
            after = int(last_event_id or 0)
        except ValueError:
            after = 0

        async def stream():
            nonlocal after
            yield ": phototalk events\n\n"
            quiet_since = time.monotonic()
            while True:
                evs = await run_in_threadpool(store.events, job_id, after)
                for e in evs:
                    after = e["seq"]
                    yield f"id: {e['seq']}\nevent: {e['type']}\ndata: {json.dumps(e['data'])}\n\n"
                    quiet_since = time.monotonic()
                    if e["type"] == "status" and e["data"].get("status") in TERMINAL:
                        return
                j = await run_in_threadpool(store.get, job_id)
                if j is None or (j["status"] in TERMINAL and not evs):
                    return
                if await request.is_disconnected():
                    return
                if time.monotonic() - quiet_since > SSE_HEARTBEAT_S:
                    yield ": keep-alive\n\n"
                    quiet_since = time.monotonic()
                await asyncio.sleep(SSE_POLL_S)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.post("/v1/jobs/{job_id}/cancel", response_model=Job, responses=ERRORS, tags=["jobs"],
              dependencies=[Depends(auth)])
    def cancel(job_id: str, request: Request):
        """Queued: canceled at once. Running: its worker stops within a second (poll the job)."""
        j = store.request_cancel(job_id)
        if j is None:
            raise ApiError(404, "not_found", f"no job {job_id}")
        return public_job(j, base_url(request))

    @app.delete("/v1/jobs/{job_id}", status_code=204, responses=ERRORS, tags=["jobs"],
                dependencies=[Depends(auth)])
    def delete(job_id: str):
        """Cancel it if running, and remove it and all its files."""
        get_job(job_id)
        store.request_cancel(job_id)
        store.delete(job_id)
        shutil.rmtree(job_dir(cfg.data_dir, job_id), ignore_errors=True)
        return Response(status_code=204)

    return app


_VOICES: list | None = None


def _voices() -> list:
    global _VOICES
    if _VOICES is None:
        from ..audio.tts import voice_languages

        _VOICES = [{"voice": ident, "languages": list(codes)} for ident, codes in
                   sorted(voice_languages(), key=lambda v: (v[1][:1], v[0]))]
    return _VOICES


def _version() -> str:
    from .. import __version__

    return __version__


async def _read_submission(request: Request, d: str, limits: Limits) -> tuple[dict, dict, dict]:
    """(fields, files {name: stored path relative to d, before sniffing}, sha256 of each file)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fields: dict = {}
    files: dict = {}
    hashes: dict = {}
    if ctype == "multipart/form-data":
        try:
            form = await request.form(max_files=3, max_fields=64)
        except (HTTPException, ValueError, AssertionError, KeyError, UnicodeDecodeError) as e:
            raise Unprocessable("invalid_multipart", f"malformed multipart body: {getattr(e, 'detail', e)}") from None
        try:
            for name, v in form.multi_items():
                if hasattr(v, "read"):  # an UploadFile
                    if name not in ("image", "audio", "video") or name in files:
                        raise Unprocessable("invalid_input", f"unexpected file field {name!r} "
                                                             f"(give image, audio or video once each)")
                    rel = os.path.join("in", f"{name}.upload")
                    n, h = await run_in_threadpool(save_stream, v.file, os.path.join(d, rel), limits)
                    files[name], hashes[name] = rel, h
                else:
                    if name in fields:
                        raise Unprocessable("invalid_input", f"field {name!r} given twice")
                    fields[name] = v
        finally:
            await form.close()
        if "options" in fields:
            try:
                fields["options"] = json.loads(fields["options"])
            except ValueError:
                raise Unprocessable("invalid_input", "the options field must be a JSON object") from None
    elif ctype == "application/json":
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            raise Unprocessable("invalid_json", "the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise Unprocessable("invalid_input", "the body must be a JSON object")
        for name, v in body.items():
            if name in ("image", "audio", "video") and v is not None:
                data = _decode_data_uri(v, name)
                if len(data) > limits.max_file_bytes:
                    raise TooLarge("file_too_large", f"an uploaded file exceeds {limits.max_file_bytes} bytes")
                if not data:
                    raise Unprocessable("empty_file", f"{name} is empty")
                rel = os.path.join("in", f"{name}.upload")
                with open(os.path.join(d, rel), "wb") as f:
                    f.write(data)
                files[name], hashes[name] = rel, hashlib.sha256(data).hexdigest()
            else:
                fields[name] = v
    else:
        raise ApiError(415, "unsupported_media_type", "send multipart/form-data or application/json")
    return fields, files, hashes


def _build_request(fields: dict, files: dict, d: str, limits: Limits) -> tuple[dict, str | None]:
    """Sniff the uploads, check the fields, and make the job request (paths relative to d)."""
    from ..errors import PhototalkError

    fields = dict(fields)
    kind = fields.pop("kind", None) or "generate"
    if kind not in engine.KINDS:
        raise Unprocessable("invalid_input", f"kind must be generate, edit or dub, got {str(kind)[:40]!r}")
    text = fields.pop("text", None)
    webhook = fields.pop("webhook", None)
    opts_in = fields.pop("options", None) or {}
    if not isinstance(opts_in, dict):
        raise Unprocessable("invalid_input", "options must be a JSON object")
    if webhook is not None:
        if not isinstance(webhook, str) or not webhook.startswith(("http://", "https://")) \
                or len(webhook) > MAX_WEBHOOK_URL_CHARS:
            raise Unprocessable("invalid_input", "webhook must be an http(s) URL")
    specs = {s.name: s for s in engine.service_options(kind)}
    for name in fields:  # the remaining form fields are options
        if name in opts_in:
            raise Unprocessable("invalid_input", f"option {name} given twice")
    opts_in = {**opts_in, **fields}
    options = {}
    try:
        for name, v in opts_in.items():
            if name not in specs:
                raise Unprocessable("invalid_input", f"unknown option {str(name)[:60]!r} for {kind} (see /v1/options)")
            if v is None or v == "":
                continue
            options[name] = _coerce(specs[name], v)
    except PhototalkError as e:
        raise Unprocessable("invalid_input", str(e)) from None
    need = {"generate": ("image",), "edit": ("video",), "dub": ("video",)}[kind]
    allowed = {"generate": ("image", "audio"), "edit": ("video",), "dub": ("video", "audio")}[kind]
    for name in files:
        if name not in allowed:
            raise Unprocessable("invalid_input", f"a {kind} job takes no {name}")
    for name in need:
        if name not in files:
            raise Unprocessable("invalid_input", f"a {kind} job needs an {name} upload")
    speaks = kind in ("generate", "dub")
    if speaks and (("audio" in files) == (text is not None)):
        raise Unprocessable("invalid_input", "give exactly one of audio or text")
    if not speaks and text is not None:
        raise Unprocessable("invalid_input", "an edit job takes no text")
    if text is not None:
        if not isinstance(text, str):
            raise Unprocessable("invalid_input", "text must be a string")
        check_text(text, limits)
    req: dict = {"kind": kind, "options": options}
    for name, rel in files.items():
        src = os.path.join(d, rel)
        ext = sniff_image(src, limits) if name == "image" else sniff_media(src, name == "video", limits)
        final = os.path.join("in", f"{name}.{ext}")
        os.replace(src, os.path.join(d, final))
        req[name] = final
    if text is not None:
        req["text"] = text
    # the library's own checks (option bounds and choices, combinations), with server paths
    probe = {**req, "output": os.path.join(d, OUTPUT_NAME),
             **{k: os.path.join(d, v) for k, v in req.items() if k in ("image", "audio", "video")}}
    try:
        engine.validate_request(probe)
    except PhototalkError as e:
        raise Unprocessable("invalid_input", str(e)) from None
    except (TypeError, ValueError, OverflowError) as e:
        raise Unprocessable("invalid_input", str(e).splitlines()[0][:300] if str(e) else "invalid options") from None
    return req, webhook
