"""A depth-tested triangle rasteriser in numpy: which triangle of a deformed mesh is the
nearest surface at each pixel, and the exact output->source affine map of that triangle.

Vectorised over all triangles at once (each triangle's rows, each row's span of pixel
centres inside it from the edges, then ``np.minimum.at`` on a (depth, triangle) key keeps
the nearest), so a face mesh of ~900 triangles costs about as much as a few
``cv2.remap`` calls instead of a Python loop over triangles.
"""
from __future__ import annotations

import cv2
import numpy as np

# px of tolerance: a pixel centre on an edge shared by two triangles belongs to both
# (then depth decides), so float rounding opens no crack between them.
INSIDE_PX = 1e-4
DEPTH_LEVELS = 1 << 20  # depth quantisation steps over the mesh's depth range
_TRI_BITS = 16  # low bits of the key hold the triangle index


def signed_area2(tris: np.ndarray) -> np.ndarray:
    """(K,) twice the signed area of each triangle of ``tris`` ((K, 3, 2)) in px²: its sign
    is the triangle's orientation (np.cross on 2-D vectors is deprecated in numpy 2)."""
    e1, e2 = tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0]
    return e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]


def barycentric_maps(dst: np.ndarray) -> np.ndarray:
    """(K, 3, 3) maps B with [x y 1] @ B = the barycentric weights of (x, y) in each
    triangle of dst ((K, 3, 2) px); closed-form cofactor inverse (batched LAPACK solves
    of tiny systems cost milliseconds per frame)."""
    x, y = dst[..., 0], dst[..., 1]  # (K, 3)
    c0 = np.stack([y[:, 1] - y[:, 2], x[:, 2] - x[:, 1], x[:, 1] * y[:, 2] - x[:, 2] * y[:, 1]], 1)
    c1 = np.stack([y[:, 2] - y[:, 0], x[:, 0] - x[:, 2], x[:, 2] * y[:, 0] - x[:, 0] * y[:, 2]], 1)
    c2 = np.stack([y[:, 0] - y[:, 1], x[:, 1] - x[:, 0], x[:, 0] * y[:, 1] - x[:, 1] * y[:, 0]], 1)
    det = x[:, 0] * c0[:, 0] + x[:, 1] * c1[:, 0] + x[:, 2] * c2[:, 0]
    return np.stack([c0, c1, c2], 2) / det[:, None, None]  # (K, 3, 3) = D^-1


