"""MediaPipe's face models (vendored .tflite files, see models/README.md) run with LiteRT,
with our own pre- and post-processing in place of MediaPipe's graphs.

What runs, and how it reproduces MediaPipe 0.10.21's legacy ``solutions``:

- Face detection (BlazeFace short range 128 px, full range 192 px): the image is
  letterboxed into the square input, SSD boxes are decoded against fixed anchors and
  merged by weighted non-maximum suppression, as MediaPipe's FaceDetection graph does.
- Face landmarks (478 points): MediaPipe's refined face mesh (face_landmark_with_attention),
  on a square crop rotated so that the eyes are level (from the detector's eye keypoints,
  or in video mode from the previous frame's landmarks), 1.5x the face box, resampled to
  192x192; points are projected back through the same rotation. The model uses three
  TFLite custom ops that LiteRT does not ship, so it is vendored cut in two at them
  (scripts/split_face_mesh_model.py, no weight changed) and the ops run here in numpy:
  stage 1 gives the 468-point mesh and a feature map; from the mesh, a 16x16 feature
  crop around the lips and each eye (Landmarks2TransformMatrix, TransformTensorBilinear);
  stage 2 refines lips, eyelids and irises in those crops, mapped back by the crops'
  matrices (TransformLandmarks). This reproduces MediaPipe's landmarks to ~0.01 px.
- Person mask: selfie segmentation (general model, 256x256), resized to the image.

All coordinates here are pixels of the image passed in (x right, y down); z is
MediaPipe's relative depth at the scale of x (negative towards the viewer).
"""
from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MODEL_DIR = Path(__file__).with_name("models")
N_MESH = 468  # surface points; 468..477 are the irises (image-left eye's first, centre first)
N_IRIS = 5

DET_NMS_IOU = 0.3  # MediaPipe FaceDetection: weighted NMS merges boxes overlapping more than this
MESH_INPUT_PX = 192
MESH_ROI_SCALE = 1.5  # landmark crop side / face box long side
SEGMENT_INPUT_PX = 256
PRESENCE_THRESHOLD = 0.5  # face-presence score below which the landmark model reports no face

# Regions the attention model refines (MediaPipe's TensorsToFaceLandmarksWithAttention):
# the mesh points each region's output replaces, in the model's output order.
LIPS = np.array([61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 185, 40, 39, 37, 0, 267, 269, 270, 409,
                 78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 191, 80, 81, 82, 13, 312, 311, 310, 415,
                 76, 77, 90, 180, 85, 16, 315, 404, 320, 307, 306, 184, 74, 73, 72, 11, 302, 303, 304, 408,
                 62, 96, 89, 179, 86, 15, 316, 403, 319, 325, 292, 183, 42, 41, 38, 12, 268, 271, 272, 407])
EYE_L = np.array([33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173,
                  130, 25, 110, 24, 23, 22, 26, 112, 243, 247, 30, 29, 27, 28, 56, 190,
                  226, 31, 228, 229, 230, 231, 232, 233, 244, 113, 225, 224, 223, 222, 221, 189,
                  35, 124, 46, 53, 52, 65, 143, 111, 117, 118, 119, 120, 121, 128, 245,
                  156, 70, 63, 105, 66, 107, 55, 193])  # image-left eye: lids, halos, brow
EYE_R = np.array([263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398,
                  359, 255, 339, 254, 253, 252, 256, 341, 463, 467, 260, 259, 257, 258, 286, 414,
                  446, 261, 448, 449, 450, 451, 452, 453, 464, 342, 445, 444, 443, 442, 441, 413,
                  265, 353, 276, 283, 282, 295, 372, 340, 346, 347, 348, 349, 350, 357, 465,
                  383, 300, 293, 334, 296, 336, 285, 417])
EYE_LIDS = 16  # the first 16 eye points are the lid margins: their mean depth is the iris depth
# Landmarks2TransformMatrix options of the three regions: points, then the pair that levels it.
REGIONS = ((LIPS, 61, 291), (EYE_L, 33, 133), (EYE_R, 362, 263))
REGION_CROP_PX = 16  # side of the feature crop of each region
REGION_SCALE = 1.5  # feature crop side / region extent
STAGE1 = "face_mesh_attention_stage1.tflite"
STAGE2 = "face_mesh_attention_stage2.tflite"

