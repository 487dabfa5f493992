"""Cut MediaPipe's face_landmark_with_attention.tflite at its custom ops, so that LiteRT
(which does not ship them) can run it; phototalk computes the three custom ops itself
(phototalk/face/mesh.py: Landmarks2TransformMatrix, TransformTensorBilinear,
TransformLandmarks). No weight is changed: the two outputs hold the original operators and
tensors, split in two graphs.

    .venv/bin/python scripts/split_face_mesh_model.py PATH/TO/face_landmark_with_attention.tflite

writes src/phototalk/face/models/face_mesh_attention_{stage1,stage2}.tflite:
  stage1: image (1, 192, 192, 3) -> 468-point mesh, face flag, a 48x48x32 feature map and
          the mesh in feature-map units (three copies, one per refined region)
  stage2: the three 4x4 region matrices and 16x16x32 feature crops -> lips (80), eyes
          (2 x 71) and irises (2 x 5) in crop units, and the matrices that map them back
The source file is mediapipe 0.10.21's modules/face_landmark/face_landmark_with_attention.tflite
(sha256 in src/phototalk/face/models/README.md); this script checks it.
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

SOURCE_SHA256 = "e06a804e0144f9929eda782122916b35d60c697c3c9344013ca2bbe76a6ce2b4"
OUT_DIR = Path(__file__).resolve().parents[1] / "src" / "phototalk" / "face" / "models"
STAGE1_OUTPUTS = ("p_re_lu_3", "multiply_by_constant", "multiply_by_constant_2", "multiply_by_constant_4",
                  "conv_faceflag", "output_mesh_identity")


def main(argv: list[str]) -> int:
    import flatbuffers
    import numpy as np
    from ai_edge_litert import schema_py_generated as s

    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    buf = Path(argv[0]).read_bytes()
    if hashlib.sha256(buf).hexdigest() != SOURCE_SHA256:
        print("split: not mediapipe 0.10.21's face_landmark_with_attention.tflite (sha256 differs)", file=sys.stderr)
        return 2

    def load():
        return s.ModelT.InitFromObj(s.Model.GetRootAsModel(buf, 0))

    m = load()
    g = m.subgraphs[0]
    names = {t.name.decode(): i for i, t in enumerate(g.tensors)}
    custom = {k for k, op in enumerate(g.operators) if m.operatorCodes[op.opcodeIndex].customCode}
    producer = {int(t): k for k, op in enumerate(g.operators) for t in op.outputs}
    is_tl = {k for k in custom if m.operatorCodes[g.operators[k].opcodeIndex].customCode == b"TransformLandmarks"}

    def closure(targets):
        """Non-custom operators needed for ``targets`` (tensor ids), stopping at custom ops."""
        need, todo, seen = set(), list(targets), set()
        while todo:
            t = todo.pop()
            if t in seen or t not in producer:
                continue
            seen.add(t)
            k = producer[t]
            if k in custom:
                continue
            need.add(k)
            todo += [int(x) for x in g.operators[k].inputs if x >= 0]
        return need

    out1 = [names[n] for n in STAGE1_OUTPUTS]
    tl_inputs = sorted({int(t) for k in is_tl for t in g.operators[k].inputs})
    ops1 = closure(out1)
    ops2 = closure(tl_inputs) - ops1
    made = {int(t) for k in ops2 for t in g.operators[k].outputs}
    in2 = sorted(({int(t) for k in ops2 for t in g.operators[k].inputs if t >= 0} - made) & set(producer))

    def build(ops, inputs, outputs) -> bytes:
        mm = load()
        gg = mm.subgraphs[0]
        used = sorted(set(inputs) | set(outputs) | {int(t) for k in ops for t in
                                                       list(gg.operators[k].inputs) + list(gg.operators[k].outputs)
                                                       if t >= 0})
        remap = {t: i for i, t in enumerate(used)}
        new_ops = []
        for k in sorted(ops):
            op = gg.operators[k]
            op.inputs = np.array([remap[int(t)] if t >= 0 else -1 for t in op.inputs], np.int32)
            op.outputs = np.array([remap[int(t)] for t in op.outputs], np.int32)
            new_ops.append(op)
        tensors = [gg.tensors[t] for t in used]
        buffers = [mm.buffers[0]]
        for t in tensors:
            b = mm.buffers[t.buffer]
            if t.buffer != 0 and b.data is not None and len(b.data):
                buffers.append(b)
                t.buffer = len(buffers) - 1
            else:
                t.buffer = 0
        gg.tensors, gg.operators = tensors, new_ops
        gg.inputs = np.array([remap[t] for t in inputs], np.int32)
        gg.outputs = np.array([remap[t] for t in outputs], np.int32)
        mm.buffers = buffers
        mm.signatureDefs = mm.metadata = mm.metadataBuffer = None
        fb = flatbuffers.Builder(1 << 22)
        fb.Finish(mm.Pack(fb), file_identifier=b"TFL3")
        return bytes(fb.Output())

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name, data in (("face_mesh_attention_stage1.tflite", build(ops1, [int(g.inputs[0])], out1)),
                       ("face_mesh_attention_stage2.tflite", build(ops2, in2, tl_inputs))):
        (OUT_DIR / name).write_bytes(data)
        print(f"{name}  {len(data)} bytes  sha256 {hashlib.sha256(data).hexdigest()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