def rasterize_nearest(dst: np.ndarray, depth: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Label image of the nearest triangle at every pixel centre of ``box``.

    dst: (K, 3, 2) float output corners (px; pixel (i, j) has its centre at x=j, y=i).
    depth: (K, 3) float corner depths, smaller = nearer; interpolated across each
    triangle, so intersecting or overlapping surfaces are resolved per pixel.
    box: (x0, y0, x1, y1) pixels to fill (x1, y1 exclusive).
    Returns (y1 - y0, x1 - x0) int32: the winning triangle's index, -1 where none covers.
    """
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    label = np.full(bh * bw, -1, np.int32)
    k = len(dst)
    if k == 0 or bw <= 0 or bh <= 0:
        return label.reshape(bh, bw)
    assert k < (1 << _TRI_BITS)
    xs, ys = dst[..., 0].astype(np.float64), dst[..., 1].astype(np.float64)
    ty0 = np.clip(np.ceil(ys.min(1) - INSIDE_PX), y0, y1).astype(np.int64)
    ty1 = np.clip(np.floor(ys.max(1) + INSIDE_PX) + 1, y0, y1).astype(np.int64)
    nrows = np.maximum(ty1 - ty0, 0)
    R = int(nrows.sum())
    if R == 0:
        return label.reshape(bh, bw)
    rt = np.repeat(np.arange(k), nrows)
    ry = (ty0[rt] + np.arange(R) - np.repeat(np.cumsum(nrows) - nrows, nrows)).astype(np.float64)
    # Each row's span inside the triangle, from its edges; every edge's end points in one
    # order (by y, then x), so an edge two triangles share gives both the same x.
    xl, xr = np.full(R, np.inf), np.full(R, -np.inf)
    for a, b in ((0, 1), (1, 2), (2, 0)):
        ya, yb, xa, xb = ys[:, a], ys[:, b], xs[:, a], xs[:, b]
        swap = (yb < ya) | ((yb == ya) & (xb < xa))
        ya, yb = np.where(swap, yb, ya), np.where(swap, ya, yb)
        xa, xb = np.where(swap, xb, xa), np.where(swap, xa, xb)
        dy = yb - ya
        Ya, Yb, Xa, Xb, D = ya[rt], yb[rt], xa[rt], xb[rt], dy[rt]
        on = (D > 0) & (ry >= Ya - INSIDE_PX) & (ry <= Yb + INSIDE_PX)
        t = np.clip((ry - Ya) / np.where(D > 0, D, 1.0), 0.0, 1.0)
        x = Xa + t * (Xb - Xa)
        xl = np.where(on, np.minimum(xl, x), xl)
        xr = np.where(on, np.maximum(xr, x), xr)
    cx0 = np.clip(np.ceil(xl - INSIDE_PX), x0, x1).astype(np.int64)
    cx1 = np.clip(np.floor(xr + INSIDE_PX) + 1, x0, x1).astype(np.int64)
    npx = np.where(np.isfinite(xl) & np.isfinite(xr), np.maximum(cx1 - cx0, 0), 0)
    P = int(npx.sum())
    if P == 0:
        return label.reshape(bh, bw)
    row = np.repeat(np.arange(R), npx)
    px = cx0[row] + np.arange(P) - np.repeat(np.cumsum(npx) - npx, npx)
    py = ry.astype(np.int64)[row]
    tri = rt[row]
    inv = barycentric_maps(dst.astype(np.float64))  # depth as a plane over x, y per triangle
    zmin, zmax = float(depth.min()), float(depth.max())
    zp = np.einsum("kij,kj->ki", inv, (depth - zmin) * ((DEPTH_LEVELS - 1) / max(zmax - zmin, 1e-9)))
    zq = (zp[tri, 0] * px + zp[tri, 1] * py + zp[tri, 2]).astype(np.int64)
    key = (np.clip(zq, 0, DEPTH_LEVELS - 1) << _TRI_BITS) | tri
    best = np.full(bh * bw, np.iinfo(np.int64).max, np.int64)
    np.minimum.at(best, (py - y0) * bw + (px - x0), key)
    hit = best != np.iinfo(np.int64).max
    label[hit] = (best[hit] & ((1 << _TRI_BITS) - 1)).astype(np.int32)
    return label.reshape(bh, bw)


def polygon_crop(poly: np.ndarray, shape, pad: int, min_size: tuple[int, int] = (2, 2), *,
                 value=1.0, dtype=np.float32, line_type=cv2.LINE_AA):
    """Rasterise ``poly`` ((K, 2) float pixel x, y; quarter-pixel precision) into its
    bounding box grown by ``pad`` pixels and clipped to an image of ``shape``.

    Returns (mask, (x0, y0, x1, y1)) with mask (y1 - y0, x1 - x0) of ``dtype`` holding
    ``value`` inside, or None when the clipped box is smaller than min_size (w, h)."""
    h, w = shape[:2]
    x0, y0 = np.floor(poly.min(0)).astype(int) - pad
    x1, y1 = np.ceil(poly.max(0)).astype(int) + pad + 1
    # Python ints: a numpy int64 offset added to a float32 map would make it float64 under
    # numpy 2's promotion rules, which cv2.remap rejects.
    x0, y0, x1, y1 = int(max(x0, 0)), int(max(y0, 0)), int(min(x1, w)), int(min(y1, h))
    if x1 - x0 < min_size[0] or y1 - y0 < min_size[1]:
        return None
    mask = np.zeros((y1 - y0, x1 - x0), dtype)
    cv2.fillPoly(mask, [np.round((poly - [x0, y0]) * 4).astype(np.int32)], value, lineType=line_type, shift=2)
    return mask, (x0, y0, x1, y1)