_lock = threading.RLock()  # only while an interpreter is built (fd 2 is muted process-wide then)
_local = threading.local()  # .interpreters: {model file: LiteRT interpreter} of this thread


@dataclass(frozen=True)
class DetectorSpec:
    """One BlazeFace variant: model file, input side, SSD anchor layout (MediaPipe's
    SsdAnchorsCalculator options: strides per layer, anchors per cell), and the lowest
    score its decoder keeps whatever the caller asks (MediaPipe's full-range graph keeps
    its own 0.6 even when the solution is given a lower min_detection_confidence; boxes
    between the two would change the weighted NMS average)."""

    file: str
    input_px: int
    strides: tuple[int, ...]
    anchors_per_cell: tuple[int, ...]
    floor_score: float = 0.0


SHORT_RANGE = DetectorSpec("face_detection_short_range.tflite", 128, (8, 16), (2, 6))
FULL_RANGE = DetectorSpec("face_detection_full_range_sparse.tflite", 192, (4,), (1,), floor_score=0.6)


@dataclass
class Detection:
    """score in [0, 1]; box (x, y, w, h) pixels; keypoints (6, 2) pixels: eye (image
    left), eye (image right), nose tip, mouth, ear (image left), ear (image right)."""

    score: float
    box: tuple[float, float, float, float]
    keypoints: np.ndarray


@dataclass
class RotatedRect:
    """Square crop region: centre (cx, cy) and side in pixels, rotation in radians
    (MediaPipe's sense: positive turns the crop clockwise on screen)."""

    cx: float
    cy: float
    side: float
    angle: float = 0.0


@contextlib.contextmanager
def native_stderr_muted():
    """LiteRT writes an INFO line about its CPU delegate straight to file descriptor 2,
    which no Python logging setting reaches; mute fd 2 around model loading so the CLI's
    output stays one clean line per message. Python exceptions are unaffected.
    PHOTOTALK_NATIVE_LOGS=1 keeps the native lines (for debugging)."""
    if os.environ.get("PHOTOTALK_NATIVE_LOGS"):
        yield
        return
    with _lock:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _interpreter(file: str):
    """This thread's LiteRT interpreter of model ``file``, built on first use (~10 ms).
    An interpreter's tensors are state of one call, so each thread has its own: jobs in
    several threads (a server) analyse faces at the same time, no lock held."""
    its = getattr(_local, "interpreters", None)
    if its is None:
        its = _local.interpreters = {}
    it = its.get(file)
    if it is None:
        from ai_edge_litert.interpreter import Interpreter

        with native_stderr_muted():
            it = Interpreter(model_path=str(MODEL_DIR / file), num_threads=1)
            it.allocate_tensors()
        its[file] = it
    return it


def _run(file: str, x: np.ndarray) -> list[np.ndarray]:
    """Outputs of model ``file`` on input ``x`` ((1, H, W, 3) float32), in the model's
    output order, as copies."""
    it = _interpreter(file)
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return [it.get_tensor(d["index"]).copy() for d in it.get_output_details()]


def _crop(image: np.ndarray, rect: RotatedRect, out_px: int, *, border_zero: bool = False,
          flip: bool = False) -> np.ndarray:
    """(out_px, out_px, 3) uint8 resampling of the rotated square ``rect`` of ``image``
    (bilinear; outside the image: black or the replicated edge), the rect's corners on the
    output's corners as MediaPipe's ImageToTensorCalculator maps them. ``flip`` mirrors it."""
    import cv2

    m = _crop_matrix(rect, out_px, flip)
    return cv2.warpAffine(image, m, (out_px, out_px), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT if border_zero else cv2.BORDER_REPLICATE)


