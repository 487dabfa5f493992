"""The photo renderer (``render.warp.MeshWarpRenderer``) on the frames of a real video.

A video's face moves every frame, so a portrait's precomputed whole-frame warp (smooth
field, background plate, head weight) does not carry over. What does is built once per
video, from the first frame with a face (cropped around it, so the setup stays cheap):
the face mesh's triangulation and its drawing priorities (a closing lid over the eye,
lips over the lip gap), the mouth interior's palette and softness, and every constant.
Per frame only what depends on the frame's landmarks is recomputed (the lip, jaw and
lid model's geometry, ~0.3 ms), then the renderer's own face-deformation model
(``expression_offsets``: lips, jaw, /f v/ tuck, lids) moves the vertices, its exact
depth-tested face rasteriser (``_face_inverse``) resamples the face, and its mouth
(``draw_mouth`` with the teeth's pose) and lids (``_paint_lids``) are drawn.

What is particular to a video frame:
  * nothing but the edit may change: vertices moving less than MOVE_EPS_PX stay, only
    a box around the moving triangles is resampled (the rest of it by exact identity
    maps), and around the face a band from the face oval to a still anchor ring (the
    oval scaled by RING_SCALES[0]) takes the outline's inward motion (a chin closing
    up); outside that ring the frame is bit-for-bit the decoded input;
  * the frame's mouth is not at rest: its upper lip already rose by UPPER_LIFT of its
    own opening, so the lips move from where they are (``frame_offsets``);
  * the frame has its own mouth interior: it is kept where the new opening is no wider
    than the frame's own, and shut lips get a cleaned seam (the tracked inner contour of
    an open mouth lies a pixel or two on the teeth).
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial import Delaunay

from ..face import landmarks as L
from ..face.analyze import FaceRig
from .lids import paint_opacity
from .mouth import TEETH_SHOW_IOD, draw_mouth, smoothstep
from .raster import signed_area2
from .warp import RING_SCALES, UPPER_LIFT, MeshWarpRenderer

MOVE_EPS_PX = 0.3  # offsets smaller than this are dropped: fewer pixels to resample, no visible step
CROP_PAD_IOD = 0.3  # the per-video setup sees the first face frame cropped this far (iod) around the face oval
SHUT_OPEN_IOD = 0.06  # iod; lips parted less than this count as (partly) shut: seam cleaned, edge inset
REAL_MOUTH_MIN_IOD = 0.06  # a dubbed frame whose own mouth is open at least this much (iod) ...
REAL_MOUTH_MAX_RATIO = 1.5  # ... keeps its real interior up to this ratio of new to own opening
SEAM_HALF_IOD = 0.05  # iod; half-width of the band around a shut mouth's seam that is cleaned
SEAM_BRIGHT, SEAM_DARK = 12.0, 20.0  # luma levels above / below the lips' median that are tooth / cavity
SEAM_LINE_DARKEN = 0.25  # the contact line between shut lips
# iod the lips overlap when shut (fading out by PRESS_UNTIL_IOD of opening): a tracked inner
# contour lies a pixel or two onto the teeth, and lips that only met there left a bright seam
# that MediaPipe read as parted (closed frames of the HDTF clip 0.91 without, 0.99 with). At
# 0.025 the lower lip of the glasses clip's widest openings slid under the upper and read open.
LIP_PRESS_IOD, PRESS_UNTIL_IOD = 0.012, 0.04
LIP_INSET = 0.4  # shut lips sample their edge this far into the lip (inner -> semi-inner contour):
#                  the tracked inner contour of an open mouth lies a pixel or two onto the teeth
_EXPRESSION_KEYS = ("brow_up", "brow_inner", "brow_squeeze", "eye_squint", "smile", "cheek")


def face_axes(lm: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(iod px, ex, ey): inter-ocular distance, unit vector from the image-left to the
    image-right eye, and its perpendicular pointing down the face. lm: (>=468, 2+)."""
    ex = lm[L.EYE_OUTER_R, :2] - lm[L.EYE_OUTER_L, :2]
    iod = float(np.linalg.norm(ex))
    ex = ex / max(iod, 1e-6)
    return iod, ex, np.array([-ex[1], ex[0]])


