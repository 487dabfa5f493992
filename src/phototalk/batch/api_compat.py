"""TEMPORARY: the three things batch needs from the job API (API.md), until
``phototalk.run`` / ``Request`` / ``option_specs`` are on main. Deleted at the merge."""
from __future__ import annotations

from ..errors import InputError


def parse_option(kind: str, name: str, text: str):
    """A CSV cell as the typed value of option ``name``."""
    from ..options import option_fields, speech_option_fields

    types = {n: t for n, _, t, _ in option_fields() + speech_option_fields()}
    if name not in types:
        return text
    t = types[name]
    if t is bool:
        return text.strip().lower() in ("1", "true", "yes", "on")
    try:
        return t(text)
    except ValueError:
        raise InputError(f"option {name} must be a {t.__name__}, got {text!r}") from None


def canonical(request: dict) -> dict:
    """The request's canonical form (to be hashed); InputError for a bad one."""
    kind = request.get("kind", "generate")
    if kind not in ("generate", "edit", "dub"):
        raise InputError(f"kind must be generate, edit or dub, got {kind!r}")
    return dict(request, kind=kind)


def run(request: dict):
    kind, o = request.get("kind", "generate"), dict(request.get("options") or {})
    if kind == "generate":
        from ..pipeline import generate
        from ..speak import speak

        if request.get("text") is not None:
            if "rate" in o:
                o["rate_wpm"] = o.pop("rate")
            return speak(request["image"], request["text"], request["output"], **o)
        return generate(request["image"], request["audio"], request["output"], **o)
    from ..edit import dub_video, edit_video

    if kind == "edit":
        return edit_video(request["video"], request["output"], **o)
    return dub_video(request["video"], request["output"], audio=request.get("audio"), text=request.get("text"), **o)