def _crop_matrix(rect: RotatedRect, out_px: int, flip: bool = False) -> np.ndarray:
    """(2, 3) affine map image pixels -> crop pixels for ``_crop``."""
    c, s = math.cos(rect.angle), math.sin(rect.angle)
    h = rect.side / 2
    # Crop top-left, top-right and bottom-left corners in the image.
    ux, uy = c * h, s * h  # half a side along the crop's x axis
    vx, vy = -s * h, c * h  # half a side along its y axis
    src = np.array([[rect.cx - ux - vx, rect.cy - uy - vy], [rect.cx + ux - vx, rect.cy + uy - vy],
                    [rect.cx - ux + vx, rect.cy - uy + vy]], np.float64)
    dst = np.array([[0, 0], [out_px, 0], [0, out_px]], np.float64)
    if flip:
        dst[:, 0] = out_px - dst[:, 0]
    a = np.linalg.solve(np.c_[src, np.ones(3)], dst)  # (3, 2): [x y 1] @ a
    return a.T


def _project(points: np.ndarray, rect: RotatedRect) -> np.ndarray:
    """(n, 3) points in crop units ([0, 1] across the crop; z in crop widths) -> image pixels."""
    c, s = math.cos(rect.angle), math.sin(rect.angle)
    x, y = points[:, 0] - 0.5, points[:, 1] - 0.5
    out = np.empty((len(points), 3), np.float64)
    out[:, 0] = (c * x - s * y) * rect.side + rect.cx
    out[:, 1] = (s * x + c * y) * rect.side + rect.cy
    out[:, 2] = points[:, 2] * rect.side
    return out


def _anchors(spec: DetectorSpec) -> np.ndarray:
    """(n, 2) anchor centres in [0, 1] (all anchors are 1x1: MediaPipe's fixed_anchor_size)."""
    out = []
    for stride, per_cell in zip(spec.strides, spec.anchors_per_cell):
        n = spec.input_px // stride
        yy, xx = np.mgrid[0:n, 0:n]
        c = np.stack([(xx + 0.5) / n, (yy + 0.5) / n], -1).reshape(-1, 1, 2)
        out.append(np.repeat(c, per_cell, 1).reshape(-1, 2))
    return np.concatenate(out).astype(np.float64)


_anchor_cache: dict[str, np.ndarray] = {}


def detect(image: np.ndarray, spec: DetectorSpec = FULL_RANGE, min_score: float = 0.5) -> list[Detection]:
    """Faces in ``image`` ((H, W, 3) uint8 RGB), best score first, as MediaPipe's
    FaceDetection graph finds them (letterboxed input, weighted NMS)."""
    h, w = image.shape[:2]
    side = float(max(h, w))
    rect = RotatedRect(w / 2, h / 2, side)
    x = _crop(image, rect, spec.input_px, border_zero=True).astype(np.float32) * (2 / 255) - 1
    raw_boxes, raw_scores = _run(spec.file, x[None])
    anchors = _anchor_cache.get(spec.file)
    if anchors is None:
        anchors = _anchor_cache[spec.file] = _anchors(spec)
    scores = 1 / (1 + np.exp(-np.clip(raw_scores.reshape(-1).astype(np.float64), -100, 100)))
    keep = np.flatnonzero(scores >= max(min_score, spec.floor_score))
    if not len(keep):
        return []
    r = raw_boxes.reshape(-1, 16)[keep].astype(np.float64) / spec.input_px
    a = anchors[keep]
    ctr = r[:, 0:2] + a
    half = r[:, 2:4] / 2
    boxes = np.concatenate([ctr - half, ctr + half], 1)  # (m, 4) x0 y0 x1 y1 in [0, 1]
    kps = r[:, 4:16].reshape(-1, 6, 2) + a[:, None]
    merged = _weighted_nms(scores[keep], boxes, kps)
    out = []
    for score, b, k in merged:
        # Letterbox removal: input units -> pixels of the image.
        b = b * side - np.array([(side - w) / 2, (side - h) / 2] * 2)
        k = k * side - np.array([(side - w) / 2, (side - h) / 2])
        out.append(Detection(float(score), (b[0], b[1], b[2] - b[0], b[3] - b[1]), k))
    return out