def anchor_ring(lm: np.ndarray, scale: float = RING_SCALES[0]) -> np.ndarray:
    """(36, 2) fixed anchors: the face oval scaled by ``scale`` about its centre. Pixels
    outside their convex hull are never changed by an edit."""
    oval = lm[L.FACE_OVAL, :2].astype(np.float64)
    c = oval.mean(0)
    return c + scale * (oval - c)


def face_region_mask(lm: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: the pixels an edit of the face with landmarks ``lm`` may change
    (the anchor ring's convex hull, grown by 2 px for rasterisation rounding)."""
    mask = np.zeros(shape, np.uint8)
    hull = cv2.convexHull(np.round(anchor_ring(lm)).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1)
    return cv2.dilate(mask, np.ones((5, 5), np.uint8)) > 0


def triangulate(src: np.ndarray, cache: dict) -> np.ndarray:
    """(K, 3) Delaunay triangles over the points ``src`` ((n, 2) px); the last
    triangulation in ``cache`` is reused while every triangle keeps its orientation (the
    face moves smoothly from frame to frame)."""
    if cache.get("n") == len(src):
        tri = cache["tri"]
        if np.all(signed_area2(src[tri]) * cache["sign"] > 0):
            return tri
    tri = Delaunay(src).simplices
    cache.update(n=len(src), tri=tri, sign=np.sign(signed_area2(src[tri])))
    return tri


def clean_seam(frame: np.ndarray, dst: np.ndarray, iod: float, amount: float) -> None:
    """Give shut lips a clean seam (in place): near the line where the warped inner lips
    meet (``dst`` (468, 2) warped positions), pixels much brighter (tooth) or darker
    (mouth cavity) than the lips move to the lip colour, and a faint contact line is
    drawn. The tracked inner contour of an open mouth often lies a pixel or two onto the
    teeth or into the cavity, and thin lips carry those pixels into the closed seam."""
    if amount <= 0:
        return
    h, w = frame.shape[:2]
    seam = 0.5 * (dst[L.UPPER_INNER] + dst[L.LOWER_INNER])
    half = max(1.5, SEAM_HALF_IOD * iod)
    lips = np.concatenate([dst[L.UPPER_SEMI_OUTER], dst[L.LOWER_SEMI_OUTER][::-1]])
    x0, y0 = np.maximum(np.floor(lips.min(0) - half).astype(int) - 2, 0)
    x1, y1 = np.ceil(lips.max(0) + half).astype(int) + 3
    x1, y1 = min(x1, w), min(y1, h)
    if x1 - x0 < 3 or y1 - y0 < 3:
        return
    sub = frame[y0:y1, x0:x1].astype(np.float32)
    body = np.zeros(sub.shape[:2], np.uint8)
    cv2.fillPoly(body, [np.round((lips - [x0, y0]) * 4).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=2)
    band = np.zeros(sub.shape[:2], np.float32)
    line = np.round((seam - [x0, y0]) * 4).astype(np.int32)
    cv2.polylines(band, [line], False, 1.0, thickness=max(1, int(round(2 * half))), lineType=cv2.LINE_AA, shift=2)
    if body.sum() < 8:
        return
    lip_col = np.median(sub[body > 0], axis=0)
    luma = sub @ np.array([0.299, 0.587, 0.114], np.float32)
    lip_luma = float(np.median(luma[body > 0]))
    off = np.maximum(luma - lip_luma - SEAM_BRIGHT, lip_luma - SEAM_DARK - luma)
    soft_body = cv2.GaussianBlur(body.astype(np.float32), (0, 0), 1.0)
    a = np.clip(off / 20.0, 0, 1) * band * soft_body * amount
    a = cv2.GaussianBlur(np.maximum(a, cv2.dilate(a, np.ones((3, 3), np.uint8))), (0, 0), 0.8)
    out = sub * (1 - a[..., None]) + lip_col * a[..., None]
    contact = np.zeros(sub.shape[:2], np.float32)
    cv2.polylines(contact, [line], False, 1.0, thickness=1, lineType=cv2.LINE_AA, shift=2)
    out *= (1 - SEAM_LINE_DARKEN * amount * cv2.GaussianBlur(contact, (0, 0), 0.6))[..., None]
    frame[y0:y1, x0:x1] = np.clip(out + 0.5, 0, 255).astype(np.uint8)


class VideoFaceRenderer(MeshWarpRenderer):
    """``MeshWarpRenderer`` re-posed on each frame of one video (see the module doc).

    Built from the first frame with a face (``frame`` (H, W, 3) uint8 RGB, ``lm`` its
    (478, 3) tracked landmarks); then ``render_video_frame`` renders any frame of the
    same video from that frame's landmarks."""

    def __init__(self, frame: np.ndarray, lm: np.ndarray):
        lm = np.asarray(lm, np.float64)
        iod, _, _ = face_axes(lm)
        h, w = frame.shape[:2]
        oval = lm[L.FACE_OVAL, :2]
        pad = CROP_PAD_IOD * iod
        x0, y0 = (int(max(0, np.floor(oval[:, k].min() - pad))) for k in (0, 1))
        x1 = int(min(w, np.ceil(oval[:, 0].max() + pad) + 1))
        y1 = int(min(h, np.ceil(oval[:, 1].max() + pad) + 1))
        crop = np.ascontiguousarray(frame[y0:y1, x0:x1])
        local = lm.copy()
        local[:, :2] -= [x0, y0]
        rig = FaceRig(crop, local.astype(np.float32), np.ones(crop.shape[:2], np.float32),
                      (0.0, 0.0, float(x1 - x0), float(y1 - y0)))
        self._first_lm = local
        super().__init__(rig)
        # A frame's own lip parting is where its lips are, not a photo's smile to re-seat.
        self.seat_gap = np.zeros(len(L.LOWER_INNER))
        self.own_teeth = None  # the frame's own interior is kept instead (REAL_MOUTH_*)
        self._band_cache: dict = {}
        # The still's whole-frame warp (smooth field, plate, head and body weights) is not
        # used on video frames: its memory goes back.
        for name in ("B", "plate", "plate_f", "layer_g", "clear", "w_roi", "w_roi_eff", "gx", "gy", "body_strips",
                     "movable", "w_body_roi", "_wgrid", "_taper", "last_map"):
            self.__dict__.pop(name, None)
        # The face mesh's triangles and drawing priorities (the per-frame face layer takes
        # the moved ones, see _warp_moved).
        self.mesh_tris, self.mesh_bias = self.face_tris, self.face_depth_bias

    # ------------------------------------------------------------------ per frame state
    def set_frame(self, frame: np.ndarray, lm: np.ndarray) -> None:
        """Re-pose the model on ``frame`` with its landmarks ``lm`` ((478, 2+) px)."""
        lm = np.asarray(lm, np.float64)
        self.image = frame
        self.verts = lm[:L.N_SURFACE]
        self.iod, self.ex, self.ey = face_axes(lm)
        self._setup_expressions(lm)
        self.frame_gap = self.lip_gap0.copy()  # (11,) px, this frame's own inner-lip gap
        self.teeth_line0 = lm[L.UPPER_INNER, :2] + TEETH_SHOW_IOD * self.iod * self.ey[None, :]

    def _match_mouth_softness(self) -> None:
        # A video frame is resampled only where the face moves, so the interior's blur is
        # matched on the frame itself with the mouth drawn in (``MouthPalette.matched_to``,
        # same DETAIL_TARGET), not on a turned render of a still (1 s at 512 px).
        self.palette = self.palette.matched_to(self.image, self._first_lm)

    def _setup_lid_skins(self, lm: np.ndarray) -> None:
        self.lid_skins = None  # sampled from the frame only when its lids close (_paint_lids)
        self._lid_lm = lm

    def _setup_expression_fields(self, lm: np.ndarray) -> None:
        self._fields_lm = lm  # brows, smile, cheeks, squint: built on first use (expression_offsets)
        self.fields = None

    def _paint_lids(self, frame: np.ndarray, pos: np.ndarray, blink: float) -> None:
        if self.lid_skins is None:
            MeshWarpRenderer._setup_lid_skins(self, self._lid_lm)
        super()._paint_lids(frame, pos, blink)

    def expression_offsets(self, *args, **kw) -> np.ndarray:
        if self.fields is None and any(kw.get(k) for k in _EXPRESSION_KEYS):
            MeshWarpRenderer._setup_expression_fields(self, self._fields_lm)
        return super().expression_offsets(*args, **kw)

    def frame_offsets(self, mouth_open: float, mouth_wide: float = 0.0, blink: float = 0.0, *, press: float = 0.0,
                      **ctl) -> np.ndarray:
        """(468, 2) offsets that give the lips the opening ``mouth_open`` (iod) from this
        frame's own: the model's rest is a closed mouth, whose upper lip rises by
        UPPER_LIFT of an opening; this frame's upper lip already rose by that share of its
        own opening, so both lips (and the jaw) move from there. press: 0..1 of
        LIP_PRESS_IOD the lower lip rises past the upper (shut lips overlap)."""
        own = self.frame_gap
        self.lip_gap0 = (1 - UPPER_LIFT) * own + press * LIP_PRESS_IOD * self.iod * self.lip_profile
        try:
            off = self.expression_offsets(mouth_open, mouth_wide, blink, **ctl)
        finally:
            self.lip_gap0 = own
        back = UPPER_LIFT * own
        back[[0, -1]] = 0.0
        for row in L.UPPER_LIP:
            off[row] += back[:, None] * self.ey[None, :]
        return off

    # ------------------------------------------------------------------ rendering
    def render_video_frame(self, frame: np.ndarray, lm: np.ndarray, *, close_mouth: float = 0.0,
                           close_eyes: float = 0.0, mouth: dict | None = None) -> np.ndarray:
        """One edited frame (a new (H, W, 3) uint8 RGB array). frame: the video frame;
        lm: its (478, 3) landmarks. close_mouth, close_eyes: 0..1, the share of the
        frame's own opening taken away. mouth: new mouth controls (dubbing; units as in
        MotionTrack): {'open' (iod), optional 'wide', 'round', 'tuck' (lip_tuck), 'jaw'
        (iod, the jaw's own lagging opening)}; the interior is then drawn into the new
        lip gap (the frame's own where it is open as far)."""
        self.set_frame(frame, lm)
        s = self.iod
        shut = 0.0  # how far the lips meet (0..1): seam clean-up and inset lip edge
        blink = float(close_eyes)
        rnd = 0.0
        jaw = None
        if mouth is not None:
            opening = max(float(mouth["open"]), 0.0)
            rnd = float(mouth.get("round", 0.0))
            jaw = mouth.get("jaw")
            press = float(1 - smoothstep(0.0, PRESS_UNTIL_IOD, opening))
            off = self.frame_offsets(opening, mouth_wide=float(mouth.get("wide", 0.0)), blink=blink, press=press,
                                     mouth_round=rnd, lip_tuck=float(mouth.get("tuck", 0.0)), jaw_open=jaw)
            shut = float(1 - smoothstep(0.0, SHUT_OPEN_IOD, opening))
        elif close_mouth > 0:
            opening = (1 - close_mouth) * max(float(self.frame_gap[5]), 0.0) / s
            off = self.frame_offsets(opening, mouth_wide=0.0, blink=blink, press=float(close_mouth))
            shut = float(close_mouth) * float(1 - smoothstep(0.0, SHUT_OPEN_IOD, opening))
        else:  # only the lids: the model's eye part alone (it adds to the rest)
            off = self.expression_offsets(0.0, 0.0, blink) - self.expression_offsets(0.0, 0.0, 0.0)
        off[np.linalg.norm(off, axis=1) < MOVE_EPS_PX] = 0.0
        moved = off.any(1)
        if not moved.any():
            return frame.copy()
        v2 = self.verts[:, :2]
        pos = v2 + off
        z = self.verts[:, 2] - rnd * s * self.lip_forward  # rounded lips come forward
        sample = v2.copy()
        if shut > 0:
            for inner, semi in ((L.UPPER_INNER, L.UPPER_SEMI_INNER), (L.LOWER_INNER, L.LOWER_SEMI_INNER)):
                sample[inner[1:-1]] += shut * LIP_INSET * (v2[semi[1:-1]] - v2[inner[1:-1]])
        out = self._warp_moved(frame, sample, pos, z, moved)
        if shut > 0:
            clean_seam(out, pos, s, shut)
        if mouth is not None:
            self._draw_interior(out, pos, rnd, jaw if jaw is not None else float(mouth["open"]))
        if paint_opacity(blink) > 0:
            self._paint_lids(out, pos, blink)
        return out

    def _draw_interior(self, out: np.ndarray, pos: np.ndarray, rnd: float, jaw: float) -> None:
        """The renderer's mouth interior in the new lip gap (in place), faded in as the
        lips part further than the frame's own: up to that, the speaker's real teeth and
        tongue (warped) stay."""
        own = float(self.frame_gap[5])
        new = float((pos[L.LOWER_INNER[5]] - pos[L.UPPER_INNER[5]]) @ self.ey)
        a = 1.0 if own < REAL_MOUTH_MIN_IOD * self.iod else float(smoothstep(1.0, REAL_MOUTH_MAX_RATIO, new / own))
        if a <= 0:
            return
        drawn = out if a >= 1 else out.copy()
        draw_mouth(drawn, pos[L.UPPER_INNER], pos[L.LOWER_INNER], self.palette, self.iod, rnd,
                   teeth=self.teeth_pose(pos, jaw))
        if a < 1:
            cv2.addWeighted(drawn, a, out, 1 - a, 0.0, dst=out)

    def _warp_moved(self, frame: np.ndarray, sample: np.ndarray, pos: np.ndarray, z: np.ndarray,
                    moved: np.ndarray) -> np.ndarray:
        """``frame`` resampled so the face mesh's points ``sample`` ((468, 2) px) land on
        ``pos`` ((468, 2) px; depths z (468,)) by the renderer's depth-tested face
        rasteriser, and the band between the face oval and the still anchor ring by its
        exact piecewise-affine inverse. Only a box around the triangles with a moved
        vertex (``moved``, (468,) bool) is resampled."""
        h, w = frame.shape[:2]
        oval = np.asarray(L.FACE_OVAL)
        ring = anchor_ring(self.verts)
        # The band follows the outline both ways (a chin dropping stretches the skin under
        # it, as the photo's smooth field does inside its rings): drawn over the band
        # instead, the face oval's edge showed as a seam across the jaw and hair.
        follow = pos[oval]
        band_src = np.concatenate([sample[oval], ring])
        band_dst = np.concatenate([follow, ring])
        band_moved = np.r_[np.abs(follow - sample[oval]).max(1) > 1e-9, np.zeros(len(ring), bool)]
        band_tri = triangulate(np.concatenate([self.verts[oval, :2], ring]), self._band_cache)
        band_tri = band_tri[band_moved[band_tri].any(1)]
        # Triangles with an inner corner lie inside the oval: the face mesh covers them.
        band_tri = band_tri[(band_tri >= len(oval)).any(1)]
        face_hit = moved[self.mesh_tris].any(1)
        corners = [pos[self.mesh_tris[face_hit]].reshape(-1, 2), sample[self.mesh_tris[face_hit]].reshape(-1, 2),
                   band_dst[band_tri].reshape(-1, 2), band_src[band_tri].reshape(-1, 2)]
        pts = np.concatenate(corners)
        x0, y0 = (int(max(0, np.floor(pts[:, k].min()) - 2)) for k in (0, 1))
        x1 = int(min(w, np.ceil(pts[:, 0].max()) + 3))
        y1 = int(min(h, np.ceil(pts[:, 1].max()) + 3))
        out = frame.copy()
        if x1 <= x0 or y1 <= y0:
            return out
        # One pass of the renderer's face rasteriser over the moved face triangles and,
        # behind them all, the moved band triangles (unmoved ones would map pixels to
        # themselves, as the pixels no triangle covers do).
        n = L.N_SURFACE
        pts_dst = np.concatenate([pos, band_dst])
        pts_src = np.concatenate([sample, band_src])
        depth = np.concatenate([z, np.full(len(band_dst), z.max() + self.iod)])
        self.face_tris = np.concatenate([self.mesh_tris[face_hit], band_tri + n])
        self.face_depth_bias = np.r_[self.mesh_bias[face_hit], np.zeros(len(band_tri))]
        self.face_src = pts_src[self.face_tris]
        self.face_sign = np.sign(signed_area2(self.face_src))
        self.roi = (x0, y0, x1, y1)
        qx, qy = np.meshgrid(np.arange(x1 - x0, dtype=np.float32), np.arange(y1 - y0, dtype=np.float32))
        self._face_inverse(pts_dst, depth, qx, qy)
        # Pixels no moved triangle reaches keep q = x exactly, and cv2.remap's fixed-point
        # maps return their own values: the box is resampled whole.
        out[y0:y1, x0:x1] = cv2.remap(frame, qx + np.float32(x0), qy + np.float32(y0), cv2.INTER_LINEAR,
                                      borderMode=cv2.BORDER_REPLICATE)
        return out
