"""A depth-tested triangle rasteriser in numpy: which triangle of a deformed mesh is the
nearest surface at each pixel, and the exact output->source affine map of that triangle.

Vectorised over all triangles at once (every pixel of each triangle's bounding box is a
candidate; a barycentric test keeps those whose centre lies inside; ``np.minimum.at`` on
a (depth, triangle) key keeps the nearest), so a face mesh of ~900 triangles costs about
as much as a few ``cv2.remap`` calls instead of a Python loop over triangles.
"""
from __future__ import annotations

import numpy as np

# Barycentric tolerance: a pixel centre on an edge shared by two triangles belongs to
# both (then depth decides), so float rounding opens no crack between them.
INSIDE_EPS = 1e-5
DEPTH_LEVELS = 1 << 20  # depth quantisation steps over the mesh's depth range
_TRI_BITS = 16  # low bits of the key hold the triangle index


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
    tx0 = np.clip(np.ceil(dst[..., 0].min(1)), x0, x1).astype(np.int32)
    tx1 = np.clip(np.floor(dst[..., 0].max(1)) + 1, x0, x1).astype(np.int32)
    ty0 = np.clip(np.ceil(dst[..., 1].min(1)), y0, y1).astype(np.int32)
    ty1 = np.clip(np.floor(dst[..., 1].max(1)) + 1, y0, y1).astype(np.int32)
    tw, th = tx1 - tx0, ty1 - ty0
    n = np.where((tw > 0) & (th > 0), tw * th, 0)
    total = int(n.sum())
    if total == 0:
        return label.reshape(bh, bw)
    # Per triangle, the planes of b0, b1 and the quantised depth over (dx, dy, 1) from its
    # box's corner: small numbers, so float32 keeps them exact enough.
    inv = barycentric_maps(dst.astype(np.float64))  # (K, 3, 3)
    ox, oy = tx0.astype(np.float64), ty0.astype(np.float64)
    zmin, zmax = float(depth.min()), float(depth.max())
    zplane = np.einsum("kij,kj->ki", inv, (depth - zmin) * ((DEPTH_LEVELS - 1) / max(zmax - zmin, 1e-9)))
    coef = np.empty((k, 9), np.float32)
    for j, plane in enumerate((inv[:, :, 0], inv[:, :, 1], zplane)):
        coef[:, 3 * j] = plane[:, 0]
        coef[:, 3 * j + 1] = plane[:, 1]
        coef[:, 3 * j + 2] = plane[:, 0] * ox + plane[:, 1] * oy + plane[:, 2]
    tri = np.repeat(np.arange(k, dtype=np.int32), n)
    local = np.arange(total, dtype=np.int32) - np.repeat((np.cumsum(n) - n).astype(np.int32), n)
    dy, dx = np.divmod(local, tw[tri])
    c = coef[tri]
    dxf, dyf = dx.astype(np.float32), dy.astype(np.float32)
    b0 = c[:, 0] * dxf + c[:, 1] * dyf + c[:, 2]
    b1 = c[:, 3] * dxf + c[:, 4] * dyf + c[:, 5]
    ok = (b0 >= -INSIDE_EPS) & (b1 >= -INSIDE_EPS) & (b0 + b1 <= 1 + INSIDE_EPS)
    idx = np.nonzero(ok)[0]
    if not len(idx):
        return label.reshape(bh, bw)
    t = tri[idx]
    zq = (c[idx, 6] * dxf[idx] + c[idx, 7] * dyf[idx] + c[idx, 8]).astype(np.int64)
    key = (np.clip(zq, 0, DEPTH_LEVELS - 1) << _TRI_BITS) | t
    best = np.full(bh * bw, np.iinfo(np.int64).max, np.int64)
    np.minimum.at(best, (ty0[t] + dy[idx] - y0) * bw + (tx0[t] + dx[idx] - x0), key)
    hit = best != np.iinfo(np.int64).max
    label[hit] = (best[hit] & ((1 << _TRI_BITS) - 1)).astype(np.int32)
    return label.reshape(bh, bw)
