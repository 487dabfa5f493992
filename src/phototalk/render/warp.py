"""Stage 2, default backend: 3-D mesh deformation -> dense warp of the whole frame.

Precomputed once per portrait (DESIGN.md, "speed comes from precomputation"):
  * a triangulation of the 468 face-mesh points plus rings of control points around
    the head and fixed points on the frame border;
  * each region-of-interest pixel's barycentric weights in that triangulation
    (a sparse (n_pixels, n_points) matrix);
  * a "head weight" map: 1 on the face, hair and head, falling smoothly through
    the neck and the background to 0, and 0 on the frame border.
Per frame only the vertex positions change. The forward displacement of every source
pixel is  d(x) = w_head(x) * (A x + b) + B @ r , where A x + b is the head's rigid
motion (rotation about a neck pivot, seen on the plane of the head's silhouette) and
r holds each vertex's residual: its expression offsets plus 3-D parallax. d is then
inverted by fixed-point iteration and the frame is resampled with one cv2.remap.
Pixels outside the region of interest are copied, so the background stays bit-exact.
"""
from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
from scipy import sparse
from scipy.spatial import Delaunay, cKDTree

from ..face import landmarks as L
from ..face.analyze import FaceRig
from .lids import lid_skin, match_eyes, paint_shut_lid
from .mouth import (JAW_TEETH_SHARE, TEETH_SHOW_IOD, TUCK_OVERLAP_IOD, MouthPalette, TeethPose, draw_mouth,
                    find_own_teeth, incisal_depth, match_softness, mouth_detail, polygon_crop, seat_lower_lip,
                    smoothstep)
from .raster import barycentric_maps, rasterize_nearest, signed_area2

RING_SCALES = (1.3, 1.7, 2.3)  # control rings around the face oval
RING_RESIDUAL_SHARE = (0.65, 0.3, 0.0)  # share of the oval's residual motion each ring follows
HEAD_FULL, HEAD_ZERO = 1.35, 2.2  # elliptic radii where head weight starts to fall / reaches 0
BORDER_STILL, BORDER_TAPER = 0.03, 0.09  # fractions of the short side: no motion within the first, fading in up to the second
# The head's motion fades in further from the border: a head cropped at the frame edge
# (a tight head shot) then spreads the stretch over more hair and keeps most of its
# pose instead of having it cut by pose_scale.
HEAD_BORDER_TAPER = 0.14
INVERT_ITERS = 4  # fixed-point iterations of the displacement inversion
# Pixels the fixed-point iterations leave further than this from their target get
# NEWTON_ITERS Newton steps.
REFINE_ABOVE_PX, NEWTON_ITERS = 0.3, 3
# iod of depth one drawing-priority step is worth: a closing lid is drawn over the lower
# lid and the eyeball at about the same depth, yet well behind the nose's lead over the
# far eye (~0.3 iod) in a turn.
PRIORITY_DEPTH = 0.05
# Eye heights the lid margins travel in a full blink. The upper margin falls past the
# lower lid's landmarks (they sit inside the visible eye): at 1.05 a cartoon's big eyes
# kept a band of white under the shut lid, and Mona Lisa read 0.51 of open at 0.7 closure
# (0.43 now; MediaPipe must see a blink to count it).
LID_DROP, LOWER_LID_RISE = 1.2, 0.05
LID_FOLD, LID_CREASE = 1.05, 0.5  # how far the skin rings above the lid margin follow it
# Expression magnitudes at control value 1, in inter-ocular distances (iod) or eye heights.
BROW_RAISE, BROW_INNER_RAISE = 0.075, 0.06  # iod the brows / their inner ends rise
BROW_LOWER, BROW_PULL = 0.045, 0.04  # iod brows sink / slide towards the midline in a squeeze
SMILE_OUT, SMILE_UP, FROWN_DOWN = 0.065, 0.05, 0.055  # iod the mouth corners move
CHEEK_RISE = 0.09  # iod the cheeks lift
SQUINT_LOWER, SQUINT_UPPER = 0.30, 0.12  # eye heights the lower lid rises / upper lid falls
WIDEN_UPPER, WIDEN_LOWER = 0.25, 0.08  # eye heights the lids part for wide eyes
EYEBALL_R = 0.133  # eyeball radius / iod (12 mm of ~90 mm): iris shift per radian of gaze
TORSO_FOLLOW = 0.12  # share of the head's rigid sway the body follows
BREATH_RISE = 0.008  # iod the body rises on a full inhale
# iod; blur of the person mask in the body's weight: its shift fades smoothly past the
# outline (the plate shows behind it), so the fixed-point inverse converges there.
BODY_BLUR = 0.2
REGIONS = ("face", "mouth", "eyes", "head")
# The person is a layer over a background plate: the photo with the person (mask above
# PLATE_HOLE, grown by PLATE_GROW iod) inpainted at 1/PLATE_SCALE resolution, once per
# portrait. Where the moving person uncovers what was behind it, the plate shows.
PLATE_HOLE, PLATE_GROW, PLATE_SCALE = 0.05, 0.06, 4
MIRROR_IOD = 0.5  # iod into the plate's hole the background mirrored across its edge reaches
# iod; blur of the mirror's edge points (nearest points jump between Voronoi cells). 0.25
# drew the webcam's blinds straighter, but changed the astronaut's background enough for
# MediaPipe to read two closed-lip frames of test_tts's chunked text video as open.
MIRROR_SMOOTH_IOD = 0.1
LAYER_MARGIN = 8  # px the layer and plate reach beyond the region of interest
# Source pixels per output pixel where squeezed skin starts / fully takes a blurred
# sample (sigma SQUEEZE_BLUR px) instead of a point sample.
SQUEEZE_START, SQUEEZE_FULL, SQUEEZE_BLUR = 1.4, 2.5, 1.0
# The face layer's opacity where it turns away (see _silhouette_band): its coverage
# blurred by SILHOUETTE_SIGMA iod, fully opaque from SILHOUETTE_RAMP[1] of it and clear
# below SILHOUETTE_RAMP[0] (on a straight edge of a 3 px blur: ~1 px inside the
# raster's edge, feathered over ~3 px).
SILHOUETTE_SIGMA, SILHOUETTE_RAMP = 0.035, (0.55, 0.9)
SILHOUETTE_SMOOTH_IOD = 0.08  # iod; scale of the bites and wedges smoothed out of that outline first
BEHIND_MAX_ERR_PX = 0.45  # px; a feathered pixel blends in the field behind only where its inverse is this good
# rad of head yaw below which no silhouette folds are smoothed, and from which the fade is
# full: between, it grows with the turn. Switched on whole at the first, the jaw's edge
# jumped from hard to feathered as a swaying head crossed it, and the fade of a barely
# turned face (0.07-0.13 rad) took enough off its jaw beside the mouth for MediaPipe to
# read short open Mandarin vowels under 0.08 iod (tests/test_tts.py: 15 jaw pixels moved one
# syllable from 0.088 to 0.070; that test sits close to its thresholds, and a ramp ending
# at 0.12 rad read two of its eight closures open instead).
SILHOUETTE_MIN_YAW, SILHOUETTE_FULL_YAW = 0.06, 0.15
# Rim triangles (within RIM_RINGS edges of the face's outline) squeezed to less than
# RIM_SQUEEZE[1] of their area in the photo fade out, fully at RIM_SQUEEZE[0]: they are
# about to fold and their squeezed skin shows as light wedges beyond the cheek's outline.
RIM_RINGS, RIM_SQUEEZE = 2, (0.1, 0.3)
# ... and so do rim triangles stretched past RIM_STRETCH[0] times their area (fully at
# [1]): dragged out by the cheek's vertices passing the outline's, they are the sawtooth
# of light wedges along the far cheek.
RIM_STRETCH = (1.8, 2.6)
# iod of the face layer's opaque outline the drawn mouth interior keeps clear of (about a
# lip's thickness): a cavity never meets the face's silhouette.
MOUTH_RIM_IOD = 0.05
MIN_FRONT_AREA = 1e-3  # px²; a face triangle with less (signed, source orientation) area faces away
# Least det(I + J) of the forward field allowed in the band where it tapers to the still
# frame border (see _border_squeeze), checked every SQUEEZE_GRID px.
MIN_BORDER_DET, SQUEEZE_GRID = 0.3, 3
POSE_MAX_STRETCH = 0.75  # largest |d displacement / d x| a head pose may cause at the border taper
# Brow landmarks (image-left, image-right), each outer end to inner end: upper and lower rows.
BROW_L = np.array([[70, 63, 105, 66, 107], [46, 53, 52, 65, 55]])
BROW_R = np.array([[300, 293, 334, 296, 336], [276, 283, 282, 295, 285]])
CHEEK_L, CHEEK_R = 50, 280
# Points that move with the skull only (outer eye corners, nose bridge, tip and base,
# down to the top of the philtrum): the upper teeth follow their affine fit, which
# reaches down to the mouth (a similarity fitted above it put the teeth under the upper
# lip when the chin tipped up, and the opening read as half as open).
SKULL_POINTS = np.array([33, 263, 6, 168, 4, 1, 2, 164, 98, 327])
POUT_IOD = 0.05  # iod the outer edges of fully rounded lips bulge out (everted by being pushed forward)
UPPER_LIFT = 0.12  # share of a lip opening made by the upper lip rising (the lower lip and jaw do the rest)
# Share of a unit widening that full rounding takes back at the corners, on top of the
# viseme's own mouth_wide. Real lips keep ~0.8 of their rest width on /ow/ and ~0.7 on
# /uw/; at 0.45 photo_woman_frontal's /ow/ kept 0.48 and /uw/ 0.42 (now 0.76 and 0.70),
# a knot of lip that dlib read as another person (identity distance 0.45 vs 0.33 at 0.2).
ROUND_NARROW = 0.2
# Share of its distance from the lip middle an inner lip point moves inwards at full
# rounding (the outer lip line: none): the orifice narrows more than the mouth.
ROUND_SEAL = 0.15
ROUND_SEAL_FULL_IOD = 0.08  # opening (iod) from which the orifice narrows fully; shut lips: not at all
# Rounded lips are pushed forward (~5 mm at the lip line): a turned head shows them
# standing out in front of the teeth and the face (parallax), not only a smaller mouth.
PROTRUDE_IOD = 0.055
# A portrait smiling with parted lips opens from its own parting: from this opening
# (iod) on, the lips are apart by the photo's teeth display plus the opening asked for.
SEAT_KEEP_FROM = 0.06
# iod, rad, rad: the frame the interior's softness is matched on. It needs a pitch too:
# resampled at vertical sub-pixel offsets, the eyes' lids and lashes (horizontal lines)
# lose a quarter of their detail, which a yaw alone kept (Mona Lisa's calibration read
# 0.60 while her talking frames read 1.1-1.3 against the same eyes).
CALIBRATION_OPEN, CALIBRATION_YAW, CALIBRATION_PITCH = 0.22, 0.03, 0.025
TUCK_CONTACT_FROM, TUCK_CONTACT_FULL = 0.35, 0.75  # lip_tuck where /f v/ contact starts / is complete
LIP_SKIN_SQUEEZE = 0.5  # share of its height the skin under a dropping lower lip may lose before it is pushed along


