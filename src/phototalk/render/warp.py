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

import cv2
import numpy as np
from scipy import sparse
from scipy.spatial import Delaunay

from ..face import landmarks as L
from ..face.analyze import FaceRig
from .lids import lash_color, lid_color, paint_opacity, paint_shut_lid
from .mouth import MouthPalette, draw_mouth, polygon_crop, smoothstep

RING_SCALES = (1.3, 1.7, 2.3)  # control rings around the face oval (residual 0 there)
HEAD_FULL, HEAD_ZERO = 1.35, 2.2  # elliptic radii where head weight starts to fall / reaches 0
BORDER_STILL, BORDER_TAPER = 0.03, 0.09  # fractions of the short side: no motion within the first, fading in up to the second
# The head's motion fades in further from the border: a head cropped at the frame edge
# (a tight head shot) then spreads the stretch over more hair and keeps most of its
# pose instead of having it cut by pose_scale.
HEAD_BORDER_TAPER = 0.14
INVERT_ITERS = 4  # fixed-point iterations of the displacement inversion
LID_DROP, LOWER_LID_RISE = 1.05, 0.05  # eye heights the lid margins travel in a full blink
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
REGIONS = ("face", "mouth", "eyes", "head")
PERSON_BLUR = 0.08  # iod; blur of the person mask inside the head weight
# Source pixels per output pixel where squeezed skin starts / fully takes a blurred
# sample (sigma SQUEEZE_BLUR px) instead of a point sample.
SQUEEZE_START, SQUEEZE_FULL, SQUEEZE_BLUR = 1.4, 2.5, 1.0
SQUEEZED_AREA = 0.5  # a deformed triangle under this share of its source area is a squeezed sliver
POSE_MAX_STRETCH = 0.75  # largest |d displacement / d x| a head pose may cause at the border taper
# Brow landmarks (image-left, image-right), each outer end to inner end: upper and lower rows.
BROW_L = np.array([[70, 63, 105, 66, 107], [46, 53, 52, 65, 55]])
BROW_R = np.array([[300, 293, 334, 296, 336], [276, 283, 282, 295, 285]])
CHEEK_L, CHEEK_R = 50, 280