def _weighted_nms(scores: np.ndarray, boxes: np.ndarray, kps: np.ndarray):
    """MediaPipe's WEIGHTED non-maximum suppression: the best remaining box absorbs every
    box overlapping it by more than DET_NMS_IOU; the merged box and keypoints are the
    score-weighted means, the score the best one's."""
    order = list(np.argsort(-scores, kind="stable"))
    out = []
    while order:
        top = boxes[order[0]]
        rest = boxes[order]
        ix = np.clip(np.minimum(rest[:, 2], top[2]) - np.maximum(rest[:, 0], top[0]), 0, None)
        iy = np.clip(np.minimum(rest[:, 3], top[3]) - np.maximum(rest[:, 1], top[1]), 0, None)
        inter = ix * iy
        area = (rest[:, 2] - rest[:, 0]) * (rest[:, 3] - rest[:, 1])
        iou = inter / np.maximum(area + (top[2] - top[0]) * (top[3] - top[1]) - inter, 1e-12)
        group = [order[i] for i in np.flatnonzero(iou > DET_NMS_IOU)] or [order[0]]
        wts = scores[group]
        out.append((scores[order[0]], (boxes[group] * wts[:, None]).sum(0) / wts.sum(),
                    (kps[group] * wts[:, None, None]).sum(0) / wts.sum()))
        grouped = set(group) | {order[0]}
        order = [i for i in order if i not in grouped]
    return out


def _roi(points: np.ndarray, box: tuple[float, float, float, float], i0: int, i1: int, scale: float) -> RotatedRect:
    """MediaPipe's DetectionsToRects + RectTransformation: centre of ``box`` (x, y, w, h
    pixels), rotation that levels the line points[i0] -> points[i1], a square of ``scale``
    times the box's long side."""
    dx, dy = points[i1, 0] - points[i0, 0], points[i1, 1] - points[i0, 1]
    angle = -math.atan2(-dy, dx)
    angle -= 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))
    x, y, bw, bh = box
    return RotatedRect(x + bw / 2, y + bh / 2, scale * max(bw, bh), angle)


def roi_from_detection(det: Detection) -> RotatedRect:
    """Landmark crop for a detected face: levelled on the eye keypoints, 1.5x the box."""
    return _roi(det.keypoints, det.box, 0, 1, MESH_ROI_SCALE)


def roi_from_landmarks(lm: np.ndarray) -> RotatedRect:
    """Landmark crop for the next video frame from this frame's landmarks ((>=468, 2+)
    pixels): their bounding box, levelled on the outer eye corners (33 -> 263), 1.5x.
    (mediapipe 0.10.21 levels on these two; its repository's pbtxt names 33 -> 133, which
    puts tracked landmarks 1-2 px off the recorded ones.)"""
    lo, hi = lm[:, :2].min(0), lm[:, :2].max(0)
    return _roi(lm, (lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]), 33, 263, MESH_ROI_SCALE)


def _region_matrix(lm: np.ndarray, points: np.ndarray, left: int, right: int) -> np.ndarray:
    """(4, 4) map from a region's feature-crop pixels to feature-map pixels (MediaPipe's
    Landmarks2TransformMatrix v2): ``lm`` ((468, 3) mesh in feature-map units), the crop
    levelled on lm[left] -> lm[right], centred on ``points``' rotated bounding box and
    REGION_SCALE times its size."""
    r = -math.atan2(lm[right, 1] - lm[left, 1], lm[right, 0] - lm[left, 0])
    c, s = math.cos(r), math.sin(r)
    p = lm[points, :2]
    rot = np.stack([c * p[:, 0] - s * p[:, 1], s * p[:, 0] + c * p[:, 1]], 1)
    hi, lo = rot.max(0), rot.min(0)
    (w, h), (mx, my) = hi - lo, (hi + lo) / 2
    cx, cy = c * mx + s * my, -s * mx + c * my  # the centre rotated back
    n = REGION_CROP_PX
    sx, sy = REGION_SCALE * w / n, REGION_SCALE * h / n
    # shift(cx, cy) @ rotate(-r) @ scale(sx, sy) @ shift(-n/2, -n/2)
    m = np.eye(4)
    m[0, :2] = c * sx, s * sy
    m[1, :2] = -s * sx, c * sy
    m[0, 3] = cx - (c * sx + s * sy) * n / 2
    m[1, 3] = cy - (-s * sx + c * sy) * n / 2
    return m


_CROP_GRID = np.mgrid[0:REGION_CROP_PX, 0:REGION_CROP_PX].astype(np.float64)[::-1]  # (2, n, n): x, y