def _affine(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(2, 3) least-squares affine map taking src to dst ((K, 2), K >= 3)."""
    X = np.concatenate([src, np.ones((len(src), 1))], 1)
    return np.linalg.lstsq(X, dst, rcond=None)[0].T


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """3x3 rotation in image axes (x right, y down, z away from the viewer).
    yaw > 0 turns the nose to the image's right, pitch > 0 tips the chin down,
    roll > 0 tilts clockwise."""
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    ry = np.array([[cy, 0, -sy], [0, 1, 0], [sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return rz @ rx @ ry


def remap_points(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``image`` ((H, W, C)) sampled bilinearly at the points (x, y) ((n,) px, edge
    replicated): (n, C). cv2.remap takes maps under 32767 rows, so the points go in rows."""
    n, width = len(x), 1024
    rows = -(-n // width)
    mx = np.zeros(rows * width, np.float32)
    my = np.zeros(rows * width, np.float32)
    mx[:n], my[:n] = x, y
    out = cv2.remap(image, mx.reshape(rows, width), my.reshape(rows, width), cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(rows * width, -1)[:n]


def newton_inverse(d: np.ndarray, px: np.ndarray, py: np.ndarray, tx: np.ndarray,
                   ty: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NEWTON_ITERS Newton steps q <- q - (I + J_d(q))^-1 (q + d(q) - x) of the points
    (px, py) ((n,) px) towards the inverse of x = (tx, ty) under the forward displacement
    d ((h, w, 2) px, bilinear). Returns (px, py, err: (n,) |q + d(q) - x| px)."""
    n = len(px)
    for _ in range(NEWTON_ITERS):
        # d at q, one pixel right and one down, in one call: J_d by forward differences.
        s3 = remap_points(d, np.concatenate([px, px + 1, px]), np.concatenate([py, py, py + 1]))
        dq, jx, jy = s3[:n], s3[n:2 * n] - s3[:n], s3[2 * n:] - s3[:n]
        rx, ry = px + dq[:, 0] - tx, py + dq[:, 1] - ty
        a, b, c, e = 1 + jx[:, 0], jy[:, 0], jx[:, 1], 1 + jy[:, 1]
        det = a * e - b * c
        ok = det > 0.05  # else (a fold) a plain fixed-point step
        inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
        px = px - np.where(ok, (e * rx - b * ry) * inv, rx)
        py = py - np.where(ok, (a * ry - c * rx) * inv, ry)
    dq = remap_points(d, px, py)
    return px, py, np.hypot(px + dq[:, 0] - tx, py + dq[:, 1] - ty)


class RenderStats:
    """Per-frame warp checks of a run (``MeshWarpRenderer.last_stats`` of each frame)."""

    KEYS = ("inverse_error_px", "folded_triangles", "hidden_triangles")

    def __init__(self):
        self.frames = {k: [] for k in self.KEYS}

    def add(self, frame_stats: dict) -> None:
        for k in self.KEYS:
            self.frames[k].append(frame_stats[k])

    def summary(self) -> dict:
        """worst_inverse_error_px: the largest distance (px), over all frames and output
        pixels, between a pixel and where its source point maps forward to; its median and
        99th percentile over frames; folded_triangles_max: most triangles folded while
        visible in any frame; hidden_triangles_max: most face triangles turned away (drawn
        behind the nearer surface); per_frame: the series."""
        err = np.asarray(self.frames["inverse_error_px"], np.float64)
        if not len(err):
            return {}
        return {"worst_inverse_error_px": round(float(err.max()), 4),
                "inverse_error_px_p50": round(float(np.percentile(err, 50)), 4),
                "inverse_error_px_p99": round(float(np.percentile(err, 99)), 4),
                "folded_triangles_max": int(max(self.frames["folded_triangles"])),
                "hidden_triangles_max": int(max(self.frames["hidden_triangles"])),
                "per_frame": {"inverse_error_px": [round(float(e), 4) for e in err],
                              "folded_triangles": [int(v) for v in self.frames["folded_triangles"]],
                              "hidden_triangles": [int(v) for v in self.frames["hidden_triangles"]]}}


class MeshWarpRenderer:
    """Renders frames of one portrait from per-frame controls (see ``MotionTrack``)."""

    def __init__(self, rig: FaceRig):
        self.image = np.ascontiguousarray(rig.image)
        h, w = self.image.shape[:2]
        # Where the face mesh put the lower lip on the photo's own teeth (a broad smile),
        # the lip is moved to below them so the lips close over the teeth.
        lm = seat_lower_lip(self.image, rig.landmarks.astype(np.float64))
        # (11,) px the lower inner lip was moved down: the photo's own lip parting, which
        # an open mouth keeps (it opens from the photo's smile, closures still shut).
        self.seat_gap = (lm[L.LOWER_INNER, 1] - rig.landmarks[L.LOWER_INNER, 1]).astype(np.float64)
        self.verts = lm[:L.N_SURFACE]  # (468, 3); iris points stay out of the mesh
        s = rig.iod_px
        self.iod = s
        ex = lm[L.EYE_OUTER_R, :2] - lm[L.EYE_OUTER_L, :2]
        self.ex = ex / np.linalg.norm(ex)
        self.ey = np.array([-self.ex[1], self.ex[0]])  # face "down" in the image
        oval = lm[L.FACE_OVAL]
        c = oval[:, :2].mean(0)
        self.pivot = np.array([*(lm[L.CHIN, :2] + 0.3 * s * self.ey), oval[:, 2].mean() + 0.7 * s])
        self.z_plane = float(oval[:, 2].mean())

        # --- control points: face mesh + rings + frame border --------------------------
        rings = [c + k * (oval[:, :2] - c) for k in RING_SCALES]
        border = []
        nb = 8
        for t in np.linspace(0, 1, nb + 1):
            border += [(t * (w - 1), 0), (t * (w - 1), h - 1), (0, t * (h - 1)), (w - 1, t * (h - 1))]
        ring = np.concatenate(rings)
        inside = (ring[:, 0] > 1) & (ring[:, 0] < w - 2) & (ring[:, 1] > 1) & (ring[:, 1] < h - 2)
        pts = np.concatenate([self.verts[:, :2], ring[inside], np.unique(np.array(border), axis=0)])
        self.n_pts = len(pts)
        self.n_mesh = L.N_SURFACE
        # Each ring point carries a share of its oval point's residual (parallax, jaw), so
        # the face's outline moving against the rigid head spreads over the whole band
        # out to the last ring instead of squeezing (folding) the skin and hair next to it.
        self.ring_src = np.tile(np.asarray(L.FACE_OVAL), len(RING_SCALES))[inside]
        self.ring_share = np.repeat(RING_RESIDUAL_SHARE, len(L.FACE_OVAL))[inside]

        # --- head weight: ellipse around the face oval, shaped by the person mask -------
        rel = oval[:, :2] - c
        a = np.abs(rel @ self.ex).max()
        b = np.abs(rel @ self.ey).max()
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        px, py = xx - c[0], yy - c[1]
        r = np.sqrt(((px * self.ex[0] + py * self.ex[1]) / a) ** 2 + ((px * self.ey[0] + py * self.ey[1]) / b) ** 2)
        geom = 1 - smoothstep(HEAD_FULL, HEAD_ZERO, r)
        sig = max(1.0, 0.08 * s)
        face_core = np.zeros((h, w), np.float32)
        cv2.fillPoly(face_core, [np.round(oval[:, :2]).astype(np.int32)], 1.0)
        face_core = cv2.GaussianBlur(cv2.dilate(face_core, np.ones((3, 3), np.uint8), iterations=max(1, int(0.1 * s))),
                                     (0, 0), sig)
        # The head's weight ignores where the person ends: the person layer moves as a
        # whole over the background plate (see _setup_plate), so its field stays smooth
        # (a weight dropping at the person's outline stretched or folded the hair there
        # beyond what the fixed-point inverse can follow).
        face_w = np.minimum(face_core * 1.5, 1.0)
        whead = np.maximum(geom, face_w)
        edge = np.minimum(np.minimum(xx, w - 1 - xx), np.minimum(yy, h - 1 - yy))
        whead *= smoothstep(BORDER_STILL * min(h, w), HEAD_BORDER_TAPER * min(h, w), edge)
        whead[whead < 1e-3] = 0.0

        # --- region of interest: where anything can move -------------------------------
        ys, xs = np.nonzero(whead > 0)
        hull = np.concatenate([ring[inside], self.verts[:, :2]])
        rx0 = int(max(0, min(xs.min() if len(xs) else w, hull[:, 0].min()) - 2))
        ry0 = int(max(0, min(ys.min() if len(ys) else h, hull[:, 1].min()) - 2))
        rx1 = int(min(w, max(xs.max() + 1 if len(xs) else 0, hull[:, 0].max()) + 3))
        ry1 = int(min(h, max(ys.max() + 1 if len(ys) else 0, hull[:, 1].max()) + 3))
        self.roi = (rx0, ry0, rx1, ry1)
        rh, rw = ry1 - ry0, rx1 - rx0
        self.w_roi = np.ascontiguousarray(whead[ry0:ry1, rx0:rx1])
        gx, gy = np.meshgrid(np.arange(rx0, rx1, dtype=np.float32), np.arange(ry0, ry1, dtype=np.float32))
        self.gx, self.gy = gx, gy
        self.w_verts = whead[np.clip(np.round(self.verts[:, 1]).astype(int), 0, h - 1),
                             np.clip(np.round(self.verts[:, 0]).astype(int), 0, w - 1)]
        # Next to the still frame border the smooth field follows the face's outline only
        # partly: a chin nodding towards the border is drawn over the neck by the face
        # layer instead of squeezing the neck into a fold against the border.
        vedge = np.minimum(np.minimum(self.verts[:, 0], w - 1 - self.verts[:, 0]),
                           np.minimum(self.verts[:, 1], h - 1 - self.verts[:, 1]))
        self.outline_normal = np.zeros((self.n_mesh, 2))  # (468, 2) outward unit normals on the oval
        out = oval[:, :2] - c
        self.outline_normal[L.FACE_OVAL] = out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
        self.res_share = smoothstep(BORDER_STILL * min(h, w), HEAD_BORDER_TAPER * min(h, w), vedge)
        rp = ring[inside]
        self.ring_share = self.ring_share * whead[np.clip(np.round(rp[:, 1]).astype(int), 0, h - 1),
                                                  np.clip(np.round(rp[:, 0]).astype(int), 0, w - 1)]

        # --- barycentric weights of every ROI pixel in the smooth field ------------------
        # The face mesh: a triangulation of its own points, covering all of the face up to
        # its outline (with the rings' points, the hollows of the outline went to the field).
        # The smooth field (everything around the face) hangs on the face's outline only:
        # inside the face the depth-tested mesh replaces it, and the mesh's inner points
        # next to the outline (which cross it when the face turns) would fold its triangles.
        tri = Delaunay(self.verts[:, :2])
        outline = np.r_[np.asarray(L.FACE_OVAL), np.arange(self.n_mesh, self.n_pts)]
        tri_s = Delaunay(pts[outline])
        self.smooth_tris = outline[tri_s.simplices]  # (K, 3) indices into pts
        corners = pts[self.smooth_tris]  # (K, 3, 2); the triangles tile the frame, so no depth
        simplex = rasterize_nearest(corners, np.zeros(corners.shape[:2]), self.roi).ravel()
        ok = simplex >= 0
        inv = barycentric_maps(corners)[simplex[ok]]  # (P, 3, 3)
        bary = gx.ravel()[ok, None] * inv[:, 0] + gy.ravel()[ok, None] * inv[:, 1] + inv[:, 2]
        rows = np.repeat(np.nonzero(ok)[0], 3)
        cols = self.smooth_tris[simplex[ok]].ravel()
        self.B = sparse.csr_matrix((bary.ravel().astype(np.float32), (rows, cols)), shape=(rh * rw, self.n_pts))
        self.roi_shape = (rh, rw)
        # Triangles of the face mesh with a drawing priority among overlapping ones (see
        # _setup_face_layer): the eyes' (a blink collapses the eyeball between the lids)...
        eye_set = np.zeros(self.n_pts, bool)
        for idx in (L.EYE_L_UPPER0, L.EYE_L_LOWER0, L.EYE_L_UPPER1, L.EYE_L_UPPER2,
                    L.EYE_R_UPPER0, L.EYE_R_LOWER0, L.EYE_R_UPPER1, L.EYE_R_UPPER2):
            eye_set[idx] = True
        simp = tri.simplices
        self.eye_tris = simp[eye_set[simp].any(1) & (simp < self.n_mesh).all(1)]
        upper_lid = np.zeros(self.n_pts, bool)
        upper_lid[np.r_[L.EYE_L_UPPER0[1:-1], L.EYE_L_UPPER1, L.EYE_R_UPPER0[1:-1], L.EYE_R_UPPER1]] = True
        lower_lid = np.zeros(self.n_pts, bool)
        lower_lid[np.r_[L.EYE_L_LOWER0, L.EYE_R_LOWER0]] = True
        up, lo = upper_lid[self.eye_tris].any(1), lower_lid[self.eye_tris].any(1)
        # Drawing priority where triangles overlap: the closing lid's skin covers the
        # lower lid, which covers the (vanishing) eyeball triangles between the lids.
        self.eye_tri_priority = np.where(up & ~lo, 2, np.where(up & lo, 0, 1))
        # ... and the mouth's (the lips stretch over the triangles spanning the lip gap).
        rel = self.verts[:, :2] - (lm[L.UPPER_INNER[0], :2] + lm[L.UPPER_INNER[-1], :2]) / 2
        near_mouth = np.zeros(self.n_pts, bool)
        near_mouth[:self.n_mesh] = np.linalg.norm(rel, axis=1) < 0.75 * self.iod
        self.mouth_tris = simp[near_mouth[simp].any(1) & (simp < self.n_mesh).all(1)]
        # ... and the mouth's (the lips stretch over the triangles spanning the lip gap).
        gap_pts = np.zeros(self.n_pts, bool)
        gap_pts[np.r_[L.UPPER_INNER, L.LOWER_INNER]] = True
        # Triangles spanning the lip gap are painted over by the mouth interior: lowest.
        self.mouth_tri_priority = np.where(gap_pts[self.mouth_tris].all(1), 0, 1)
        self._setup_face_layer(lm, simp, pts)

        self._setup_plate(rig.person, face_w)
        self._setup_expressions(lm)
        self.palette = MouthPalette.from_image(self.image, lm, calibrate=False)
        self._setup_slit(lm)
        self._setup_teeth(lm)

        # --- the body: follows the head slightly and breathes ---------------------------
        body = smoothstep(0.3, 0.8, cv2.GaussianBlur(rig.person.astype(np.float32), (0, 0), max(1.0, BODY_BLUR * s)))
        body *= smoothstep(BORDER_STILL * min(h, w), BORDER_TAPER * min(h, w), edge)
        # Only this person's body: the mask's part connected to the face, and not far to
        # the side of it (other people in the picture stay still).
        _, comp = cv2.connectedComponents((body > 0.05).astype(np.uint8), connectivity=8)
        cx, cy = np.clip(np.round(lm[L.NOSE_TIP, :2]).astype(int), 0, [w - 1, h - 1])
        own = comp[cy, cx]
        body = body * (comp == own) if own > 0 else np.zeros_like(body)
        side = np.abs((xx - c[0]) * self.ex[0] + (yy - c[1]) * self.ex[1])
        body *= 1 - smoothstep(2.2 * s, 3.2 * s, side)
        body[body < 1e-3] = 0.0
        ys, xs = np.nonzero(body > 0)
        # The body outside the head's box, as up to four strips (x0, y0, x1, y1, grid x,
        # grid y, weight); inside the head's box the head's warp carries the body shift.
        self.body_strips = []
        if len(xs):
            bx0, by0, bx1, by1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
            my0, my1 = max(by0, ry0), min(by1, ry1)
            for sx0, sy0, sx1, sy1 in ((bx0, by0, bx1, min(by1, ry0)), (bx0, max(by0, ry1), bx1, by1),
                                       (bx0, my0, min(bx1, rx0), my1), (max(bx0, rx1), my0, bx1, my1)):
                if sx1 <= sx0 or sy1 <= sy0 or not body[sy0:sy1, sx0:sx1].any():
                    continue
                sgx, sgy = np.meshgrid(np.arange(sx0, sx1, dtype=np.float32), np.arange(sy0, sy1, dtype=np.float32))
                self.body_strips.append((sx0, sy0, sx1, sy1, sgx, sgy, np.ascontiguousarray(body[sy0:sy1, sx0:sx1])))
        self.body_box = (bx0, by0, bx1, by1) if len(xs) else None
        self.movable = body > 0  # (H, W) bool: pixels the body shift may move
        self.movable[ry0:ry1, rx0:rx1] = True
        self.w_body_roi = np.ascontiguousarray(body[ry0:ry1, rx0:rx1])
        self.w_body_verts = body[np.clip(np.round(self.verts[:, 1]).astype(int), 0, h - 1),
                                 np.clip(np.round(self.verts[:, 0]).astype(int), 0, w - 1)].astype(np.float64)
        self.head_top = lm[L.FOREHEAD, :2].astype(np.float64)
        self.set_region(None)
        self._match_mouth_softness()

    def _match_mouth_softness(self) -> None:
        """Blur the drawn interior so an open mouth rendered with a slight head turn (so
        the photo is resampled as in motion) has DETAIL_TARGET times the detail of the
        eyes in the same frame: a soft painting gets a soft mouth, a crisp photo a crisp
        one (a few renders of one frame, once per portrait)."""
        base = self.palette
        pose = {"mouth_open": CALIBRATION_OPEN, "jaw_open": CALIBRATION_OPEN, "yaw": CALIBRATION_YAW,
                "pitch": CALIBRATION_PITCH}
        pos = self.vertex_positions(**pose)[0]

        def detail(soft):
            self.palette = replace(base, soft_iod=soft)
            return mouth_detail(self.render(**pose), pos)
        self.palette = replace(base, soft_iod=match_softness(detail))

    def _setup_plate(self, person: np.ndarray, face_w: np.ndarray) -> None:
        """The background plate under the person layer, over the region of interest:
        ``plate`` (uint8 RGB), the photo with the person inpainted (cheaply, at a fraction
        of the resolution: only its part next to the outline is ever seen), and ``clear``
        (float32), 1 - the person layer's opacity (the soft person mask, never clear on
        the face), both over the region plus LAYER_MARGIN px (``layer_offset``: where the
        region starts in them). person: (H, W) soft mask; face_w: (H, W) face weight."""
        h, w = self.image.shape[:2]
        rx0, ry0, rx1, ry1 = self.roi
        # A margin around the region of interest: source points a little outside it (the
        # body's shift at its edge) still sample the photo, not a replicated edge.
        x0, y0 = max(0, rx0 - LAYER_MARGIN), max(0, ry0 - LAYER_MARGIN)
        x1, y1 = min(w, rx1 + LAYER_MARGIN), min(h, ry1 + LAYER_MARGIN)
        self.layer_offset = np.float32(rx0 - x0), np.float32(ry0 - y0)
        self.plate_box = (rx0 - x0, ry0 - y0, rx1 - x0, ry1 - y0)
        img = self.image[y0:y1, x0:x1]
        opaque = np.maximum(person[y0:y1, x0:x1], face_w[y0:y1, x0:x1]).astype(np.float32)
        self.clear = np.ascontiguousarray(1.0 - opaque)
        grow = max(1, int(round(PLATE_GROW * self.iod)))
        hole = cv2.dilate((opaque > PLATE_HOLE).astype(np.uint8), np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
        rh, rw = hole.shape
        sw, sh = max(1, rw // PLATE_SCALE), max(1, rh // PLATE_SCALE)
        small = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA)
        small_hole = (cv2.resize(hole.astype(np.float32), (sw, sh), interpolation=cv2.INTER_AREA) > 0).astype(np.uint8)
        if small_hole.all():  # nothing of the background in view: the plate is the photo
            self.plate = img.copy()
        else:
            filled = cv2.resize(cv2.inpaint(small, small_hole, 3, cv2.INPAINT_TELEA), (rw, rh),
                                interpolation=cv2.INTER_LINEAR)
            # Next to the outline, where a moving person uncovers it, the hole takes the
            # background mirrored across its edge: the texture there (blinds, leaves, a
            # wall's grain) continues instead of a smooth inpainted band that read as a
            # light halo around a webcam's head; deeper in, it fades to the smooth fill.
            _, near = cv2.distanceTransformWithLabels(hole, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
            oy, ox = np.nonzero(hole == 0)
            lut = np.zeros((int(near.max()) + 1, 2), np.float32)
            lut[near[oy, ox]] = np.stack([ox, oy], 1)
            # The nearest background pixel, smoothed (nearest points jump between
            # Voronoi cells, which zig-zagged the mirrored stripes).
            edge = cv2.GaussianBlur(lut[near], (0, 0), max(1.0, MIRROR_SMOOTH_IOD * self.iod))
            yy, xx = np.mgrid[0:rh, 0:rw].astype(np.float32)
            mx, my = 2 * edge[..., 0] - xx, 2 * edge[..., 1] - yy
            depth = np.hypot(edge[..., 0] - xx, edge[..., 1] - yy)
            mirrored = cv2.remap(img, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            ok = cv2.remap(1 - hole.astype(np.float32), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            wm = (ok > 0.99) * (1 - smoothstep(0.5 * MIRROR_IOD * self.iod, MIRROR_IOD * self.iod, depth))
            fill = filled + (mirrored.astype(np.float32) - filled) * wm[..., None].astype(np.float32)
            self.plate = np.where(hole[..., None] > 0, np.clip(fill + 0.5, 0, 255).astype(np.uint8), img)
        # G = I - clear P, sampled with clear per frame; P over the region itself.
        bx0, by0, bx1, by1 = self.plate_box
        self.plate_f = np.ascontiguousarray(self.plate[by0:by1, bx0:bx1], np.float32)
        self.layer_g = np.ascontiguousarray(img - self.clear[..., None] * self.plate, np.float32)

    def _composite_plate(self, qx: np.ndarray, qy: np.ndarray) -> np.ndarray:
        """The person layer warped by the inverse map (qx, qy: ROI coordinates) over the
        background plate: (rh, rw, 3) uint8. Per pixel out = I(q) + clear(q) (P(x) - P(q)),
        computed as G(q) + clear(q) P(x) with G = I - clear P: the photo's own pixel
        where nothing moved (q = x) or the person is opaque, the plate where the person
        moved away and left background behind (I(q) = P(q) there)."""
        ox, oy = self.layer_offset
        mx, my = qx + ox, qy + oy
        g = cv2.remap(self.layer_g, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        k = cv2.remap(self.clear, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out = cv2.add(cv2.multiply(self.plate_f, cv2.merge([k, k, k])), g)
        # Negatives (bilinear overshoot) to 0, then round and saturate to uint8. Not
        # cv2.max(out, 0.0): with a scalar it took ~5 ms per 512² frame (a third of the render).
        return cv2.convertScaleAbs(cv2.threshold(out, 0.0, 0.0, cv2.THRESH_TOZERO)[1])

    def _setup_face_layer(self, lm: np.ndarray, simp: np.ndarray, pts: np.ndarray) -> None:
        """The face mesh as a surface rendered with a depth test (see ``_face_inverse``):
        every triangle of the triangulation whose corners are all face-mesh points, its
        source corners and orientation, and a depth bias that settles overlaps the 3-D
        landmarks cannot (a closing lid over the lower lid and the eyeball, lips over the
        triangles spanning the lip gap). The other triangles (to the rings and the frame
        border) belong to the smooth field and are only checked for folds."""
        self.face_tris = simp[(simp < self.n_mesh).all(1)]
        self.band_tris = self.smooth_tris[(self.smooth_tris >= self.n_mesh).any(1)]
        self.ctrl_pts = pts  # (n_pts, 2) source control points
        src = self.verts[:, :2][self.face_tris]
        self.face_src = src  # (K, 3, 2)
        self.face_sign = np.sign(signed_area2(src))
        self.face_src_area2 = np.maximum(np.abs(signed_area2(src)), 1e-6)  # (K,) px², twice the area
        # The rim: triangles within RIM_RINGS edges of the face's outline, where a turn
        # folds the far cheek (the cheek's vertices, nearer the viewer, pass the outline's).
        ring = np.zeros(self.n_mesh, bool)
        ring[np.asarray(L.FACE_OVAL)] = True
        for _ in range(RIM_RINGS):
            ring[self.face_tris[ring[self.face_tris].any(1)].ravel()] = True
        self.rim_tris = ring[self.face_tris].all(1)
        bpts = pts[self.band_tris]
        self.band_sign = np.sign(signed_area2(bpts))
        priority = np.ones(len(self.face_tris))
        index = {tuple(sorted(t)): i for i, t in enumerate(self.face_tris.tolist())}
        for tris, prio in ((self.eye_tris, self.eye_tri_priority), (self.mouth_tris, self.mouth_tri_priority)):
            for t, p in zip(tris.tolist(), prio):
                priority[index[tuple(sorted(t))]] = p
        self.face_depth_bias = (1.0 - priority) * PRIORITY_DEPTH * self.iod  # (K,) added to depth

    # ------------------------------------------------------------------ expressions
    def _setup_expressions(self, lm: np.ndarray) -> None:
        v2 = self.verts[:, :2]
        s = self.iod
        up, lo = lm[L.UPPER_INNER, :2], lm[L.LOWER_INNER, :2]
        self.mouth_mid = (up[0] + up[-1]) / 2
        self.mouth_w = float(np.linalg.norm(up[-1] - up[0]))
        t = ((up - self.mouth_mid) @ self.ex) / (self.mouth_w / 2)
        self.lip_t = t  # (11,) column position, -1 (image-left corner) .. 1
        self.lip_profile = np.clip(1 - np.abs(t) ** 2.2, 0, 1) ** 0.6  # (11,) wide, flat opening
        self.round_profile = np.sqrt(np.clip(1 - t ** 2, 0, 1))  # (11,) rounded opening
        self.lip_gap0 = (lo - up) @ self.ey  # (11,) source gap along "down", px
        rel = v2 - self.mouth_mid
        xv, yv = rel @ self.ex, rel @ self.ey
        jaw = smoothstep(0.0, 0.22 * s, yv) * (1 - 0.7 * np.clip(np.abs(xv) / (1.0 * s), 0, 1) ** 2)
        self.jaw_w = jaw
        self.wide_field = np.exp(-(xv ** 2 + yv ** 2) / (2 * (0.7 * self.mouth_w) ** 2)) * xv  # px per unit wide
        self.lip_set = np.zeros(L.N_SURFACE, bool)
        self.lip_set[L.UPPER_LIP.ravel()] = True
        self.lip_set[L.LOWER_LIP.ravel()] = True
        # Skin right under the lower lip is pushed down by it where the jaw moves less
        # than the lip: a lip dropping past
        # the chin skin folded that band over (cracks and lip colour dripping below the
        # lower lip at wide openings, or when the slower jaw lags the lips).
        lo_out = lm[L.LOWER_OUTER, :2] - self.mouth_mid
        order = np.argsort(lo_out @ self.ex)
        below = yv - np.interp(xv, (lo_out @ self.ex)[order], (lo_out @ self.ey)[order])  # px under the lip edge
        lat = np.abs(xv) / (0.5 * self.mouth_w)
        self.chin_follow = (below > -0.01 * s) * (1 - smoothstep(0.8, 1.4, lat))
        # The skin may be squeezed to half its height before it has to move: normal
        # openings keep the jaw's motion, only a fold is prevented.
        self.chin_room = LIP_SKIN_SQUEEZE * np.maximum(below, 0.0)  # (468,) px
        self.chin_follow[self.lip_set] = 0.0
        self.vert_x = xv  # (468,) px along the mouth axis
        self.lip_x = ((up - self.mouth_mid) @ self.ex)  # (11,) px of each lip column
        self.lip_forward = np.zeros(L.N_SURFACE)  # (468,) iod each vertex moves forward at full rounding
        for lip in (L.UPPER_LIP, L.LOWER_LIP):
            for row, share in zip(lip, (1.0, 1.0, 0.8, 0.5)):
                self.lip_forward[row] = share * PROTRUDE_IOD * self.round_profile
        self.eyes = []
        for u0, l0, u1, u2 in ((L.EYE_L_UPPER0, L.EYE_L_LOWER0, L.EYE_L_UPPER1, L.EYE_L_UPPER2),
                               (L.EYE_R_UPPER0, L.EYE_R_LOWER0, L.EYE_R_UPPER1, L.EYE_R_UPPER2)):
            gap = np.maximum((lm[l0[1:-1], :2] - lm[u0[1:-1], :2]) @ self.ey, 0.0)  # (7,) px
            self.eyes.append((u0[1:-1], l0[1:-1], u1, u2, gap))
        self.eye_corners = [(L.EYE_L_UPPER0[0], L.EYE_L_UPPER0[-1]), (L.EYE_R_UPPER0[0], L.EYE_R_UPPER0[-1])]
        self._setup_lid_skins(lm)
        self._setup_expression_fields(lm)

    def _setup_lid_skins(self, lm: np.ndarray) -> None:
        """Each shut lid's skin, grain and lashes, sampled from the open eye once."""
        self.lid_skins = [lid_skin(self.image, lm[m, :2], lm[lo, :2], float(gap.max()))
                          for m, (_, lo, _, _, gap) in zip((L.EYE_L_UPPER0, L.EYE_R_UPPER0), self.eyes)]
        match_eyes(self.lid_skins)

    def _setup_expression_fields(self, lm: np.ndarray) -> None:
        """(468, 2) px displacement fields per unit of each expression control, so a
        frame's expression is a weighted sum (cheap per frame)."""
        v2 = self.verts[:, :2]
        s, ex, ey = self.iod, self.ex, self.ey
        n = L.N_SURFACE
        up = -ey
        self.fields = {k: np.zeros((n, 2)) for k in ("brow_up", "brow_inner", "brow_squeeze", "smile_pos",
                                                      "smile_neg", "cheek")}
        mid_x = float(((lm[L.EYE_INNER_L, :2] + lm[L.EYE_INNER_R, :2]) / 2) @ ex)
        for brow, (u0, l0, u1, u2, gap) in zip((BROW_L, BROW_R), self.eyes):
            pts = lm[brow.ravel(), :2]
            eye_c = lm[np.r_[u0, l0], :2].mean(0)
            h = (v2 - eye_c) @ up  # height above the eye centre, px
            h_lid = float(((lm[u0, :2] - eye_c) @ up).max())
            h_brow = float(((pts - eye_c) @ up).mean())
            gate = smoothstep(h_lid + 0.02 * s, h_brow, h) * np.exp(-np.clip(h - h_brow, 0, None) ** 2 / (2 * (0.5 * s) ** 2))
            bx = pts @ ex
            x = v2 @ ex
            lo_x, hi_x = bx.min(), bx.max()
            out_x = np.maximum(lo_x - x, 0) + np.maximum(x - hi_x, 0)
            wx = np.exp(-out_x ** 2 / (2 * (0.18 * s) ** 2))
            w = gate * wx
            inner_x = float(lm[brow[0][-1], :2] @ ex)
            outer_x = float(lm[brow[0][0], :2] @ ex)
            t_in = np.clip(1 - np.abs(x - inner_x) / max(abs(outer_x - inner_x), 1.0), 0, 1) ** 1.5
            to_mid = np.sign(mid_x - inner_x) * ex
            self.fields["brow_up"] += (w * BROW_RAISE * s)[:, None] * up[None, :]
            self.fields["brow_inner"] += (w * t_in * BROW_INNER_RAISE * s)[:, None] * up[None, :]
            self.fields["brow_squeeze"] += (w * (0.4 + 0.6 * t_in) * BROW_LOWER * s)[:, None] * (-up)[None, :]
            self.fields["brow_squeeze"] += (w * t_in * BROW_PULL * s)[:, None] * to_mid[None, :]
        # Mouth corners: a Gaussian neighbourhood of each corner moves with it; the lip
        # middle stays (lateral weight), so the corners move relative to the lips.
        lat = ((v2 - self.mouth_mid) @ ex) / (self.mouth_w / 2)
        for corner, outward, side in ((L.UPPER_OUTER[0], -ex, -1), (L.UPPER_OUTER[-1], ex, 1)):
            d2 = ((v2 - lm[corner, :2]) ** 2).sum(1)
            w = np.exp(-d2 / (2 * (0.3 * s) ** 2)) * smoothstep(0.15, 0.95, side * lat)
            self.fields["smile_pos"] += w[:, None] * (SMILE_OUT * s * outward + SMILE_UP * s * up)[None, :]
            self.fields["smile_neg"] += w[:, None] * (FROWN_DOWN * s * (-up) - 0.01 * s * outward)[None, :]
        for c in (CHEEK_L, CHEEK_R):
            d2 = ((v2 - lm[c, :2]) ** 2).sum(1)
            self.fields["cheek"] += (np.exp(-d2 / (2 * (0.25 * s) ** 2)) * CHEEK_RISE * s)[:, None] * up[None, :]
        # Lids stay where the blink/squint code puts them: brow fields leave the margins alone.
        for u0, l0, _, _, _ in self.eyes:
            for k, f in self.fields.items():
                f[u0] = 0.0
                if k.startswith("brow"):
                    f[l0] = 0.0
        # Lower-lid neighbourhood (below the eyes) rises with a squint: per-vertex weight
        # and the index of the nearest lower-lid column, for scaling by the eye height.
        self.squint_w = np.zeros(n)
        self.squint_col = np.zeros(n, int)
        self.squint_eye = np.zeros(n, int)
        for e, (u0, l0, _, _, gap) in enumerate(self.eyes):
            eye_c = lm[np.r_[u0, l0], :2].mean(0)
            d = np.linalg.norm(v2[:, None, :] - lm[l0, :2][None, :, :], axis=2)  # (468, 7)
            j = d.argmin(1)
            below = ((v2 - eye_c) @ ey) > 0
            w = np.exp(-d.min(1) ** 2 / (2 * (0.1 * s) ** 2)) * below
            w[u0] = 0.0
            take = w > self.squint_w
            self.squint_w[take], self.squint_col[take], self.squint_eye[take] = w[take], j[take], e

    def _paint_lids(self, frame: np.ndarray, pos: np.ndarray, blink: float) -> None:
        """The photo's lid skin and lashes over each closing lid (``render.lids``), from
        the warped crease ring down to the warped margin."""
        for (u0, _, _, u2, gap), skin, (c0, c1) in zip(self.eyes, self.lid_skins, self.eye_corners):
            margin = np.concatenate([pos[[c0]], pos[u0], pos[[c1]]])
            paint_shut_lid(frame, pos[u2], margin, self.ex, self.ey, float(gap.max()), skin, blink)

    def expression_offsets(self, mouth_open: float, mouth_wide: float, blink: float,
                           mouth_round: float = 0.0, lip_tuck: float = 0.0, *, brow_up: float = 0.0,
                           brow_inner: float = 0.0, brow_squeeze: float = 0.0, eye_squint: float = 0.0,
                           smile: float = 0.0, cheek: float = 0.0, jaw_open: float | None = None) -> np.ndarray:
        """(468, 2) image-plane offsets of the surface vertices before head rotation
        (controls and units as in MotionTrack)."""
        s, ey = self.iod, self.ey
        mouth_open = max(float(mouth_open), 0.0)  # lips cannot pass through each other
        if jaw_open is not None:
            jaw_open = max(float(jaw_open), 0.0)
        off = np.zeros((L.N_SURFACE, 2))
        F = self.fields
        if brow_up:
            off += brow_up * F["brow_up"]
        if brow_inner:
            off += brow_inner * F["brow_inner"]
        if brow_squeeze:
            off += brow_squeeze * F["brow_squeeze"]
        if smile > 0:
            off += smile * F["smile_pos"]
        elif smile < 0:
            off -= smile * F["smile_neg"]
        if cheek:
            off += cheek * F["cheek"]
        # Rounding draws the corners in (on top of any widening) and pushes the lips out.
        off += ((mouth_wide - ROUND_NARROW * mouth_round) * self.wide_field)[:, None] * self.ex[None, :]
        # Lips: every column of the lower lip moves so the inner gap becomes the target
        # gap (closing an open source mouth too); the upper lip lifts a little.
        profile = (1 - mouth_round) * self.lip_profile + mouth_round * self.round_profile
        target = mouth_open * s * profile + smoothstep(0.0, SEAT_KEEP_FROM, mouth_open) * self.seat_gap
        up_lift = -UPPER_LIFT * target
        if lip_tuck > 0:
            # /f v/: the lower lip comes up against the upper incisors' edge (no gap
            # between them), wherever the opening would be larger than that.
            x_iod = self.lip_t * self.mouth_w / 2 / s
            contact = np.maximum((incisal_depth(x_iod) - TUCK_OVERLAP_IOD) * s - up_lift, 0.0)
            # Only a clear /f v/ makes contact: the tuck an open vowel borrows from a
            # neighbouring /f/ (0.4 in "five") must not close the vowel.
            tuck_k = float(smoothstep(TUCK_CONTACT_FROM, TUCK_CONTACT_FULL, float(lip_tuck)))
            target = (1 - tuck_k) * target + tuck_k * np.minimum(target, contact)
        low = target - self.lip_gap0 + up_lift
        corner_drop = 0.18 * mouth_open * s
        low[[0, -1]] = up_lift[[0, -1]] = corner_drop
        if jaw_open is None or jaw_open == mouth_open:
            jaw_low = low[5]
        else:  # the jaw follows its own (slower) opening; the lower lip makes up the rest
            jt = jaw_open * s * profile[5]
            jaw_low = jt - self.lip_gap0[5] - UPPER_LIFT * jt
        jaw_y = self.jaw_w * jaw_low
        order = np.argsort(self.lip_x)
        lip_y = np.interp(self.vert_x, self.lip_x[order], low[order])  # the lower lip's drop above each vertex
        # Only a lip dropping below its place in the photo pulls the skin (closing a photo's
        # open mouth moves the lip up, and the chin stays with the jaw).
        jaw_y = jaw_y + self.chin_follow * np.maximum(np.maximum(lip_y, 0.0) - np.maximum(jaw_y, 0.0)
                                                      - self.chin_room, 0.0)
        off += np.where(self.lip_set, 0.0, jaw_y)[:, None] * ey[None, :]
        pout = POUT_IOD * s * mouth_round * self.round_profile  # (11,) px the outer lip edges bulge
        tuck = 0.045 * s * lip_tuck * self.lip_profile  # (11,) px the lower lip rolls in (thins)
        for r, row in enumerate(L.UPPER_LIP):
            off[row] += (up_lift - pout * r / 3)[:, None] * ey[None, :]
        for r, row in enumerate(L.LOWER_LIP):
            off[row[1:-1]] += (low + (pout - tuck) * r / 3)[1:-1, None] * ey[None, :]
        if mouth_round > 0:
            # The orifice: pushed-forward lips close in from the corners further than the
            # outer lip line narrows (ROUND_SEAL of each column's distance from the middle
            # on the inner rows, none on the outer), a small opening in a wider mouth. Shut
            # lips have no orifice: drawn in while closed, MediaPipe read a /b/ before /u/
            # (Mandarin 'bu') as 0.05-0.07 iod open.
            apart = float(smoothstep(0.0, ROUND_SEAL_FULL_IOD, mouth_open))
            seal = -ROUND_SEAL * mouth_round * apart * self.lip_x  # (11,) px towards the middle
            for r, (up_row, low_row) in enumerate(zip(L.UPPER_LIP, L.LOWER_LIP)):
                off[up_row] += (seal * (1 - r / 3))[:, None] * self.ex[None, :]
                off[low_row[1:-1]] += (seal * (1 - r / 3))[1:-1, None] * self.ex[None, :]
        sq, wide = max(eye_squint, 0.0), max(-eye_squint, 0.0)
        for e, (u0, l0, u1, u2, gap) in enumerate(self.eyes):
            # Squint: the lower lid (and the skin under it) rises, the upper lid sinks a
            # little; wide eyes part both lids. Then a blink closes what is left.
            upper_down = (SQUINT_UPPER * sq - WIDEN_UPPER * wide) * gap  # (7,) px
            lower_up = (SQUINT_LOWER * sq - WIDEN_LOWER * wide) * gap  # (7,) px
            if sq or wide:
                off[u0] += upper_down[:, None] * ey[None, :]
                off[u1] += (0.7 * upper_down)[:, None] * ey[None, :]
                off[u2] += (0.3 * upper_down)[:, None] * ey[None, :]
                sel = (self.squint_eye == e) & (self.squint_w > 0)
                off[sel] -= (self.squint_w[sel] * lower_up[self.squint_col[sel]])[:, None] * ey[None, :]
            if blink > 0:
                # The lid margin falls just past the lower lid's landmarks (they sit a little
                # inside the visible eye) and the lower lid rises to tuck under it; the
                # skin above the margin stretches to cover the eyeball.
                left = np.maximum(gap - upper_down - lower_up, 0.0)
                down = (LID_DROP * blink * left)[:, None] * ey[None, :]
                off[u0] += down
                off[u1] += LID_FOLD * down
                off[u2] += LID_CREASE * down
                off[l0] -= (LOWER_LID_RISE / LID_DROP) * down
        return off

    # ------------------------------------------------------------------ per frame
    def vertex_positions(self, mouth_open=0.0, mouth_wide=0.0, blink=0.0, yaw=0.0, pitch=0.0, roll=0.0,
                         mouth_round=0.0, lip_tuck=0.0, **expr):
        """(468, 2) output positions of the surface vertices and the rigid affine (A, b).
        expr: the other expression controls of ``expression_offsets``."""
        pos, _, A, b, _ = self._vertex_state(mouth_open, mouth_wide, blink, yaw, pitch, roll, mouth_round, lip_tuck,
                                          **expr)
        return pos, A, b

    def _vertex_state(self, mouth_open=0.0, mouth_wide=0.0, blink=0.0, yaw=0.0, pitch=0.0, roll=0.0,
                      mouth_round=0.0, lip_tuck=0.0, **expr):
        """``vertex_positions`` plus each vertex's depth after the head's rotation and the
        part of its output position due to the expression: (pos (468, 2) px, z (468,) px
        (smaller = nearer the viewer), A, b, expr_part (468, 2) px)."""
        v = self.verts.copy()
        off = self.expression_offsets(mouth_open, mouth_wide, blink, mouth_round, lip_tuck, **expr)
        v[:, :2] += off
        if mouth_round > 0:
            v[:, 2] -= float(mouth_round) * self.iod * self.lip_forward  # z points away from the viewer
        R = rotation(yaw, pitch, roll)
        expr_part = off @ R[:2, :2].T
        p = self.pivot
        moved = (v - p) @ R.T + p
        A = R[:2, :2] - np.eye(2)
        b = -A @ p[:2] + R[:2, 2] * (self.z_plane - p[2])
        pos, z = moved[:, :2], moved[:, 2]
        if self.region_vmask is not None:  # outside the region nothing moves
            pos = self.verts[:, :2] + self.region_vmask[:, None] * (pos - self.verts[:, :2])
            z = self.verts[:, 2] + self.region_vmask * (z - self.verts[:, 2])
            expr_part = expr_part * self.region_vmask[:, None]
        return pos, z, A, b, expr_part

    def _setup_teeth(self, lm: np.ndarray) -> None:
        """The upper teeth's resting line (TEETH_SHOW_IOD below the closed lips, fixed to
        the skull) and, when the photo shows teeth, their texture (drawn where they are
        in the photo, over the drawn teeth that continue them under the lips)."""
        up = lm[L.UPPER_INNER, :2]
        self.teeth_line0 = up + TEETH_SHOW_IOD * self.iod * self.ey[None, :]  # (11, 2) source px
        self.own_teeth = None
        own = find_own_teeth(self.image, lm)
        if own is None:
            return
        alpha, (x0, y0) = own
        rgb = self.image[y0:y0 + alpha.shape[0], x0:x0 + alpha.shape[1]].astype(np.float32)
        self.own_teeth = (rgb, alpha, np.array([[1.0, 0, x0], [0, 1.0, y0]]))

    def teeth_pose(self, pos: np.ndarray, jaw_open: float) -> TeethPose:
        """Where the teeth are in this frame: the upper row moves with the skull (a
        affine fit to SKULL_POINTS), the lower with the jaw (jaw_open, iod)."""
        S = _affine(self.verts[SKULL_POINTS, :2], pos[SKULL_POINTS])
        edge = self.teeth_line0 @ S[:, :2].T + S[:, 2]
        own = None
        if self.own_teeth is not None:
            rgb, a, T = self.own_teeth
            M = S[:, :2] @ T[:, :2]
            own = (rgb, a, np.concatenate([M, (S[:, :2] @ T[:, 2] + S[:, 2])[:, None]], 1).astype(np.float64))
        return TeethPose(edge, JAW_TEETH_SHARE * max(float(jaw_open), 0.0) * self.iod, own)

    def _setup_slit(self, lm: np.ndarray) -> None:
        """The photo's own mouth slit (the dark line between closed lips, running out to
        the outer corners, or the gap of an open mouth) and a copy of the photo with it
        healed from the surrounding lips. When the lips part, the skin and lip around the
        corners is stretched out of the pixels right next to the slit; sampling the slit
        itself there leaves dark specks below and beside the corners."""
        h, w = self.image.shape[:2]
        poly = np.concatenate([lm[[L.UPPER_OUTER[0]]], lm[L.UPPER_INNER], lm[[L.UPPER_OUTER[-1]]],
                               lm[L.LOWER_INNER[::-1]]])[:, :2]
        crop = polygon_crop(poly, (h, w), 6, value=255, dtype=np.uint8)
        self.slit = None
        if crop is None:
            return
        mask, (x0, y0, x1, y1) = crop
        mask = cv2.dilate(mask, np.ones((3, 3), np.uint8))  # the slit's anti-aliased rim
        healed = cv2.inpaint(np.ascontiguousarray(self.image[y0:y1, x0:x1]), mask, 3, cv2.INPAINT_TELEA)
        self.slit = (x0, y0, mask.astype(np.float32) / 255.0, healed)

    def _antialias_squeezed(self, frame: np.ndarray, qx: np.ndarray, qy: np.ndarray, pos: np.ndarray) -> None:
        """Where the warp squeezes skin around the mouth (below a dropping lower lip, at
        the corners), one output pixel covers several source pixels and point sampling
        picks single dark pixels out of lip lines: dotted lines. There, sample a blurred
        copy of the photo instead, in proportion to the squeeze."""
        x0, y0, x1, y1 = self.roi
        lips = pos[np.r_[L.UPPER_OUTER, L.LOWER_OUTER], :2]
        pad = 0.3 * self.iod
        bx0, by0 = np.floor(lips.min(0) - pad).astype(int)
        bx1, by1 = np.ceil(lips.max(0) + pad).astype(int) + 1
        bx0, by0, bx1, by1 = max(bx0, x0 + 1), max(by0, y0 + 1), min(bx1, x1 - 1), min(by1, y1 - 1)
        if bx1 - bx0 < 3 or by1 - by0 < 3:
            return
        sx = qx[by0 - y0 - 1:by1 - y0 + 1, bx0 - x0 - 1:bx1 - x0 + 1]
        sy = qy[by0 - y0 - 1:by1 - y0 + 1, bx0 - x0 - 1:bx1 - x0 + 1]
        # Largest source step per output pixel along x or y (central differences).
        step = np.maximum(np.hypot(sx[1:-1, 2:] - sx[1:-1, :-2], sy[1:-1, 2:] - sy[1:-1, :-2]),
                          np.hypot(sx[2:, 1:-1] - sx[:-2, 1:-1], sy[2:, 1:-1] - sy[:-2, 1:-1])) * 0.5
        wgt = smoothstep(SQUEEZE_START, SQUEEZE_FULL, step).astype(np.float32)
        if not (wgt > 0.02).any():
            return
        if getattr(self, "_blurred", None) is None:
            self._blurred = cv2.GaussianBlur(self.image, (0, 0), SQUEEZE_BLUR)
        mx, my = sx[1:-1, 1:-1] + x0, sy[1:-1, 1:-1] + y0
        soft = cv2.remap(self._blurred, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        sub = frame[by0:by1, bx0:bx1].astype(np.float32)
        frame[by0:by1, bx0:bx1] = np.clip(sub + (soft - sub) * wgt[..., None] + 0.5, 0, 255).astype(np.uint8)

    def _heal_slit(self, frame: np.ndarray, qx: np.ndarray, qy: np.ndarray, pos: np.ndarray,
                   mouth_open: float) -> None:
        """Where output pixels around the parted lips sample the photo's mouth slit, take
        the healed photo instead (frame: the output, qx, qy: ROI inverse map, in place)."""
        k = float(smoothstep(0.005, 0.03, mouth_open))
        if self.slit is None or k <= 0:
            return
        sx0, sy0, smask, healed = self.slit
        x0, y0, x1, y1 = self.roi
        lips = pos[np.r_[L.UPPER_OUTER, L.LOWER_OUTER], :2]
        pad = 0.15 * self.iod
        bx0, by0 = np.floor(lips.min(0) - pad).astype(int)
        bx1, by1 = np.ceil(lips.max(0) + pad).astype(int) + 1
        bx0, by0, bx1, by1 = max(bx0, x0), max(by0, y0), min(bx1, x1), min(by1, y1)
        if bx1 <= bx0 or by1 <= by0:
            return
        mx = qx[by0 - y0:by1 - y0, bx0 - x0:bx1 - x0] + (x0 - sx0)
        my = qy[by0 - y0:by1 - y0, bx0 - x0:bx1 - x0] + (y0 - sy0)
        m = cv2.remap(smask, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0) * k
        if not (m > 1e-3).any():
            return
        hv = cv2.remap(healed, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        sub = frame[by0:by1, bx0:bx1].astype(np.float32)
        frame[by0:by1, bx0:bx1] = np.clip(sub + (hv - sub) * m[..., None] + 0.5, 0, 255).astype(np.uint8)

    def _face_inverse(self, pos: np.ndarray, z: np.ndarray, qx: np.ndarray, qy: np.ndarray) -> tuple[np.ndarray, int]:
        """Overwrite the inverse map (qx, qy: (rh, rw) ROI coordinates, in place) over the
        face with the exact inverse of the deformed face mesh rendered with a depth test:
        each output pixel takes the output->source affine map of the nearest front-facing
        triangle covering it. A triangle whose orientation flipped has turned its back to
        the viewer (the far side of the nose, the far cheek at the silhouette in a turn; the
        eyeball under a closing lid): it is hidden, and the nearer surface covers its place.
        pos: (468, 2) output px; z: (468,) depth px (smaller = nearer).
        Returns (covered: (rh, rw) bool, number of hidden back-facing triangles)."""
        x0, y0, x1, y1 = self.roi
        dst = pos[self.face_tris]  # (K, 3, 2)
        area = signed_area2(dst) * self.face_sign
        front = np.nonzero(area > MIN_FRONT_AREA)[0]
        dst = dst[front]
        label = rasterize_nearest(dst, z[self.face_tris[front]] + self.face_depth_bias[front, None], self.roi)
        covered = label >= 0
        # Which nearest surface is the mouth's (a triangle with a lip corner), for clipping
        # the drawn interior to where the lips are not hidden (see _mouth_visible).
        # (A video frame's face layer also holds points past the surface mesh's: not lips.)
        ft = self.face_tris[front]
        lip = self.lip_set[np.minimum(ft, len(self.lip_set) - 1)] & (ft < len(self.lip_set))
        self._mouth_view = (label, np.r_[lip.any(1), False])
        # The fold of a turn: rim triangles turned away while the head is turned (on a
        # portrait already turned, on either side). An opening jaw alone folds the chin's
        # rim too, but there the face layer's hard edge over the neck is right, and a
        # feathered one let the field behind show the face's edge as a light line. A face
        # not turned (and a video frame's re-posed face, which sets no turn) keeps the
        # raster's hard edge and skips this work.
        self._silhouette = None
        if abs(getattr(self, "_turn_yaw", 0.0)) > SILHOUETTE_MIN_YAW:
            # Rim triangles squeezed towards folding fade out with the raster's edge.
            squeeze = area[front] / self.face_src_area2[front]
            back = np.nonzero((area <= MIN_FRONT_AREA) & self.rim_tris)[0]
            # Only next to the fold (a rim triangle turned away): a turn stretches the near
            # cheek's rim by as much, and there it is the face's true outline.
            fold = np.zeros(self.n_mesh, bool)
            fold[self.face_tris[back].ravel()] = True
            rim = (self.rim_tris[front] & fold[self.face_tris[front]].any(1)
                   & ((squeeze < RIM_SQUEEZE[1]) | (squeeze > RIM_STRETCH[0])))
            opacity = np.ones(len(front) + 1, np.float32)  # the last: uncovered
            opacity[:-1][rim] = (smoothstep(*RIM_SQUEEZE, squeeze[rim])
                                 * (1 - smoothstep(*RIM_STRETCH, squeeze[rim])))
            opacity[-1] = 0.0
            edge_tris = self.face_tris[np.concatenate([back, front[rim]])]
            self._silhouette = self._silhouette_band(label, opacity, pos[edge_tris], qx, qy)
        yy, xx = np.nonzero(covered)
        # [x y 1] @ M = the source point, per triangle: barycentric weights times corners;
        # taken about the region's corner (ROI coordinates), so float32 keeps it exact.
        M = barycentric_maps(dst - [x0, y0]) @ (self.face_src[front] - [x0, y0])  # (k, 3, 2)
        c = M.reshape(-1, 6).astype(np.float32)[label[yy, xx]]  # (P, 6)
        X, Y = xx.astype(np.float32), yy.astype(np.float32)
        qx[yy, xx] = X * c[:, 0] + Y * c[:, 2] + c[:, 4]
        qy[yy, xx] = X * c[:, 1] + Y * c[:, 3] + c[:, 5]
        return covered, len(self.face_tris) - len(front)

    def _mouth_visible(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """(y1 - y0, x1 - x0) float32 over the frame box: 1 where the drawn mouth interior
        may show, 0 where it may not. Where the nearest surface of the face layer is the
        cheek or the nose (the far corner of a turned mouth) or nothing, it is hidden; and
        it stays MOUTH_RIM_IOD inside the face's opaque outline: a mouth turned so far
        that its far corner reaches the face's silhouette (the far cheek and lip
        foreshortened away) showed the cavity running into the background and past the
        lip line there, with no lip or cheek around it."""
        label, is_mouth = self._mouth_view
        rx0, ry0 = self.roi[:2]
        vis = np.zeros((y1 - y0, x1 - x0), np.float32)
        sx0, sy0 = max(x0 - rx0, 0), max(y0 - ry0, 0)
        sx1, sy1 = min(x1 - rx0, label.shape[1]), min(y1 - ry0, label.shape[0])
        if sx1 <= sx0 or sy1 <= sy0:
            return vis
        sub = vis[sy0 + ry0 - y0:sy1 + ry0 - y0, sx0 + rx0 - x0:sx1 + rx0 - x0]
        sub[:] = is_mouth[label[sy0:sy1, sx0:sx1]]
        if self._silhouette is not None:
            rim = max(1.0, MOUTH_RIM_IOD * self.iod)
            g = int(np.ceil(rim)) + 1  # the outline just outside the box counts too
            ex0, ey0 = max(sx0 - g, 0), max(sy0 - g, 0)
            ex1, ey1 = min(sx1 + g, label.shape[1]), min(sy1 + g, label.shape[0])
            opaque = (label[ey0:ey1, ex0:ex1] >= 0).astype(np.uint8)
            ys, xs, a, _, _ = self._silhouette
            inb = (ys >= ey0) & (ys < ey1) & (xs >= ex0) & (xs < ex1) & (a < 0.99)
            opaque[ys[inb] - ey0, xs[inb] - ex0] = 0
            if not opaque.all():
                dist = cv2.distanceTransform(np.pad(opaque, 1, constant_values=1), cv2.DIST_L2, 3)[1:-1, 1:-1]
                dist = dist[sy0 - ey0:sy1 - ey0, sx0 - ex0:sx1 - ex0]
                sub *= smoothstep(0.5 * rim, rim, dist).astype(np.float32)
        return vis

    def _silhouette_band(self, label: np.ndarray, opacity: np.ndarray, edge: np.ndarray, qx: np.ndarray,
                         qy: np.ndarray) -> tuple | None:
        """Where the face turns away, the edge of the covered pixels is the ragged outline
        of whichever small triangles still face the viewer: a sawtooth of wedges and
        shards against the hair or background. There (around the rim triangles ``edge``,
        (k, 3, 2) output px, that are turned away or fade out) the face layer's opacity
        becomes its per-triangle ``opacity`` ((k_front + 1,) float32, the last for
        uncovered pixels, indexed by ``label``, (rh, rw) int32 ROI labels) blurred by
        SILHOUETTE_SIGMA iod and ramped between SILHOUETTE_RAMP: notches and shards a few
        pixels wide vanish and the outline is feathered over ~3 px, never more opaque than
        the raster. Returns None or (ys, xs: ROI pixels covered yet not fully opaque,
        alpha (n,) float32 there, fqx, fqy: the smooth field's inverse there, i.e. what
        shows behind the face, taken from (qx, qy) before the face overwrites them)."""
        if not len(edge):
            return None
        rh, rw = label.shape
        x0, y0 = self.roi[:2]
        sig = max(1.0, SILHOUETTE_SIGMA * self.iod)
        pad = int(np.ceil(3 * sig)) + 2
        bx0, by0 = np.floor(edge.reshape(-1, 2).min(0) - [x0, y0]).astype(int) - pad
        bx1, by1 = np.ceil(edge.reshape(-1, 2).max(0) - [x0, y0]).astype(int) + pad + 1
        bx0, by0, bx1, by1 = max(bx0, 0), max(by0, 0), min(bx1, rw), min(by1, rh)
        if bx1 - bx0 < 2 or by1 - by0 < 2:
            return None
        lab = label[by0:by1, bx0:bx1]
        # Closing first: a faded triangle inside the face (its neighbours opaque) leaves
        # no crack; only what opens to the outside fades.
        k = 2 * int(round(sig)) + 1
        closed = cv2.morphologyEx(opacity[lab], cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
        # Then the outline's shape is smoothed on a larger scale (SILHOUETTE_SMOOTH_IOD),
        # never beyond the raster: bites a faded rim triangle leaves at the outline (hair
        # cutting into Mona Lisa's far cheekbone) fill, and protruding wedges (the
        # vintage smile's cheekbone) shrink; the closing alone kept both.
        cov = closed * (lab >= 0)
        big = SILHOUETTE_SMOOTH_IOD * self.iod
        if big > sig:
            cov = (smoothstep(0.4, 0.6, cv2.GaussianBlur(cov, (0, 0), big, borderType=cv2.BORDER_REPLICATE))
                   * (lab >= 0)).astype(np.float32)
        soft = cv2.GaussianBlur(cov, (0, 0), sig, borderType=cv2.BORDER_REPLICATE)
        alpha = smoothstep(*SILHOUETTE_RAMP, soft).astype(np.float32)
        # Only next to the fold: elsewhere the raster's edge is the face's outline, which
        # the smooth field behind continues.
        near = np.zeros(lab.shape, np.uint8)
        cv2.fillPoly(near, list(np.round((edge - [x0 + bx0, y0 + by0]) * 4).astype(np.int32)), 1, cv2.LINE_8, 2)
        near = cv2.dilate(near, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pad + 1, 2 * pad + 1)))
        ys, xs = np.nonzero((lab >= 0) & (alpha < 1.0 - 1.0 / 512) & (near > 0))
        if not len(ys):
            return None
        # A barely turned face fades in part (see SILHOUETTE_FULL_YAW).
        fade = float(smoothstep(SILHOUETTE_MIN_YAW, SILHOUETTE_FULL_YAW, abs(getattr(self, "_turn_yaw", 0.0))))
        a = (1.0 - fade * (1.0 - alpha[ys, xs])).astype(np.float32)
        ys, xs = ys + by0, xs + bx0
        return ys, xs, a, qx[ys, xs], qy[ys, xs]

    def _blend_silhouette(self, frame: np.ndarray, d: np.ndarray, lx: np.ndarray, ly: np.ndarray,
                          err: np.ndarray) -> None:
        """Fade the face layer out over what lies behind it (the smooth field's inverse
        over the background plate) on the silhouette band of ``_silhouette_band``; that
        field's inverse error there joins ``err`` ((rh, rw) px) and ``last_stats``."""
        sil = self._silhouette
        if sil is None:
            return
        ys, xs, a, fx, fy = sil
        x0, y0 = self.roi[:2]
        dq = remap_points(d, fx, fy)
        tx, ty = lx[ys, xs], ly[ys, xs]
        e = np.hypot(fx + dq[:, 0] - tx, fy + dq[:, 1] - ty)
        bad = e > REFINE_ABOVE_PX
        if bad.any():
            fx[bad], fy[bad], e[bad] = newton_inverse(d, fx[bad], fy[bad], tx[bad], ty[bad])
        # Where the field is itself folded inside the face (Newton cannot reach its
        # inverse), nothing consistent lies behind: there the face fades out over what
        # lies behind its nearest pixel of the band that has a consistent inverse. (Kept
        # opaque, those pixels drew the face layer's own edge as a light ragged line
        # beside the feathered outline of a turned far cheek.)
        keep = e <= BEHIND_MAX_ERR_PX
        if not keep.any():
            return
        err[ys[keep], xs[keep]] = np.maximum(err[ys[keep], xs[keep]], e[keep])
        self.last_stats["inverse_error_px"] = max(self.last_stats["inverse_error_px"], float(e[keep].max()))
        ox, oy = self.layer_offset
        mx, my = fx[keep] + ox, fy[keep] + oy
        g = remap_points(self.layer_g, mx, my)
        k = remap_points(self.clear[..., None], mx, my)
        behind = np.empty((len(ys), 3), np.float32)
        behind[keep] = g + k * self.plate_f[ys[keep], xs[keep]]
        if not keep.all():
            good = np.stack([xs[keep], ys[keep]], 1)
            _, nearest = cKDTree(good).query(np.stack([xs[~keep], ys[~keep]], 1))
            behind[~keep] = behind[keep][nearest]
        out = frame[ys + y0, xs + x0].astype(np.float32)
        frame[ys + y0, xs + x0] = np.clip(behind + (out - behind) * a[:, None] + 0.5, 0, 255).astype(np.uint8)

    def _refine_inverse(self, d: np.ndarray, qx: np.ndarray, qy: np.ndarray, lx: np.ndarray, ly: np.ndarray,
                        bad: np.ndarray, err: np.ndarray) -> None:
        """Newton steps q <- q - (I + J_d(q))^-1 (q + d(q) - x) for the pixels (``bad``,
        (rh, rw) bool) the fixed-point iteration left off: where the field stretches or
        squeezes strongly (the head's weight tapering to the frame border in a tight
        shot, |J_d| near 1) it converges too slowly. Updates qx, qy and err in place."""
        ys, xs = np.nonzero(bad)
        px, py, e = newton_inverse(d, qx[ys, xs], qy[ys, xs], lx[ys, xs], ly[ys, xs])
        qx[ys, xs], qy[ys, xs] = px, py
        err[ys, xs] = e

    def _measure_inverse(self, d: np.ndarray, qx: np.ndarray, qy: np.ndarray, lx: np.ndarray, ly: np.ndarray,
                         covered: np.ndarray, hidden: int) -> np.ndarray:
        """The frame's inverse-consistency, kept in ``last_stats``: for every output pixel
        of the moving region, how far its source point q lands from it when mapped forward
        (the face mesh's own affine maps are exact, so there it is rounding; elsewhere
        |q + d(q) - x| with d the smooth field, bilinear between pixels as in the
        inversion), and how many triangles folded (changed orientation) while visible:
        face triangles are drawn only facing the viewer, so these are triangles of the
        smooth field between the face mesh, its rings and the frame border.
        d: (rh, rw, 2) forward displacement; qx, qy: its inverse, lx, ly: the output grid
        (ROI coordinates); covered: (rh, rw) bool, the face's pixels.
        Returns the (rh, rw) error map, px."""
        x0, y0, _, _ = self.roi
        dq = cv2.remap(d, qx, qy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        err = np.hypot(qx + dq[..., 0] - lx, qy + dq[..., 1] - ly)
        err[covered] = 0.0
        bad = err > REFINE_ABOVE_PX
        if bad.any():
            self._refine_inverse(d, qx, qy, lx, ly, bad, err)
        if self.region_rect is not None:  # outside it the output is the input's own pixels
            rx0, ry0, rx1, ry1 = self.region_rect
            keep = np.zeros_like(covered)
            keep[max(ry0 - y0, 0):max(ry1 - y0, 0), max(rx0 - x0, 0):max(rx1 - x0, 0)] = True
            err[~keep] = 0.0
        # Where the control points of the smooth field land (sampled from d: the face's
        # outline where the field follows it; where the face layer moves out over the
        # field, the face covers it and the field itself does not fold).
        cp = (self.ctrl_pts - [x0, y0]).astype(np.float32)
        dc = cv2.remap(d, cp[:, 0:1], cp[:, 1:2], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                       borderValue=0)[:, 0]
        t = (self.ctrl_pts + dc)[self.band_tris]
        area = signed_area2(t) * self.band_sign
        self.last_stats = {"inverse_error_px": float(err.max()) if err.size else 0.0,
                           "folded_triangles": int((area <= 0).sum()), "hidden_triangles": int(hidden)}
        return err

    # ------------------------------------------------------------------ regions
    def region_box(self, region: str) -> tuple[int, int, int, int]:
        """(x, y, w, h) pixels of a named region ('face', 'mouth', 'eyes', 'head')."""
        lm, s = self.verts, self.iod
        h, w = self.image.shape[:2]
        if region == "head":
            x0, y0, x1, y1 = self.roi
            return x0, y0, x1 - x0, y1 - y0
        if region == "mouth":
            p = lm[np.r_[L.UPPER_OUTER, L.LOWER_OUTER], :2]
            pad = (0.3, 0.2, 0.3, 0.45)  # left, top, right, bottom in iod (room for the jaw)
        elif region == "eyes":
            p = lm[np.r_[L.EYE_L_UPPER2, L.EYE_R_UPPER2, L.EYE_L_LOWER0, L.EYE_R_LOWER0, BROW_L.ravel(),
                         BROW_R.ravel()], :2]
            pad = (0.2, 0.25, 0.2, 0.2)
        elif region == "face":
            p = lm[L.FACE_OVAL, :2]
            pad = (0.12, 0.1, 0.12, 0.3)
        else:
            raise ValueError(f"unknown region {region!r}")
        x0 = max(0, int(np.floor(p[:, 0].min() - pad[0] * s)))
        y0 = max(0, int(np.floor(p[:, 1].min() - pad[1] * s)))
        x1 = min(w, int(np.ceil(p[:, 0].max() + pad[2] * s)))
        y1 = min(h, int(np.ceil(p[:, 1].max() + pad[3] * s)))
        return x0, y0, x1 - x0, y1 - y0

    def set_region(self, region: str | None = None, box: tuple[int, int, int, int] | None = None) -> None:
        """Limit all motion to a region: a name (see ``region_box``) or a box (x, y, w, h)
        in pixels. Inside, motion fades out towards the box edge; every pixel outside the
        box is the input's own. None, None: the whole frame may move (the default)."""
        self.region = region
        if region is None and box is None:
            self.region_rect = None
            self.region_vmask = None
            self.w_roi_eff = self.w_roi
            return
        if box is None:
            box = self.region_box(region)
        h, w = self.image.shape[:2]
        bx, by, bw, bh = (int(round(v)) for v in box)
        x0, y0, x1, y1 = max(0, bx), max(0, by), min(w, bx + bw), min(h, by + bh)
        self.region_rect = (x0, y0, max(x0, x1), max(y0, y1))
        if region == "head":  # the head's own falloff already ends at its box
            self.region_vmask = np.ones(L.N_SURFACE)
            self.w_roi_eff = self.w_roi
            return
        feather = max(1.0, min(0.2 * self.iod, 0.3 * max(1, min(x1 - x0, y1 - y0))))

        def inside(x, y):  # 0 at the box edge (and outside) .. 1 deeper than ``feather``
            dist = np.minimum(np.minimum(x - x0, x1 - 1 - x), np.minimum(y - y0, y1 - 1 - y))
            return smoothstep(0.0, feather, dist)

        v2 = self.verts[:, :2]
        self.region_vmask = inside(v2[:, 0], v2[:, 1])
        self.w_roi_eff = np.ascontiguousarray(self.w_roi * inside(self.gx, self.gy))

    def pose_scale(self, yaw: float, pitch: float, roll: float) -> float:
        """Factor (<= 1) to shrink a head pose by so the warp stays invertible: where the
        head weight must taper to 0 at the frame border (a crown near the edge), the
        rigid displacement times the taper's slope must stay under POSE_MAX_STRETCH, or
        the fixed-point inverse diverges and the hair there zigzags."""
        wr = self.w_roi_eff
        if getattr(self, "_taper_of", None) is not wr:
            h, w = self.image.shape[:2]
            wy, wx = np.gradient(wr)
            edge = np.minimum(np.minimum(self.gx, w - 1 - self.gx), np.minimum(self.gy, h - 1 - self.gy))
            sel = (np.hypot(wx, wy) > 0.25 / self.iod) & (edge < HEAD_BORDER_TAPER * min(h, w) + 2)
            self._taper = (wx[sel], wy[sel], wr[sel], self.gx[sel], self.gy[sel])
            self._taper_of = wr
        wx, wy, w, gx, gy = self._taper
        if not len(w) or not (yaw or pitch or roll):
            return 1.0
        R = rotation(yaw, pitch, roll)
        p = self.pivot
        A = R[:2, :2] - np.eye(2)
        b = -A @ p[:2] + R[:2, 2] * (self.z_plane - p[2])
        rx = A[0, 0] * gx + A[0, 1] * gy + b[0]
        ry = A[1, 0] * gx + A[1, 1] * gy + b[1]
        # Row sums of |J| bound the fixed-point contraction factor; J is linear in (A, b).
        j = np.maximum(np.abs(rx * wx + w * A[0, 0]) + np.abs(rx * wy + w * A[0, 1]),
                       np.abs(ry * wx + w * A[1, 0]) + np.abs(ry * wy + w * A[1, 1])).max()
        return float(min(1.0, POSE_MAX_STRETCH / max(j, 1e-9)))

    # ------------------------------------------------------------------ gaze, body
    def _apply_gaze(self, frame: np.ndarray, pos: np.ndarray, gaze_yaw: float, gaze_pitch: float) -> None:
        """Turn the eyes: shift what is inside each open eye (iris, pupil, highlights) by
        the eyeball's rotation, fading to no shift at the lids and corners."""
        shift = EYEBALL_R * self.iod * (np.sin(gaze_yaw) * self.ex + 0.6 * np.sin(gaze_pitch) * self.ey)
        if np.hypot(*shift) < 0.05:
            return
        for u0, l0 in ((L.EYE_L_UPPER0, L.EYE_L_LOWER0), (L.EYE_R_UPPER0, L.EYE_R_LOWER0)):
            poly = np.concatenate([pos[u0], pos[l0][::-1]])
            crop = polygon_crop(poly, frame.shape, 2, (4, 3), value=255, dtype=np.uint8, line_type=cv2.LINE_8)
            if crop is None:
                continue
            mask, (x0, y0, x1, y1) = crop
            dist = cv2.distanceTransform(mask, cv2.DIST_L2, 3)
            if dist.max() < 1.0:
                continue  # a closed eye
            m = smoothstep(0.0, max(1.0, 0.45 * float(dist.max())), dist)
            yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
            # Python floats keep the maps float32 (a numpy float64 scalar would promote them
            # under numpy 2, and cv2.remap takes float32 maps only).
            sub = cv2.remap(frame, xx - m * float(shift[0]), yy - m * float(shift[1]), cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)
            sel = mask > 0
            frame[y0:y1, x0:x1][sel] = sub[sel]

    def body_shift(self, A: np.ndarray, b: np.ndarray, breath: float) -> np.ndarray:
        """(2,) px the body moves: a share of the head's sway plus the breathing rise."""
        if self.body_box is None or self.region_rect is not None:
            return np.zeros(2)
        return TORSO_FOLLOW * (A @ self.head_top + b) - BREATH_RISE * self.iod * breath * self.ey

    # ------------------------------------------------------------------ per frame
    def render_frame(self, track, i: int) -> np.ndarray:
        """Frame ``i`` of a MotionTrack."""
        return self.render(track.mouth_open[i], track.mouth_wide[i], track.blink[i], track.head_yaw[i],
                           track.head_pitch[i], track.head_roll[i], track.mouth_round[i], track.lip_tuck[i],
                           brow_up=track.brow_up[i], brow_inner=track.brow_inner[i],
                           brow_squeeze=track.brow_squeeze[i], eye_squint=track.eye_squint[i],
                           smile=track.smile[i], cheek=track.cheek[i], gaze_yaw=track.gaze_yaw[i],
                           gaze_pitch=track.gaze_pitch[i], breath=track.breath[i], jaw_open=track.jaw_open[i])

    def _forward_field(self, ctl: tuple, breath: float, expr: dict):
        """The frame's forward model. ctl: (mouth_open, mouth_wide, blink, yaw, pitch, roll,
        mouth_round, lip_tuck). Returns d ((rh, rw, 2) float32 px: source pixel x of the
        region of interest lands at x + d(x)), the face mesh's output positions pos
        ((468, 2) px) and depths z ((468,) px), the rigid affine (A, b) and the body's
        shift tb ((2,) px)."""
        pos, z, A, b, expr_part = self._vertex_state(*ctl, **expr)
        v2 = self.verts[:, :2]
        rigid_v = v2 @ A.T + b
        res = np.zeros((self.n_pts, 2), np.float32)
        # The surroundings follow the head's pose and parallax, and the face's outline
        # where an expression draws it in (else a sliver of the photo's skin would show
        # outside it); where the outline pushes out (an opening jaw) the face layer is
        # drawn over them: the chin slides over the neck instead of squeezing it, which
        # folded against a near frame border.
        outward = np.maximum((expr_part * self.outline_normal).sum(1), 0.0)
        follow = pos - outward[:, None] * self.outline_normal
        res[:self.n_mesh] = ((follow - v2) - self.w_verts[:, None] * rigid_v) * self.res_share[:, None]
        res[self.n_mesh:self.n_mesh + len(self.ring_src)] = self.ring_share[:, None] * res[self.ring_src]
        rh, rw = self.roi_shape
        d = np.asarray(self.B @ res).reshape(rh, rw, 2)
        wr, wgx, wgy = self._weighted_grid()
        d[..., 0] += A[0, 0] * wgx + A[0, 1] * wgy + b[0] * wr
        d[..., 1] += A[1, 0] * wgx + A[1, 1] * wgy + b[1] * wr
        tb = self.body_shift(A, b, breath)
        if np.abs(tb).max() > 0.01:
            d[..., 0] += self.w_body_roi * tb[0]
            d[..., 1] += self.w_body_roi * tb[1]
            pos = pos + self.w_body_verts[:, None] * tb[None, :]  # the face layer and the mouth see it too
        return d, pos, z, A, b, tb

    def _weighted_grid(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(w, w * x, w * y) over the region of interest: the head's rigid displacement
        w (A x + b) is then three multiply-adds per component."""
        wr = self.w_roi_eff
        if getattr(self, "_wgrid_of", None) is not wr:
            self._wgrid = (wr, wr * self.gx, wr * self.gy)
            self._wgrid_of = wr
        return self._wgrid

    def _border_squeeze(self, d: np.ndarray) -> float:
        """Smallest det(I + J_d) (1: no squeeze, <= 0: a fold) on a sparse grid over the
        band next to the frame border where the field must taper to stillness."""
        if getattr(self, "_squeeze_at", None) is None:
            h, w = self.image.shape[:2]
            rh, rw = self.roi_shape
            yy, xx = np.mgrid[1:rh - 1:SQUEEZE_GRID, 1:rw - 1:SQUEEZE_GRID]
            gx, gy = xx + self.roi[0], yy + self.roi[1]
            edge = np.minimum(np.minimum(gx, w - 1 - gx), np.minimum(gy, h - 1 - gy))
            sel = edge < HEAD_BORDER_TAPER * min(h, w) + 2
            self._squeeze_at = (yy[sel], xx[sel])
        yy, xx = self._squeeze_at
        if not len(yy):
            return 1.0
        jx = (d[yy, xx + 1] - d[yy, xx - 1]) * 0.5
        jy = (d[yy + 1, xx] - d[yy - 1, xx]) * 0.5
        return float(((1 + jx[:, 0]) * (1 + jy[:, 1]) - jy[:, 0] * jx[:, 1]).min())

    def render(self, mouth_open=0.0, mouth_wide=0.0, blink=0.0, yaw=0.0, pitch=0.0, roll=0.0,
               mouth_round=0.0, lip_tuck=0.0, *, gaze_yaw=0.0, gaze_pitch=0.0, breath=0.0, **expr) -> np.ndarray:
        """One (H, W, 3) uint8 RGB frame for the given controls (units as in MotionTrack;
        expr: brow_up, brow_inner, brow_squeeze, eye_squint, smile, cheek)."""
        k = self.pose_scale(yaw, pitch, roll)
        ctl = (mouth_open, mouth_wide, blink, k * yaw, k * pitch, k * roll, mouth_round, lip_tuck)
        d, pos, z, A, b, tb = self._forward_field(ctl, breath, expr)
        squeeze = self._border_squeeze(d)
        if squeeze < MIN_BORDER_DET and (yaw or pitch or roll):
            # Squeezed towards the fold at the still frame border (the chin of a tight
            # shot nodding down, jaw and parallax on top of the rigid motion that
            # pose_scale bounds): shrink the pose until the squeeze is bearable; the
            # squeeze grows about linearly with the pose.
            k *= max(0.2, (1 - MIN_BORDER_DET) / max(1 - squeeze, 1e-6))
            ctl = (mouth_open, mouth_wide, blink, k * yaw, k * pitch, k * roll, mouth_round, lip_tuck)
            d, pos, z, A, b, tb = self._forward_field(ctl, breath, expr)
        body = bool(np.abs(tb).max() > 0.01)
        x0, y0, x1, y1 = self.roi
        # Invert x = q + d(q) by q <- x - d(q): d is sampled at q (ROI coordinates).
        lx, ly = self.gx - x0, self.gy - y0
        qx, qy = lx - d[..., 0], ly - d[..., 1]
        for _ in range(INVERT_ITERS - 1):
            dq = cv2.remap(d, qx, qy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            qx, qy = lx - dq[..., 0], ly - dq[..., 1]
        # The face itself: exact, depth-tested (folds hidden); the rest keeps the smooth
        # field's inverse, whose residual |q + d(q) - x| is its inverse error.
        self._turn_yaw = float(ctl[3])
        covered, hidden = self._face_inverse(pos, z, qx, qy)
        err = self._measure_inverse(d, qx, qy, lx, ly, covered, hidden)
        self.last_map = (qx, qy, covered, pos, err)  # the inverse map (ROI coordinates), for checks
        frame = self.image.copy()
        if body:
            # Outside the head's box the body moves by its weight times the shift; the
            # shift is a pixel or two, so one step inverts it.
            for sx0, sy0, sx1, sy1, sgx, sgy, wb in self.body_strips:
                frame[sy0:sy1, sx0:sx1] = cv2.remap(self.image, sgx - wb * np.float32(tb[0]),
                                                    sgy - wb * np.float32(tb[1]), cv2.INTER_LINEAR,
                                                    borderMode=cv2.BORDER_REPLICATE)
        frame[y0:y1, x0:x1] = self._composite_plate(qx, qy)
        # The face layer is finished (squeezed skin anti-aliased, the slit healed) before its
        # turned outline fades over what lies behind: run the other way round, both resampled
        # the face over the faded band and drew its outline back as a light ragged seam down
        # a squeezed far cheek (photo_bw_woman_smile from eye to jaw).
        self._antialias_squeezed(frame, qx, qy, pos)
        self._heal_slit(frame, qx, qy, pos, mouth_open)
        self._blend_silhouette(frame, d, lx, ly, err)
        jaw = expr.get("jaw_open")
        draw_mouth(frame, pos[L.UPPER_INNER], pos[L.LOWER_INNER], self.palette, self.iod, mouth_round,
                   teeth=self.teeth_pose(pos, mouth_open if jaw is None else jaw), visible=self._mouth_visible)
        if blink < 0.5 and (gaze_yaw or gaze_pitch):
            self._apply_gaze(frame, pos, gaze_yaw, gaze_pitch)
        if blink > 0.15:
            self._paint_lids(frame, pos, blink)
        if self.region_rect is not None:
            rx0, ry0, rx1, ry1 = self.region_rect
            out = self.image.copy()
            out[ry0:ry1, rx0:rx1] = frame[ry0:ry1, rx0:rx1]
            return out
        return frame
