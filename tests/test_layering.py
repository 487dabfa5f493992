"""The import graph of src/phototalk, read from the source (AST, nothing imported): a
module may import only modules of its own layer or lower ones, and the stage packages
of one layer (audio, face, video) not each other. Layers, bottom to top:

  0-2 base    errors, interrupt < validate < core (job context, atomic files, numeric helpers)
  3 analysis  audio (speech in), face (portraits in), video (frames and MP4s in and out)
  4 motion    speech -> MotionTrack (and the motion-model seam)
  5 render    rig + MotionTrack -> frames (and the renderer seam)
  6 options   every option, defined once
  7 pipelines pipeline (generate), speak, edit (edit, dub)
  8 api       run(Request) -> Result
  9 front end cli, serve (HTTP service and UI), the package itself
"""
from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "phototalk"

LAYERS = {
    "errors": 0, "interrupt": 0,
    "validate": 1,
    "core": 2,
    "audio": 3, "face": 3, "video": 3,
    "motion": 4,
    "render": 5,
    "options": 6,
    "pipeline": 7, "speak": 7, "edit": 7,
    "api": 8,
    "cli": 9, "serve": 9, "batch": 9, "train_cli": 9, "": 9,  # "": phototalk/__init__.py (its __version__); serve: HTTP + UI; batch: manifests
}
# packages of one layer that may import each other: the pipelines build on each other,
# and the CLI reads the package's version
PEERS_OK = {7, 9}


def _part(module: str) -> str:
    """'phototalk.audio.tts' -> 'audio'; 'phototalk' -> ''."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _module_or_package(package: str, name: str) -> str:
    """``from package import name``: the submodule ``name`` when one exists, else ``package``."""
    sub = SRC.parent.joinpath(*package.split("."), name)
    return f"{package}.{name}" if sub.with_suffix(".py").exists() or (sub / "__init__.py").exists() else package


def imports() -> list[tuple[str, str, int]]:
    """(importing module, imported module, line) for every phototalk import in the tree."""
    out = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        parts = list(rel.parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        module = ".".join(parts)
        package = parts if is_pkg else parts[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package[:len(package) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                names = [_module_or_package(target, a.name) for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            out += [(module, t, node.lineno) for t in names if t == "phototalk" or t.startswith("phototalk.")]
    return out


def violations(edges) -> list[str]:
    bad = []
    for src, dst, line in edges:
        a, b = _part(src), _part(dst)
        if a == b:
            continue
        la, lb = LAYERS.get(a), LAYERS.get(b)
        if la is None or lb is None:
            bad.append(f"{src}:{line} -> {dst}: a package with no layer (add it to LAYERS)")
        elif lb > la or (lb == la and la not in PEERS_OK):
            bad.append(f"{src}:{line} imports {dst} (layer {la} {a!r} -> layer {lb} {b!r})")
    return bad


def test_no_layer_imports_a_higher_one():
    edges = imports()
    assert len(edges) > 100  # the walk found the tree
    assert violations(edges) == []


def test_the_check_catches_a_leak():
    """The old leaks, as edges: each must be reported."""
    leaks = [("phototalk.audio.tts", "phototalk.motion.visemes", 1),  # audio -> motion
             ("phototalk.video.encode", "phototalk.motion.track", 1),  # video -> motion
             ("phototalk.motion.analytic", "phototalk.options", 1),  # a stage -> the options table
             ("phototalk.render.warp", "phototalk.pipeline", 1),
             ("phototalk.audio.io", "phototalk.face.image", 1)]  # peers in the analysis layer
    assert len(violations(leaks)) == len(leaks)
    assert violations([("phototalk.speak", "phototalk.pipeline", 1), ("phototalk.render.warp", "phototalk.core.job", 1)]) == []