def _sample_features(feat: np.ndarray, mats: np.ndarray) -> np.ndarray:
    """(k, n, n, C) float32 bilinear samples of ``feat`` ((H, W, C)) at the crop pixels
    that each of ``mats`` ((k, 4, 4)) maps into it, with half-pixel centres; samples
    outside the map are 0 (MediaPipe's TransformTensorBilinear v2)."""
    h, w, ch = feat.shape
    ox, oy = _CROP_GRID
    a = mats[:, :2, :]  # (k, 2, 4)
    off = a[:, :, 3] + (a[:, :, 0] + a[:, :, 1]) * 0.5 - 0.5  # (k, 2)
    tx = a[:, 0, 0, None, None] * ox + a[:, 0, 1, None, None] * oy + off[:, 0, None, None]
    ty = a[:, 1, 0, None, None] * ox + a[:, 1, 1, None, None] * oy + off[:, 1, None, None]
    outside = (tx < 0) | (tx > w - 1) | (ty < 0) | (ty > h - 1)
    x0, y0 = np.floor(tx), np.floor(ty)
    fx, fy = (tx - x0)[..., None], (ty - y0)[..., None]
    x0 = np.clip(x0.astype(np.intp) + 1, 0, w)  # into the zero-padded map below
    y0 = np.clip(y0.astype(np.intp) + 1, 0, h)
    pad = np.zeros((h + 2, w + 2, ch), np.float32)
    pad[1:-1, 1:-1] = feat
    top = (1 - fx) * pad[y0, x0] + fx * pad[y0, x0 + 1]
    bottom = (1 - fx) * pad[y0 + 1, x0] + fx * pad[y0 + 1, x0 + 1]
    out = fy * bottom + (1 - fy) * top
    out[outside] = 0
    return out.astype(np.float32)


def _apply(points: np.ndarray, m: np.ndarray) -> np.ndarray:
    """(n, 2) points mapped by the 2-D part of the (4, 4) matrix ``m`` (TransformLandmarks)."""
    return points @ m[:2, :2].T + m[:2, 3]


_MATRIX_INPUTS = ("landmarks_to_transform_matrix_v2", "landmarks_to_transform_matrix_v2_1",
                  "landmarks_to_transform_matrix_v2_2")
_CROP_INPUTS = ("transform_tensor_bilinear_v2", "transform_tensor_bilinear_v2_1", "transform_tensor_bilinear_v2_2")
_SCALED_MESHES = ("multiply_by_constant", "multiply_by_constant_2", "multiply_by_constant_4")
_io_cache: dict[str, tuple[dict[str, tuple[int, tuple[int, ...]]], dict[str, int]]] = {}


def _io(file: str):
    """({input name: (index, shape)}, {output name: index}) of a model, cached."""
    if file not in _io_cache:
        it = _interpreter(file)
        _io_cache[file] = ({d["name"]: (d["index"], tuple(d["shape"])) for d in it.get_input_details()},
                           {d["name"]: d["index"] for d in it.get_output_details()})
    return _io_cache[file]


