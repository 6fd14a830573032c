"""Fused CPU kernels (numba, all cores) for the per-ray work around the ray cast.

Each kernel has a plain-numpy twin in :mod:`envsim.render.renderer` that the tests compare against.
"""

from __future__ import annotations

import numba

# Open3D bundles an older TBB that numba refuses (with a warning); OpenMP or numba's own pool serve as well.
numba.config.THREADING_LAYER_PRIORITY = ["workqueue", "omp", "tbb"]
import numpy as np


@numba.njit(parallel=True, nogil=True, cache=True)
def make_rays(position, rotation, dirs_cam, out):  # pragma: no cover - compiled
    """Fill ``out`` (B*P, 6) float32 with world ray origins and directions.

    Args:
        position: float32 (B, 3) camera centres.
        rotation: float32 (B, 3, 3) camera-to-world rotations.
        dirs_cam: float32 (P, 3) camera-frame directions (z = -1).
        out: float32 (B*P, 6).
    """
    b_count = position.shape[0]
    p_count = dirs_cam.shape[0]
    for i in numba.prange(b_count * p_count):
        b = i // p_count
        p = i - b * p_count
        dx, dy, dz = dirs_cam[p, 0], dirs_cam[p, 1], dirs_cam[p, 2]
        out[i, 0] = position[b, 0]
        out[i, 1] = position[b, 1]
        out[i, 2] = position[b, 2]
        for k in range(3):
            out[i, 3 + k] = rotation[b, k, 0] * dx + rotation[b, k, 1] * dy + rotation[b, k, 2] * dz


@numba.njit(parallel=True, nogil=True, cache=True)
def shade_hits(  # pragma: no cover - compiled
    t, tri, bary, normal, rays, light, per_view, max_depth,
    face_uv, face_col, face_factor, face_tex_offset, face_tex_hw, texels, face_flat, face_semantic,
    rgb, depth, semantic,
):
    """z-depth, colour and semantic id of every ray; see ``Renderer.shade_reference`` for the maths.

    Args:
        t: float32 (N,) hit parameters (= z-depth for the renderer's rays).
        tri: uint32 (N,) hit triangles (0xFFFFFFFF = miss).
        bary: float32 (N, 2) barycentric (u, v).
        normal: float32 (N, 3) triangle normals.
        rays: float32 (N, 6) origins and directions.
        light: float32 (B, 6) per-view light direction, ambient, diffuse, and the gain of flat faces.
        per_view: rays per view.
        max_depth: metres.
        face_uv, face_col, face_factor, face_tex_offset, face_tex_hw, texels: packed surfaces.
        face_flat: uint8 (F,) 1 for faces shown unlit, or (0,) when every face is lit.
        face_semantic: int64 (F,) ids or (0,) for none.
        rgb: uint8 (N, 3) out; depth: float32 (N,) out; semantic: (N,) out or (0,).
    """
    n = t.shape[0]
    with_semantic = semantic.shape[0] == n
    with_flat = face_flat.shape[0] > 0
    for i in numba.prange(n):
        f = tri[i]
        ti = t[i]
        if f == 0xFFFFFFFF or not (ti <= max_depth):
            depth[i] = 0.0
            rgb[i, 0] = 0
            rgb[i, 1] = 0
            rgb[i, 2] = 0
            if with_semantic:
                semantic[i] = 0
            continue
        depth[i] = ti
        u = bary[i, 0]
        v = bary[i, 1]
        w0 = np.float32(1.0) - u - v
        tu = w0 * face_uv[f, 0, 0] + u * face_uv[f, 1, 0] + v * face_uv[f, 2, 0]
        tv = w0 * face_uv[f, 0, 1] + u * face_uv[f, 1, 1] + v * face_uv[f, 2, 1]
        th = face_tex_hw[f, 0]
        tw = face_tex_hw[f, 1]
        off = face_tex_offset[f]
        # REPEAT wrapping without integer division: wrap uv into [0, 1) first.
        su = np.float64(tu)
        sv = 1.0 - np.float64(tv)
        x = (su - np.floor(su)) * tw - 0.5
        y = (sv - np.floor(sv)) * th - 0.5
        x0 = np.floor(x)
        y0 = np.floor(y)
        fx = np.float32(x - x0)
        fy = np.float32(y - y0)
        xa = np.int64(x0)
        ya = np.int64(y0)
        xb = xa + 1
        yb = ya + 1
        xa = xa + tw if xa < 0 else xa
        ya = ya + th if ya < 0 else ya
        xb = xb - tw if xb >= tw else xb
        yb = yb - th if yb >= th else yb
        b = i // per_view
        nx, ny, nz = normal[i, 0], normal[i, 1], normal[i, 2]
        if nx * rays[i, 3] + ny * rays[i, 4] + nz * rays[i, 5] > 0:
            nx, ny, nz = -nx, -ny, -nz
        ndotl = nx * light[b, 0] + ny * light[b, 1] + nz * light[b, 2]
        shade = light[b, 3] + light[b, 4] * (np.float32(0.5) + np.float32(0.5) * ndotl)
        if with_flat and face_flat[f] == 1:
            shade = light[b, 5]
        for c in range(3):
            top = texels[off + ya * tw + xa, c] * (1 - fx) + texels[off + ya * tw + xb, c] * fx
            bot = texels[off + yb * tw + xa, c] * (1 - fx) + texels[off + yb * tw + xb, c] * fx
            tex = top * (1 - fy) + bot * fy
            col = (w0 * face_col[f, 0, c] + u * face_col[f, 1, c] + v * face_col[f, 2, c]) * face_factor[f, c]
            value = col * tex * shade * np.float32(255.0) + np.float32(0.5)
            rgb[i, c] = np.uint8(min(max(value, 0.0), 255.0))
        if with_semantic:
            semantic[i] = face_semantic[f]
