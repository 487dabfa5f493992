"""The service's one seam onto the library: run a request, describe the options.

Everything the service knows about phototalk's jobs goes through ``run_request`` and
``service_options``; both are thin over the public job API (``phototalk.run``,
``phototalk.options.option_specs``), so the HTTP API, the web UI and the CLI share one
definition of every option.
"""
from __future__ import annotations

from typing import Callable

KINDS = ("generate", "edit", "dub")


def _api():
    """The job API: phototalk.run & co. (TEMPORARY: ._compat until main has issue 14's)."""
    import phototalk

    if hasattr(phototalk, "run"):
        from .. import options

        return phototalk.run, phototalk.Request, phototalk.CancelToken, phototalk.Cancelled, options.option_specs
    from . import _compat as c

    return c.run, c.Request, c.CancelToken, c.Cancelled, c.option_specs

# Options that name a file on the server's disk (an extra output or an input read by
# path). A client must never make the server read or write a path it chose, so these
# are not offered over HTTP; the files a job needs arrive as uploads instead.
PATH_OPTIONS = frozenset({"save_track", "transcript_file", "track_in", "export_arkit", "save_audio", "text_file",
                          "report"})


def _is_path_option(spec) -> bool:
    return getattr(spec, "path", False) or spec.name in PATH_OPTIONS or str(spec.metavar or "").upper().startswith("PATH")


def service_options(kind: str) -> list:
    """The ``OptionSpec``s of ``kind`` a client may set over HTTP (no server paths)."""
    option_specs = _api()[4]
    return [s for s in option_specs(kind) if not _is_path_option(s)]


def spec_json(spec) -> dict:
    """One option as the JSON the UI and /v1/options serve (CLI name, default, help, bounds)."""
    t = spec.type if isinstance(spec.type, str) else getattr(spec.type, "__name__", str(spec.type))
    return {"name": spec.name, "flag": spec.flag, "type": t, "default": spec.default, "help": spec.help,
            "choices": list(spec.choices) if spec.choices else None, "min": spec.min, "max": spec.max,
            "metavar": spec.metavar}


def run_request(request: dict, on_progress: Callable, cancel) -> dict:
    """Run one job (``request``: the API's request dict with server-side paths) through
    ``phototalk.run``; ``on_progress(stage, done, total, fraction)``; ``cancel``: a
    ``phototalk.CancelToken``. Returns ``Result.to_dict()``; raises ``PhototalkError``."""
    run = _api()[0]

    def cb(ev) -> None:
        on_progress(ev.stage, int(ev.done), int(ev.total), float(ev.fraction))

    return run(request, on_progress=cb, cancel=cancel).to_dict()


def warm_up() -> None:
    """Import the pipelines now (a worker does this once, before its first job)."""
    from .. import pipeline, speak  # noqa: F401

    _api()


def make_cancel_token():
    return _api()[2]()


def cancelled_error() -> type:
    return _api()[3]


def validate_request(request: dict) -> dict:
    """Canonical form of ``request`` (all options filled) or ``InputError`` (one line)."""
    req = _api()[1].from_dict(request)
    req.validate()
    return req.to_dict()