def mesh(image: np.ndarray, rect: RotatedRect, min_presence: float = 0.0) -> tuple[np.ndarray | None, float]:
    """(478, 3) float64 landmarks (pixels) of the face in ``rect`` and the model's face
    presence score in [0, 1]; landmarks None (and the refinement stage skipped) when the
    score is below ``min_presence``."""
    x = _crop(image, rect, MESH_INPUT_PX).astype(np.float32) * (1 / 255)
    it, (ins, outs) = _interpreter(STAGE1), _io(STAGE1)
    it.set_tensor(ins["input_1"][0], x[None])
    it.invoke()
    flag = float(np.clip(it.get_tensor(outs["conv_faceflag"]).reshape(-1)[0], -100, 100))
    score = 1 / (1 + math.exp(-flag))
    if score < min_presence:
        return None, score
    surface = it.get_tensor(outs["output_mesh_identity"]).reshape(N_MESH, 3).astype(np.float64)
    mats = np.stack([_region_matrix(it.get_tensor(outs[name])[0].astype(np.float64), pts, a, b)
                     for name, (pts, a, b) in zip(_SCALED_MESHES, REGIONS)])
    crops = _sample_features(it.get_tensor(outs["p_re_lu_3"])[0], mats)
    it2, (ins2, outs2) = _interpreter(STAGE2), _io(STAGE2)
    for name, m in zip(_MATRIX_INPUTS, mats):
        it2.set_tensor(ins2[name][0], m.astype(np.float32).reshape(ins2[name][1]))
    for name, c in zip(_CROP_INPUTS, crops):
        it2.set_tensor(ins2[name][0], c.reshape(ins2[name][1]))
    it2.invoke()
    q = {name: it2.get_tensor(i)[0].astype(np.float64) for name, i in outs2.items()}
    p = np.zeros((N_MESH + 2 * N_IRIS, 3))
    p[:N_MESH] = surface
    p[LIPS, :2] = _apply(q["reshape_1"], q["multiply_by_constant_1"])
    p[EYE_L, :2] = _apply(q["reshape_3"], q["multiply_by_constant_3"])
    p[EYE_R, :2] = _apply(q["reshape_6"], q["multiply_by_constant_5"])
    p[N_MESH:N_MESH + N_IRIS, :2] = _apply(q["reshape_4"], q["multiply_by_constant_3"])
    p[N_MESH + N_IRIS:, :2] = _apply(q["reshape_7"], q["multiply_by_constant_5"])
    p[N_MESH:N_MESH + N_IRIS, 2] = p[EYE_L[:EYE_LIDS], 2].mean()
    p[N_MESH + N_IRIS:, 2] = p[EYE_R[:EYE_LIDS], 2].mean()
    return _project(p / MESH_INPUT_PX, rect), score


def face_landmarks(image: np.ndarray, rect: RotatedRect,
                   min_presence: float = PRESENCE_THRESHOLD) -> np.ndarray | None:
    """(478, 3) float64 landmarks of the face in ``rect``, None when the model sees none."""
    return mesh(image, rect, min_presence)[0]


def faces_in_image(image: np.ndarray, max_faces: int = 1, min_score: float = 0.5) -> list[np.ndarray]:
    """Static-image face mesh (MediaPipe FaceMesh with static_image_mode): short-range
    detection on the whole image, then landmarks of up to ``max_faces`` best faces."""
    out = []
    for det in detect(image, SHORT_RANGE, min_score)[:max_faces]:
        lm = face_landmarks(image, roi_from_detection(det))
        if lm is not None:
            out.append(lm)
    return out


class FaceTracker:
    """Video-mode face mesh for one face: detection only while no face is tracked, else
    the landmark crop follows the previous frame's landmarks (MediaPipe FaceMesh with
    static_image_mode=False, max_num_faces=1)."""

    def __init__(self, min_detection: float = 0.5, min_tracking: float = PRESENCE_THRESHOLD):
        self.min_detection = min_detection
        self.min_tracking = min_tracking
        self._rect: RotatedRect | None = None

    def process(self, frame: np.ndarray) -> np.ndarray | None:
        """(478, 3) float64 landmarks (pixels) of ``frame`` ((H, W, 3) uint8 RGB) or None."""
        rect = self._rect
        if rect is None:
            dets = detect(frame, SHORT_RANGE, self.min_detection)
            if not dets:
                return None
            rect = roi_from_detection(dets[0])
        lm = face_landmarks(frame, rect, self.min_tracking)
        self._rect = None if lm is None else roi_from_landmarks(lm)
        return lm


def person_mask(image: np.ndarray) -> np.ndarray:
    """(H, W) float32 soft person mask in [0, 1] (selfie segmentation, general model)."""
    import cv2

    h, w = image.shape[:2]
    # The whole image stretched to the square input (no letterbox), as MediaPipe does.
    m = np.array([[SEGMENT_INPUT_PX / w, 0, 0], [0, SEGMENT_INPUT_PX / h, 0]], np.float64)
    x = cv2.warpAffine(image, m, (SEGMENT_INPUT_PX, SEGMENT_INPUT_PX), flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT).astype(np.float32) * (1 / 255)
    (mask,) = _run("selfie_segmentation.tflite", x[None])
    mask = cv2.resize(mask.reshape(SEGMENT_INPUT_PX, SEGMENT_INPUT_PX), (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(mask, 0.0, 1.0).astype(np.float32)
