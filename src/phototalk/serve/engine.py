"""The service's one seam onto the library: run a request, describe the options.

Everything the service knows about phototalk's jobs goes through ``run_request`` and
``service_options``; both are thin over the public job API (``phototalk.run``,
``phototalk.options.option_specs``), so the HTTP API, the web UI and the CLI share one
definition of every option.
"""
from __future__ import annotations

from typing import Callable

from ..options import KINDS as _OPTION_KINDS

KINDS = tuple(_OPTION_KINDS)  # "generate", "edit", "dub"


def service_options(kind: str) -> list:
    """The ``OptionSpec``s of ``kind`` a client may set over HTTP: all but those naming a
    file on the server (``spec.path``: --save-track, --track-in, ...). A client must never
    make the server read or write a path it chose; the files a job needs are uploads."""
    from ..options import option_specs

    return [s for s in option_specs(kind) if not s.path]


def spec_json(spec) -> dict:
    """One option as /v1/options and the UI serve it (CLI flag, default, help, bounds)."""
    return spec.to_dict()


def run_request(request: dict, on_progress: Callable, cancel) -> dict:
    """Run one job (``request``: the API's request dict with server-side paths) through
    ``phototalk.run``; ``on_progress(stage, done, total, fraction)``; ``cancel``: a
    ``phototalk.CancelToken``. Returns ``Result.to_dict()``; raises ``PhototalkError``."""
    from .. import run

    def cb(ev) -> None:
        on_progress(ev.stage, int(ev.done), int(ev.total), float(ev.fraction))

    return run(request, on_progress=cb, cancel=cancel).to_dict()


def warm_up() -> None:
    """Import the pipelines now (a worker does this once, before its first job)."""
    from .. import api, pipeline, speak  # noqa: F401
    from ..edit import pipeline as _edit  # noqa: F401


def make_cancel_token():
    from .. import CancelToken

    return CancelToken()


def cancelled_error() -> type:
    from .. import Cancelled

    return Cancelled


def validate_request(request: dict) -> dict:
    """Canonical form of ``request`` (all options filled) or ``InputError`` (one line)."""
    from .. import Request

    req = Request.from_dict(request)
    req.validate()
    return req.to_dict()