def _barycentric_from_triangles(dst: np.ndarray) -> np.ndarray:
    """(K, 3, 3) maps B with [x y 1] @ B = the barycentric weights of the point (x, y)
    in each triangle of dst (K, 3, 2); a closed-form 3x3 inverse (batched LAPACK
    solves of tiny systems cost milliseconds per frame)."""
    x, y = dst[..., 0], dst[..., 1]  # (K, 3)
    # Inverse of D = [[x0 y0 1], [x1 y1 1], [x2 y2 1]] by cofactors.
    c0 = np.stack([y[:, 1] - y[:, 2], x[:, 2] - x[:, 1], x[:, 1] * y[:, 2] - x[:, 2] * y[:, 1]], 1)
    c1 = np.stack([y[:, 2] - y[:, 0], x[:, 0] - x[:, 2], x[:, 2] * y[:, 0] - x[:, 0] * y[:, 2]], 1)
    c2 = np.stack([y[:, 0] - y[:, 1], x[:, 1] - x[:, 0], x[:, 0] * y[:, 1] - x[:, 1] * y[:, 0]], 1)
    det = x[:, 0] * c0[:, 0] + x[:, 1] * c1[:, 0] + x[:, 2] * c2[:, 0]
    return np.stack([c0, c1, c2], 2) / det[:, None, None]  # (K, 3, 3) = D^-1


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """3x3 rotation in image axes (x right, y down, z away from the viewer).
    yaw > 0 turns the nose to the image's right, pitch > 0 tips the chin down,
    roll > 0 tilts clockwise."""
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    ry = np.array([[cy, 0, -sy], [0, 1, 0], [sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return rz @ rx @ ry


class MeshWarpRenderer:
    """Renders frames of one portrait from per-frame controls (see ``MotionTrack``)."""

    def __init__(self, rig: FaceRig):
        self.image = np.ascontiguousarray(rig.image)
        h, w = self.image.shape[:2]
        lm = rig.landmarks.astype(np.float64)
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

        # --- head weight: ellipse around the face oval, shaped by the person mask -------
        rel = oval[:, :2] - c
        a = np.abs(rel @ self.ex).max()
        b = np.abs(rel @ self.ey).max()
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        px, py = xx - c[0], yy - c[1]
        r = np.sqrt(((px * self.ex[0] + py * self.ex[1]) / a) ** 2 + ((px * self.ey[0] + py * self.ey[1]) / b) ** 2)
        geom = 1 - smoothstep(HEAD_FULL, HEAD_ZERO, r)
        sig = max(1.0, 0.08 * s)
        person = cv2.GaussianBlur(rig.person.astype(np.float32), (0, 0), max(1.0, PERSON_BLUR * s))
        face_core = np.zeros((h, w), np.float32)
        cv2.fillPoly(face_core, [np.round(oval[:, :2]).astype(np.int32)], 1.0)
        face_core = cv2.GaussianBlur(cv2.dilate(face_core, np.ones((3, 3), np.uint8), iterations=max(1, int(0.1 * s))),
                                     (0, 0), sig)
        whead = np.maximum(geom * (0.35 + 0.65 * person), np.minimum(face_core * 1.5, 1.0))
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

        # --- barycentric weights of every ROI pixel -------------------------------------
        tri = Delaunay(pts)
        q = np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float64)
        simplex = tri.find_simplex(q)
        ok = simplex >= 0
        T = tri.transform[simplex[ok]]
        bary2 = np.einsum("nij,nj->ni", T[:, :2], q[ok] - T[:, 2])
        bary = np.concatenate([bary2, 1 - bary2.sum(1, keepdims=True)], 1)
        rows = np.repeat(np.nonzero(ok)[0], 3)
        cols = tri.simplices[simplex[ok]].ravel()
        self.B = sparse.csr_matrix((bary.ravel().astype(np.float32), (rows, cols)), shape=(rh * rw, self.n_pts))
        self.roi_shape = (rh, rw)
        # Blinks collapse the eye's triangles, where the fixed-point inversion cannot
        # converge; those triangles are inverted exactly (see _exact_inverse).
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
        # The lips and the jaw stretch strongly around the mouth corners when the mouth
        # opens; there too the fixed-point inverse would saw-tooth, so invert exactly.
        rel = self.verts[:, :2] - (lm[L.UPPER_INNER[0], :2] + lm[L.UPPER_INNER[-1], :2]) / 2
        near_mouth = np.zeros(self.n_pts, bool)
        near_mouth[:self.n_mesh] = np.linalg.norm(rel, axis=1) < 0.75 * self.iod
        self.mouth_tris = simp[near_mouth[simp].any(1) & (simp < self.n_mesh).all(1)]
        # Brows stretch the thin skin band above the lids; invert it exactly too.
        brow_set = np.zeros(self.n_pts, bool)
        brow_set[np.r_[BROW_L.ravel(), BROW_R.ravel(), L.EYE_L_UPPER1, L.EYE_L_UPPER2, L.EYE_R_UPPER1,
                       L.EYE_R_UPPER2]] = True
        margin = np.zeros(self.n_pts, bool)
        margin[np.r_[L.EYE_L_UPPER0, L.EYE_L_LOWER0, L.EYE_R_UPPER0, L.EYE_R_LOWER0]] = True
        self.brow_tris = simp[brow_set[simp].any(1) & (simp < self.n_mesh).all(1) & ~margin[simp].any(1)]
        gap_pts = np.zeros(self.n_pts, bool)
        gap_pts[np.r_[L.UPPER_INNER, L.LOWER_INNER]] = True
        # Triangles spanning the lip gap are painted over by the mouth interior: lowest.
        self.mouth_tri_priority = np.where(gap_pts[self.mouth_tris].all(1), 0, 1)

        self._setup_expressions(lm)
        self.palette = MouthPalette.from_image(self.image, lm)
        self._setup_slit(lm)

        # --- the body: follows the head slightly and breathes ---------------------------
        body = smoothstep(0.3, 0.8, cv2.GaussianBlur(rig.person.astype(np.float32), (0, 0), max(1.0, 0.05 * s)))
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
        self.eyes = []
        for u0, l0, u1, u2 in ((L.EYE_L_UPPER0, L.EYE_L_LOWER0, L.EYE_L_UPPER1, L.EYE_L_UPPER2),
                               (L.EYE_R_UPPER0, L.EYE_R_LOWER0, L.EYE_R_UPPER1, L.EYE_R_UPPER2)):
            gap = np.maximum((lm[l0[1:-1], :2] - lm[u0[1:-1], :2]) @ self.ey, 0.0)  # (7,) px
            self.eyes.append((u0[1:-1], l0[1:-1], u1, u2, gap))
        self.lid_colors = [lid_color(self.image, lm[u1, :2], lm[u2, :2], lm[l0, :2], float(gap.max()), self.ey)
                           for _, l0, u1, u2, gap in self.eyes]
        self.eye_corners = [(L.EYE_L_UPPER0[0], L.EYE_L_UPPER0[-1]), (L.EYE_R_UPPER0[0], L.EYE_R_UPPER0[-1])]
        self.lash_colors = [lash_color(self.image, lm[m, :2], self.ey) for m in (L.EYE_L_UPPER0, L.EYE_R_UPPER0)]
        self._setup_expression_fields(lm)

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
        """Lid skin and a lash line over each closing lid (``render.lids``), from the
        warped crease ring down to the warped margin."""
        opacity = paint_opacity(blink)
        for (u0, _, _, u2, gap), color, lash, (c0, c1) in zip(self.eyes, self.lid_colors, self.lash_colors,
                                                             self.eye_corners):
            margin = np.concatenate([pos[[c0]], pos[u0], pos[[c1]]])
            paint_shut_lid(frame, pos[u2], margin, self.ex, self.ey, float(gap.max()), color, lash, opacity)

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
        off += ((mouth_wide - 0.24 * mouth_round) * self.wide_field)[:, None] * self.ex[None, :]
        # Lips: every column of the lower lip moves so the inner gap becomes the target
        # gap (closing an open source mouth too); the upper lip lifts a little.
        profile = (1 - mouth_round) * self.lip_profile + mouth_round * self.round_profile
        target = mouth_open * s * profile
        up_lift = -0.12 * target
        low = target - self.lip_gap0 + up_lift
        corner_drop = 0.18 * mouth_open * s
        low[[0, -1]] = up_lift[[0, -1]] = corner_drop
        if jaw_open is None or jaw_open == mouth_open:
            jaw_low = low[5]
        else:  # the jaw follows its own (slower) opening; the lower lip makes up the rest
            jt = jaw_open * s * profile[5]
            jaw_low = jt - self.lip_gap0[5] - 0.12 * jt
        jaw = self.jaw_w[:, None] * (jaw_low * ey)[None, :]
        off += np.where(self.lip_set[:, None], 0.0, jaw)
        pout = 0.035 * s * mouth_round * self.round_profile  # (11,) px the outer lip edges bulge
        tuck = 0.045 * s * lip_tuck * self.lip_profile  # (11,) px the lower lip rolls in (thins)
        for r, row in enumerate(L.UPPER_LIP):
            off[row] += (up_lift - pout * r / 3)[:, None] * ey[None, :]
        for r, row in enumerate(L.LOWER_LIP):
            off[row[1:-1]] += (low + (pout - tuck) * r / 3)[1:-1, None] * ey[None, :]
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
        v = self.verts.copy()
        v[:, :2] += self.expression_offsets(mouth_open, mouth_wide, blink, mouth_round, lip_tuck, **expr)
        R = rotation(yaw, pitch, roll)
        p = self.pivot
        moved = (v - p) @ R.T + p
        A = R[:2, :2] - np.eye(2)
        b = -A @ p[:2] + R[:2, 2] * (self.z_plane - p[2])
        pos = moved[:, :2]
        if self.region_vmask is not None:  # outside the region nothing moves
            pos = self.verts[:, :2] + self.region_vmask[:, None] * (pos - self.verts[:, :2])
        return pos, A, b

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

    def _exact_inverse(self, pos: np.ndarray, tris: np.ndarray, priority: np.ndarray,
                       qx: np.ndarray, qy: np.ndarray) -> None:
        """Overwrite the inverse map (qx, qy: ROI coordinates, in place) with the exact
        piecewise-affine inverse over ``tris`` ((K, 3) vertex indices): each deformed
        triangle is rasterised with its index, and its pixels take the triangle's
        output->source affine map. Where triangles overlap, higher ``priority`` ((K,)
        int) wins; flipped or collapsed triangles are hidden surfaces and dropped."""
        x0, y0, x1, y1 = self.roi
        dst = pos[tris]  # (K, 3, 2) output positions
        src = self.verts[:, :2][tris]
        area = np.cross(dst[:, 1] - dst[:, 0], dst[:, 2] - dst[:, 0])
        area0 = np.cross(src[:, 1] - src[:, 0], src[:, 2] - src[:, 0])
        keep = (area * np.sign(area0) > 0.25)  # px², same orientation as in the source
        dst, src, area, priority = dst[keep], src[keep], np.abs(area[keep]), priority[keep]
        squeezed = area < SQUEEZED_AREA * np.abs(area0[keep])
        if not len(dst):
            return
        bx0 = int(max(x0, np.floor(dst[..., 0].min()) - 1))
        by0 = int(max(y0, np.floor(dst[..., 1].min()) - 1))
        bx1 = int(min(x1, np.ceil(dst[..., 0].max()) + 2))
        by1 = int(min(y1, np.ceil(dst[..., 1].max()) + 2))
        if bx1 <= bx0 or by1 <= by0:
            return
        label = np.full((by1 - by0, bx1 - bx0), -1, np.int32)
        pts = np.round((dst - [bx0, by0]) * 16).astype(np.int32)
        order = np.lexsort((-area, priority))  # lids last; among equals, small triangles last
        # Outlines first: pixels on shared edges belong to some triangle, then the
        # interiors overwrite them; no pixel falls through a crack between triangles.
        for k in order:
            cv2.polylines(label, [pts[k]], True, int(k), thickness=1, lineType=cv2.LINE_8, shift=4)
        for k in order:
            cv2.fillConvexPoly(label, pts[k], int(k), lineType=cv2.LINE_8, shift=4)
        # Per triangle: two columns of [x y 1] -> barycentric weights, its source corners,
        # and the lowest weight allowed (0 for squeezed ones, see below).
        inv = _barycentric_from_triangles(dst)
        floor = np.where(squeezed, 0.0, -np.inf)[:, None]
        coef = np.concatenate([inv[:, :, :2].reshape(-1, 6), src.reshape(-1, 6), floor], 1).astype(np.float32)
        yy, xx = np.nonzero(label >= 0)
        c = coef[label[yy, xx]]  # (P, 13)
        X, Y = xx + bx0, yy + by0
        xf, yf = X.astype(np.float32), Y.astype(np.float32)
        b0 = xf * c[:, 0] + yf * c[:, 2] + c[:, 4]
        b1 = xf * c[:, 1] + yf * c[:, 3] + c[:, 5]
        b2 = 1 - b0 - b1
        # Pixels on a triangle's rim (outlines, rounding) may lie just outside it. A normal
        # triangle's map extends smoothly past its edge; a squeezed sliver's map magnifies,
        # so extrapolating it lands pixels far off (dotted lines): clamp onto the triangle.
        lo = c[:, 12]
        b0, b1, b2 = np.maximum(b0, lo), np.maximum(b1, lo), np.maximum(b2, lo)
        norm = 1.0 / np.maximum(b0 + b1 + b2, 1e-6)
        sx = (b0 * c[:, 6] + b1 * c[:, 8] + b2 * c[:, 10]) * norm
        sy = (b0 * c[:, 7] + b1 * c[:, 9] + b2 * c[:, 11]) * norm
        qx[Y - y0, X - x0] = sx - x0
        qy[Y - y0, X - x0] = sy - y0

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
            sub = cv2.remap(frame, xx - m * shift[0], yy - m * shift[1], cv2.INTER_LINEAR,
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

    def render(self, mouth_open=0.0, mouth_wide=0.0, blink=0.0, yaw=0.0, pitch=0.0, roll=0.0,
               mouth_round=0.0, lip_tuck=0.0, *, gaze_yaw=0.0, gaze_pitch=0.0, breath=0.0, **expr) -> np.ndarray:
        """One (H, W, 3) uint8 RGB frame for the given controls (units as in MotionTrack;
        expr: brow_up, brow_inner, brow_squeeze, eye_squint, smile, cheek)."""
        k = self.pose_scale(yaw, pitch, roll)
        yaw, pitch, roll = k * yaw, k * pitch, k * roll
        pos, A, b = self.vertex_positions(mouth_open, mouth_wide, blink, yaw, pitch, roll, mouth_round, lip_tuck,
                                          **expr)
        v2 = self.verts[:, :2]
        rigid_v = v2 @ A.T + b
        res = np.zeros((self.n_pts, 2), np.float32)
        res[:self.n_mesh] = (pos - v2) - self.w_verts[:, None] * rigid_v
        rh, rw = self.roi_shape
        d = np.asarray(self.B @ res).reshape(rh, rw, 2)
        wr = self.w_roi_eff
        d[..., 0] += wr * (A[0, 0] * self.gx + A[0, 1] * self.gy + b[0])
        d[..., 1] += wr * (A[1, 0] * self.gx + A[1, 1] * self.gy + b[1])
        tb = self.body_shift(A, b, breath)
        body = bool(np.abs(tb).max() > 0.01)
        if body:
            d[..., 0] += self.w_body_roi * tb[0]
            d[..., 1] += self.w_body_roi * tb[1]
            pos = pos + self.w_body_verts[:, None] * tb[None, :]  # the exact inverses and the mouth see it too
        x0, y0, x1, y1 = self.roi
        # Invert x = q + d(q) by q <- x - d(q): d is sampled at q (ROI coordinates).
        lx, ly = self.gx - x0, self.gy - y0
        qx, qy = lx - d[..., 0], ly - d[..., 1]
        for _ in range(INVERT_ITERS - 1):
            dq = cv2.remap(d, qx, qy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            qx, qy = lx - dq[..., 0], ly - dq[..., 1]
        # Strong brow or lid moves stretch thin skin bands more than the fixed-point
        # inverse can follow (it needs |grad d| well under 1): invert those exactly.
        if max(abs(expr.get("brow_up", 0.0)), expr.get("brow_inner", 0.0), expr.get("brow_squeeze", 0.0)) > 0.3:
            self._exact_inverse(pos, self.brow_tris, np.zeros(len(self.brow_tris), int), qx, qy)
        if blink > 0.02 or abs(expr.get("eye_squint", 0.0)) > 0.3:
            self._exact_inverse(pos, self.eye_tris, self.eye_tri_priority, qx, qy)
        self._exact_inverse(pos, self.mouth_tris, self.mouth_tri_priority, qx, qy)
        frame = self.image.copy()
        if body:
            # Outside the head's box the body moves by its weight times the shift; the
            # shift is a pixel or two, so one step inverts it.
            for sx0, sy0, sx1, sy1, sgx, sgy, wb in self.body_strips:
                frame[sy0:sy1, sx0:sx1] = cv2.remap(self.image, sgx - wb * np.float32(tb[0]),
                                                    sgy - wb * np.float32(tb[1]), cv2.INTER_LINEAR,
                                                    borderMode=cv2.BORDER_REPLICATE)
        frame[y0:y1, x0:x1] = cv2.remap(self.image, qx + x0, qy + y0, cv2.INTER_LINEAR,
                                        borderMode=cv2.BORDER_REPLICATE)
        self._antialias_squeezed(frame, qx, qy, pos)
        self._heal_slit(frame, qx, qy, pos, mouth_open)
        draw_mouth(frame, pos[L.UPPER_INNER], pos[L.LOWER_INNER], self.palette, self.iod, mouth_round)
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
