"""Face analysis of the reference image: 478 3-D landmarks and a person mask.

Detection runs MediaPipe's full-range face detector on the whole image (it finds
small faces in half-body shots that the face mesh's own short-range detector
misses), then the face mesh runs on a square crop around the chosen face, so the
landmarks are as precise for a 6 %-of-the-frame face as for a close-up.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np

from ..core import job
from ..errors import FaceError
from . import landmarks as L
from . import mesh as fm

log = logging.getLogger(__name__)

MESH_CROP_PX = 512  # side of the square crop the face mesh sees
CROP_SCALE = 2.0  # crop side / detected face-box side
MIN_RELATIVE_FACE_AREA = 0.15  # a face smaller than this fraction of the largest one is ignored
DETECT_CONFIDENCE = 0.5
MESH_DETECT_CONFIDENCE = 0.3  # the face mesh's own (short-range) detector on the crop
MAX_FALLBACK_FACES = 4
TILE_SPLITS = (2, 3)  # when the whole image shows no face, look at halves, then thirds of it


@dataclass
class FaceRig:
    """Everything the renderer needs to know about one portrait.

    image:     (H, W, 3) uint8 RGB, already at output size.
    landmarks: (478, 3) float32 pixels; x right, y down, z towards the viewer is
               negative (MediaPipe's convention), same scale as x.
    person:    (H, W) float32 in [0, 1], soft person mask (1 = person).
    face_box:  (x, y, w, h) pixels of the detected face.
    """

    image: np.ndarray
    landmarks: np.ndarray
    person: np.ndarray
    face_box: tuple[float, float, float, float]

    @property
    def iod_px(self) -> float:
        """Inter-ocular distance (outer eye corners), the face's unit of length."""
        lm = self.landmarks
        return float(np.linalg.norm(lm[L.EYE_OUTER_L, :2] - lm[L.EYE_OUTER_R, :2]))

    def save_npz(self, path: str | os.PathLike) -> None:
        np.savez_compressed(path, image=self.image, landmarks=self.landmarks, person=self.person,
                            face_box=np.array(self.face_box, np.float32))

    @classmethod
    def load_npz(cls, path: str | os.PathLike) -> "FaceRig":
        with np.load(path, allow_pickle=False) as z:
            return cls(z["image"], z["landmarks"], z["person"], tuple(float(v) for v in z["face_box"]))


def detect_faces(image: np.ndarray) -> list[tuple[float, float, float, float]]:
    """Face boxes (x, y, w, h) in pixels, left to right. image: (H, W, 3) uint8 RGB."""
    boxes = [d.box for d in fm.detect(image, fm.FULL_RANGE, DETECT_CONFIDENCE)]
    if not boxes:
        boxes = _detect_in_tiles(image)
    if not boxes:
        # Full-range detection misses some stylised faces (cartoons, paintings) that the
        # face mesh's own detector finds; ask it before giving up.
        for lm in fm.faces_in_image(image, MAX_FALLBACK_FACES, MESH_DETECT_CONFIDENCE):
            x0, y0 = lm[:, :2].min(0)
            x1, y1 = lm[:, :2].max(0)
            boxes.append((x0, y0, x1 - x0, y1 - y0))
    if boxes:
        biggest = max(b[2] * b[3] for b in boxes)
        boxes = [b for b in boxes if b[2] * b[3] >= MIN_RELATIVE_FACE_AREA * biggest]
    return sorted(boxes, key=lambda b: b[0] + b[2] / 2)


def _detect_in_tiles(image: np.ndarray) -> list[tuple[float, float, float, float]]:
    """Face boxes found in overlapping tiles (halves, then thirds of the long side): the
    detector sees the image at 192 px, so a face a few percent of a wide shot is too
    small for it until it looks at a part of the picture."""
    h, w = image.shape[:2]
    found: list[tuple[float, float, float, float, float]] = []  # x, y, w, h, score
    for parts in TILE_SPLITS:
        side = int(np.ceil(max(h, w) / parts))
        if side < 64:
            break
        step = max(1, side // 2)
        for y0 in sorted({*range(0, max(h - side, 0) + 1, step), max(h - side, 0)}):
            for x0 in sorted({*range(0, max(w - side, 0) + 1, step), max(w - side, 0)}):
                tile = np.ascontiguousarray(image[y0:y0 + side, x0:x0 + side])
                for det in fm.detect(tile, fm.FULL_RANGE, DETECT_CONFIDENCE):
                    bx, by, bw, bh = det.box
                    found.append((x0 + bx, y0 + by, bw, bh, det.score))
        if found:
            break
    # One box per face: a face in the overlap of two tiles is found twice.
    found.sort(key=lambda b: -b[4])
    keep: list[tuple[float, float, float, float, float]] = []
    for b in found:
        if all(_iou(b, k) < 0.3 for k in keep):
            keep.append(b)
    return [b[:4] for b in keep]


def _iou(a, b) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / max(a[2] * a[3] + b[2] * b[3] - inter, 1e-9)


def _mesh_in_box(image: np.ndarray, box) -> np.ndarray | None:
    """478x3 landmarks (pixels) from the face mesh run on a square crop around ``box``."""
    import cv2

    x, y, bw, bh = box
    side = CROP_SCALE * max(bw, bh)
    cx, cy = x + bw / 2, y + bh / 2
    s = MESH_CROP_PX / side
    # Affine map image -> crop; pixels outside the image replicate the border.
    M = np.array([[s, 0, MESH_CROP_PX / 2 - s * cx], [0, s, MESH_CROP_PX / 2 - s * cy]], np.float64)
    crop = cv2.warpAffine(image, M, (MESH_CROP_PX, MESH_CROP_PX), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    faces = fm.faces_in_image(crop, 1, MESH_DETECT_CONFIDENCE)
    if not faces:
        return None
    p = faces[0]
    out = np.empty_like(p)
    out[:, 0] = (p[:, 0] - M[0, 2]) / s
    out[:, 1] = (p[:, 1] - M[1, 2]) / s
    out[:, 2] = p[:, 2] / s
    return out.astype(np.float32)


def person_mask(image: np.ndarray) -> np.ndarray:
    """(H, W) float32 soft person mask in [0, 1] from selfie segmentation."""
    return fm.person_mask(image)


def analyze_face(image: np.ndarray, *, face_index: int | None = None) -> FaceRig:
    """Landmarks and person mask of the one face in ``image`` ((H, W, 3) uint8 RGB).

    With several faces, ``face_index`` (0-based, left to right) picks one; without it
    several faces are an error, because guessing the wrong speaker is worse than asking.
    """
    boxes = detect_faces(image)
    job.report("face", 1, 4)  # four model passes: detection, mesh, segmentation (each ~10-100 ms)
    if not boxes:
        raise FaceError("no face found in the image (a frontal or near-frontal face is needed)")
    if face_index is None:
        if len(boxes) > 1:
            raise FaceError(f"found {len(boxes)} faces in the image; choose one with --face-index 0..{len(boxes) - 1} "
                            "(numbered left to right)")
        face_index = 0
    if not 0 <= face_index < len(boxes):
        raise FaceError(f"--face-index {face_index} is out of range: the image has {len(boxes)} face(s) "
                        f"(valid: 0..{len(boxes) - 1}, left to right)")
    lm = _mesh_in_box(image, boxes[face_index])
    job.report("face", 2, 4)
    if lm is None:
        raise FaceError("a face was detected but its landmarks could not be fitted (face too small, "
                        "turned away or occluded?)")
    iod = np.linalg.norm(lm[L.EYE_OUTER_L, :2] - lm[L.EYE_OUTER_R, :2])
    if iod < 12:
        raise FaceError(f"the face is too small to animate ({iod:.0f} px between the eyes; at least 12 px "
                        "needed): use a closer crop or a larger --size")
    log.info("face %d of %d at %s, %.0f px between the eyes", face_index, len(boxes),
             tuple(round(v) for v in boxes[face_index]), iod)
    person = person_mask(image)
    job.report("face", 3, 4)
    return FaceRig(image=image, landmarks=lm, person=person, face_box=boxes[face_index])
