"""`phototalk serve`: the HTTP API and web UI (needs the ``serve`` extra)."""
from __future__ import annotations

import argparse
import os

from .uploads import Limits


def add_parser(sub) -> None:
    L = Limits()
    s = sub.add_parser("serve", help="run the HTTP API and web UI (jobs in SQLite, a pool of worker processes)",
                       description="Serve phototalk over HTTP: POST /v1/jobs, a web UI at /, OpenAPI at /docs.")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    s.add_argument("--port", type=int, default=8000, help="TCP port (default: 8000)")
    s.add_argument("--data-dir", default="phototalk-data", metavar="DIR",
                   help="jobs database, uploads and outputs (default: ./phototalk-data)")
    s.add_argument("--workers", type=int, default=1, metavar="N",
                   help="worker processes, each runs one job at a time (default: 1)")
    s.add_argument("--api-key", default=os.environ.get("PHOTOTALK_API_KEY"), metavar="KEY",
                   help="require this key (Authorization: Bearer KEY); default: $PHOTOTALK_API_KEY, else none")
    s.add_argument("--ttl-hours", type=float, default=24.0, metavar="H",
                   help="delete a finished job's files this long after it finished (default: 24)")
    s.add_argument("--max-upload-mb", type=float, default=L.max_file_bytes / 2 ** 20, metavar="MB",
                   help=f"largest uploaded file (default: {L.max_file_bytes / 2 ** 20:g})")
    s.add_argument("--max-media-s", type=float, default=L.max_media_s, metavar="S",
                   help=f"longest audio/video upload in seconds (default: {L.max_media_s:g})")
    s.add_argument("--max-text-chars", type=int, default=L.max_text_chars, metavar="N",
                   help=f"longest text to speak (default: {L.max_text_chars})")
    s.add_argument("--max-image-pixels", type=int, default=L.max_image_pixels, metavar="N",
                   help=f"largest image, width x height (default: {L.max_image_pixels})")


def serve(a: argparse.Namespace) -> int:
    from ..errors import InputError

    try:
        import uvicorn

        from .app import Config, create_app
    except ImportError as e:
        raise InputError(f"serve needs the 'serve' extra ({e.name} is missing): pip install 'phototalk[serve]'") \
            from None
    if a.workers < 1 or not 1 <= a.port <= 65535 or a.ttl_hours <= 0:
        raise InputError("--workers must be 1 or more, --port 1..65535 and --ttl-hours above 0")
    import socket

    try:  # a clear one-line error now, not uvicorn's after the workers started
        with socket.create_server((a.host, a.port)):
            pass
    except OSError as e:
        raise InputError(f"cannot listen on {a.host}:{a.port}: {e.strerror or e}") from None
    file_bytes = int(a.max_upload_mb * 2 ** 20)
    limits = Limits(max_file_bytes=file_bytes, max_request_bytes=file_bytes * 2 + 2 ** 20,
                    max_media_s=a.max_media_s, max_text_chars=a.max_text_chars, max_image_pixels=a.max_image_pixels)
    os.makedirs(a.data_dir, exist_ok=True)
    cfg = Config(data_dir=os.path.abspath(a.data_dir), workers=a.workers, api_key=a.api_key or None, limits=limits,
                 ttl_s=a.ttl_hours * 3600, janitor_s=min(60.0, a.ttl_hours * 3600 / 4))
    print(f"phototalk serve: http://{a.host}:{a.port}/ ({a.workers} worker(s), data in {cfg.data_dir})", flush=True)
    uvicorn.run(create_app(cfg), host=a.host, port=a.port, log_level="warning")
    return 0
