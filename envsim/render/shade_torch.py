"""Everything around the ray cast in torch, on any device: ray generation, z-depth, texture lookup,
half-Lambert lighting and semantic ids.

This is :meth:`envsim.render.renderer.Renderer.shade_reference` (and the ray generation of
:func:`envsim.render.kernels.make_rays`) written with torch tensors, operation for operation: the same float32 /
float64 steps, the same texel addressing, bilinear weights and REPEAT wrapping, the same lighting, rounding
and masking. On the CPU it is a second, independent implementation the tests hold against the numba
kernels and the numpy reference; on a GPU it lets the renderer keep every per-pixel array on the device,
from the rays to the finished uint8 RGB and float32 depth, which alone are copied to the host.

Every step works on all N rays at once, hits and misses alike (a miss reads a zero "no surface" row of
each per-face table), so nothing waits for the device to count the hits.

:class:`DeviceRenderPath` runs the whole chain for :class:`~envsim.render.renderer.Renderer` in chunks of rays; on
CUDA the host copy of chunk k runs on a copy stream while chunk k+1 is cast and shaded.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch

from envsim.camera import quat_to_matrix

log = logging.getLogger(__name__)

DEFAULT_CHUNK_RAYS = 1 << 23
"""Rays per cast-and-shade step of :class:`DeviceRenderPath` (512 views at 128x128, 128 at 256x256)."""


def face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit geometric normals ``(b - a) x (c - a)`` in the asset's winding, float32 (F, 3); zero for degenerate
    triangles. The same values as :class:`envsim.render.raycast.MitsubaRayCaster` and Open3D report per hit."""
    tri = np.asarray(vertices, np.float32)[np.asarray(faces)].astype(np.float64)  # (F, 3, 3)
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # (F, 3)
    length = np.linalg.norm(n, axis=1, keepdims=True)
    return np.divide(n, length, out=np.zeros_like(n), where=length > 0).astype(np.float32)


@dataclass(frozen=True)
class DeviceSurfaces:
    """The per-face shading tables of one scene as tensors on one device (uploaded once per scene).

    Each per-face table has one extra zero row at index ``n_faces``, the "no surface" row that misses read.

    Attributes:
        face_uv: float32 (F+1, 3, 2) texture coordinates of each corner.
        face_col: float32 (F+1, 3, 3) vertex colour of each corner in [0, 1].
        face_factor: float32 (F+1, 3) material colour factor.
        face_tex_offset: int64 (F+1,) first texel of the face's texture in ``texels``.
        face_tex_hw: int64 (F+1, 2) texture height and width in texels.
        texels: float32 (T, 3) every texture, row-major, in [0, 1].
        face_normal: float32 (F+1, 3) unit geometric normal.
        face_semantic: int16 or int32 (F+1,) semantic id of each face (0 on the extra row), or None.
        face_flat: bool (F+1,) faces shown unlit, or None when every face is lit.
    """

    face_uv: torch.Tensor
    face_col: torch.Tensor
    face_factor: torch.Tensor
    face_tex_offset: torch.Tensor
    face_tex_hw: torch.Tensor
    texels: torch.Tensor
    face_normal: torch.Tensor
    face_semantic: torch.Tensor | None
    face_flat: torch.Tensor | None = None

    @property
    def n_faces(self) -> int:
        return int(self.face_uv.shape[0]) - 1

    @property
    def device(self) -> torch.device:
        return self.face_uv.device


def upload_surfaces(
    *,
    face_uv: np.ndarray,
    face_col: np.ndarray,
    face_factor: np.ndarray,
    face_tex_offset: np.ndarray,
    face_tex_hw: np.ndarray,
    texels: np.ndarray,
    face_normal: np.ndarray,
    face_semantic: np.ndarray | None,
    semantic_dtype: np.dtype | type | None = None,
    face_flat: np.ndarray | None = None,
    device: str | torch.device,
) -> DeviceSurfaces:
    """Copy a scene's packed shading tables (as :class:`~envsim.render.renderer.Renderer` packs them) to ``device``.

    Args:
        face_uv: float32 (F, 3, 2).
        face_col: float32 (F, 3, 3).
        face_factor: float32 (F, 3).
        face_tex_offset: int64 (F,).
        face_tex_hw: int64 (F, 2).
        texels: float32 (T, 3), T >= 1 when F >= 1.
        face_normal: float32 (F, 3), e.g. :func:`face_normals`.
        face_semantic: int (F,) ids, or None for no semantic image.
        semantic_dtype: the host dtype of the semantic image, ``uint16`` or ``uint32`` (default); the
            device keeps the ids as the signed type of the same width, so the host copy reinterprets them.
        face_flat: (F,) nonzero for faces shown unlit, or None when every face is lit.
        device: where the tables live.
    """
    dev = torch.device(device)
    f = len(face_uv)

    def table(a: np.ndarray, dtype: np.dtype, pad: int = 0) -> torch.Tensor:
        a = np.asarray(a, dtype)
        padded = np.full((f + 1,) + a.shape[1:], pad, dtype)  # the "no surface" row
        padded[:f] = a
        return torch.from_numpy(padded).to(dev)  # a synchronous copy: ready for any stream

    tex = np.asarray(texels, np.float32).reshape(-1, 3)
    if len(tex) < 2:  # >= 2 rows: torch.compile would specialise its code on a 0- or 1-row table
        tex = np.concatenate([tex, np.zeros((2 - len(tex), 3), np.float32)])
    hw = table(face_tex_hw, np.int64, pad=1)  # a 1x1 texture keeps the extra row's texel address in range
    semantic = None
    if face_semantic is not None:
        wide = np.dtype(semantic_dtype or np.uint32).itemsize == 4
        ids = np.asarray(face_semantic, np.int64).astype(np.int32 if wide else np.int16)  # wraps like the numba store
        semantic = table(ids, ids.dtype)
    return DeviceSurfaces(
        face_uv=table(face_uv, np.float32),
        face_col=table(face_col, np.float32),
        face_factor=table(face_factor, np.float32),
        face_tex_offset=table(face_tex_offset, np.int64),
        face_tex_hw=hw,
        texels=torch.from_numpy(np.ascontiguousarray(tex)).to(dev),
        face_normal=table(face_normal, np.float32),
        face_semantic=semantic,
        face_flat=None if face_flat is None else table(np.asarray(face_flat) != 0, np.bool_),
    )


def make_rays(position: torch.Tensor, rotation: torch.Tensor, dirs_cam: torch.Tensor) -> torch.Tensor:
    """World rays of a batch of cameras, as :func:`envsim.render.kernels.make_rays` makes them (bit for bit).

    Args:
        position: float32 (B, 3) camera centres in metres.
        rotation: float32 (B, 3, 3) camera-to-world rotations.
        dirs_cam: float32 (P, 3) camera-frame directions with z = -1 (the hit parameter is the z-depth).

    Returns:
        float32 (B*P, 6): origin, direction; view-major.
    """
    b, p = position.shape[0], dirs_cam.shape[0]
    dx, dy, dz = dirs_cam[None, :, 0:1], dirs_cam[None, :, 1:2], dirs_cam[None, :, 2:3]  # (1, P, 1)
    r = rotation[:, None]  # (B, 1, 3, 3)
    dirs = r[..., 0] * dx + r[..., 1] * dy + r[..., 2] * dz  # (B, P, 3); row k: r[k,0] dx + r[k,1] dy + r[k,2] dz
    origins = position[:, None, :].expand(b, p, 3)  # (B, P, 3)
    return torch.cat([origins, dirs], dim=2).reshape(b * p, 6)


class Shaded(NamedTuple):
    """Finished pixels of N rays on the device.

    Attributes:
        rgb: uint8 (N, 3), black where there is no surface within range.
        depth: float32 (N,) z-depth in metres, 0 where there is no surface within range.
        semantic: int16 / int32 (N,) ids (0 = no surface), or None.
    """

    rgb: torch.Tensor
    depth: torch.Tensor
    semantic: torch.Tensor | None


def _dot3(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise a . b of (..., 3) tensors, summed left to right."""
    return a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1] + a[..., 2] * b[..., 2]


def shade(
    surfaces: DeviceSurfaces,
    t: torch.Tensor,
    triangle: torch.Tensor,
    bary: torch.Tensor,
    dirs: torch.Tensor,
    light: torch.Tensor,
    *,
    max_depth: float,
    normal: torch.Tensor | None = None,
) -> Shaded:
    """z-depth, colour and label of every ray: :meth:`~envsim.render.renderer.Renderer.shade_reference` in torch.

    albedo = material factor * interpolated vertex colour * bilinear texture(uv);
    rgb = albedo * (ambient + diffuse * (0.5 + 0.5 * n.l)), n facing the camera, on lit faces;
    rgb = albedo * the view's flat gain on flat ones (``surfaces.face_flat``).

    Args:
        surfaces: the scene's tables, on the device of the other tensors.
        t: float32 (N,) hit parameters (= z-depth for the renderer's rays); N = B * P, view-major.
        triangle: int32 / int64 (N,) hit triangles, negative on a miss (uint32 ``MISS`` read as int32 is -1).
        bary: float32 (N, 2) barycentric (u, v).
        dirs: float32 (N, 3) ray directions (only their side of the surface matters).
        light: float32 (B, 5) per-view light direction (3, unit), ambient, diffuse; (B, 6) with the gain of
            flat faces last (1 when absent).
        max_depth: metres; farther hits count as no surface.
        normal: float32 (N, 3) normals from the backend; by default each triangle's from ``surfaces``.

    Returns:
        The finished pixels.
    """
    n, b = t.shape[0], light.shape[0]
    p = n // b if b else 0
    if b * p != n:
        raise ValueError(f"{n} rays do not split into {b} views")
    tri = triangle.to(torch.int64)
    valid = (tri >= 0) & (t <= max_depth)  # (N,); NaN compares False
    f = torch.where(valid, tri, surfaces.n_faces)  # misses read the zero row
    depth = torch.where(valid, t, 0.0)  # float32
    u, v = bary[:, 0:1], bary[:, 1:2]  # (N, 1)
    w0 = 1.0 - u - v  # (N, 1)
    fuv = surfaces.face_uv[f]  # (N, 3, 2)
    uv = w0 * fuv[:, 0] + u * fuv[:, 1] + v * fuv[:, 2]  # (N, 2)
    fc = surfaces.face_col[f]  # (N, 3, 3)
    albedo = (w0 * fc[:, 0] + u * fc[:, 1] + v * fc[:, 2]) * surfaces.face_factor[f]  # (N, 3)
    albedo = albedo * sample_textures(surfaces.texels, uv, surfaces.face_tex_offset[f], surfaces.face_tex_hw[f])
    nrm = surfaces.face_normal[f] if normal is None else normal  # (N, 3)
    nrm = torch.where((_dot3(nrm, dirs) > 0)[:, None], -nrm, nrm)  # towards the camera
    lv = light[:, None, :]  # (B, 1, 5)
    ndotl = _dot3(nrm.view(b, p, 3), lv[..., :3])  # (B, P)
    shade_ = lv[..., 3] + lv[..., 4] * (0.5 + 0.5 * ndotl)  # (B, P)
    if surfaces.face_flat is not None:
        gain = lv[..., 5] if light.shape[1] > 5 else torch.ones_like(lv[..., 3])  # (B, 1)
        shade_ = torch.where(surfaces.face_flat[f].view(b, p), gain, shade_)
    value = albedo.view(b, p, 3) * shade_[..., None] * 255.0 + 0.5  # (B, P, 3) float32
    rgb = torch.where(valid[:, None], value.reshape(n, 3).clamp(0, 255).to(torch.uint8), 0)  # truncates like astype
    semantic = None if surfaces.face_semantic is None else surfaces.face_semantic[f]  # 0 on the zero row
    return Shaded(rgb=rgb, depth=depth, semantic=semantic)


def sample_textures(texels: torch.Tensor, uv: torch.Tensor, offset: torch.Tensor, hw: torch.Tensor) -> torch.Tensor:
    """Bilinear REPEAT sampling at ``uv`` (OpenGL convention, v = 0 at the bottom row), float32 (N, 3) in [0, 1].

    The texel coordinates and weights are float64 as in the numpy reference.

    Args:
        texels: float32 (T, 3) packed textures.
        uv: float32 (N, 2).
        offset: int64 (N,) first texel of each hit's texture.
        hw: int64 (N, 2) height and width of each hit's texture.
    """
    th, tw = hw[:, 0], hw[:, 1]
    x = uv[:, 0].to(torch.float64) * tw - 0.5  # (N,)
    y = (1.0 - uv[:, 1].to(torch.float64)) * th - 0.5
    x0, y0 = torch.floor(x), torch.floor(y)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]  # (N, 1) float64
    x0, y0 = x0.to(torch.int64), y0.to(torch.int64)
    xa, xb = torch.remainder(x0, tw), torch.remainder(x0 + 1, tw)  # Python-style: in [0, tw)
    ya, yb = torch.remainder(y0, th), torch.remainder(y0 + 1, th)
    top = texels[offset + ya * tw + xa] * (1 - fx) + texels[offset + ya * tw + xb] * fx  # (N, 3) float64
    bot = texels[offset + yb * tw + xa] * (1 - fx) + texels[offset + yb * tw + xb] * fx
    return (top * (1 - fy) + bot * fy).to(torch.float32)


@functools.lru_cache(maxsize=None)
def compiled_shade():
    """:func:`shade` through ``torch.compile`` with dynamic shapes, made once per process.

    Inductor fuses the ~140 elementwise and gather operations of :func:`shade` into a few kernels, so the
    per-ray intermediates never reach device memory (about 3 KB per ray in eager mode). The maths is the
    same; on a GPU the generated code may fuse a multiply and an add (FMA), which can move a colour by one
    level. The first call compiles (seconds to a minute); a new image size or scene does not recompile,
    a batch of one view does once.
    """
    return torch.compile(shade, dynamic=True)


# ------------------------------------------------------------------------------------------ the whole chain


class DeviceRenderPath:
    """Rays, cast, shading and the host copy of finished pixels, for :class:`~envsim.render.renderer.Renderer`.

    The cast uses the caster's ``cast_torch`` (Mitsuba) when it runs on this device, so rays and hits never
    leave it; any other caster casts on the host and its hits are uploaded (useful for tests).

    Args:
        surfaces: the scene's tables on ``device``.
        dirs_cam: float32 (P, 3) camera-frame ray directions of one view.
        caster: the ray caster.
        max_depth: metres.
        semantic_dtype: host dtype of the semantic image (``uint16`` / ``uint32``), or None for none.
        chunk_rays: rays per cast-and-shade step (bounds device memory; more than one step per call lets
            the host copy of one step overlap the next step on CUDA).
        compile: shade through :func:`compiled_shade` (falls back to eager :func:`shade`, with a warning, if
            compiling fails).
    """

    def __init__(
        self,
        *,
        surfaces: DeviceSurfaces,
        dirs_cam: np.ndarray,
        caster: Any,
        max_depth: float,
        semantic_dtype: np.dtype | type | None,
        chunk_rays: int = DEFAULT_CHUNK_RAYS,
        compile: bool = False,
    ):
        if chunk_rays < 1:
            raise ValueError(f"chunk_rays must be >= 1, got {chunk_rays}")
        self.compile = bool(compile)
        self.surfaces = surfaces
        self.device = surfaces.device
        self.caster = caster
        self.max_depth = float(max_depth)
        self.semantic_dtype = None if semantic_dtype is None else np.dtype(semantic_dtype)
        self.chunk_rays = int(chunk_rays)
        self._dirs_cam = torch.from_numpy(np.ascontiguousarray(dirs_cam, np.float32).reshape(-1, 3)).to(self.device)
        on_device = getattr(caster, "torch_device_type", None) == self.device.type
        self.device_cast = on_device and hasattr(caster, "cast_torch")  # else: a host cast
        self._cuda = self.device.type == "cuda"
        if self._cuda:
            # Torch work runs on its own stream (never the legacy default one, which Dr.Jit's DLPack
            # handshake cannot order against), copies to the host on another.
            self._compute = torch.cuda.Stream(self.device)
            self._copy = torch.cuda.Stream(self.device)

    @property
    def rays_per_view(self) -> int:
        return int(self._dirs_cam.shape[0])

    def _stream(self, which: str):
        return torch.cuda.stream(getattr(self, which)) if self._cuda else contextlib.nullcontext()

    def upload_poses(self, position: np.ndarray, rotation: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Camera centres float32 (B, 3) and rotation matrices float32 (B, 3, 3) on the device, computed as the
        numba path computes them."""
        position = np.ascontiguousarray(np.asarray(position, np.float32).reshape(-1, 3))
        r = quat_to_matrix(np.asarray(rotation, np.float64).reshape(-1, 4)).astype(np.float32)  # (B, 3, 3)
        return torch.from_numpy(position).to(self.device), torch.from_numpy(np.ascontiguousarray(r)).to(self.device)

    def rays(self, position: np.ndarray, rotation: np.ndarray) -> torch.Tensor:
        """World rays float32 (B*P, 6) of a batch of cameras, made on the device (see :func:`make_rays`).

        On CUDA they are made on this path's compute stream; wait for it (or the device) before using them
        on another stream.
        """
        with self._stream("_compute"):
            return make_rays(*self.upload_poses(position, rotation), self._dirs_cam)

    def cast(self, rays: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(t, triangle, bary, normal)`` of device rays; ``normal`` is None when the shading should look it up."""
        if self.device_cast:
            t, tri, bary = self.caster.cast_torch(rays)
            return t, tri, bary, None
        hits = self.caster.cast(rays.cpu().numpy())
        up = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(self.device)  # noqa: E731
        return up(hits.t), up(hits.triangle.view(np.int32)), up(hits.bary), up(hits.normal)

    def render(
        self, position: np.ndarray, rotation: np.ndarray, light: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Render B views to host arrays.

        Args:
            position: (B, 3) camera centres in metres.
            rotation: (B, 4) camera-to-world unit quaternions (w, x, y, z).
            light: float32 (B, 5) per-view lighting (:meth:`~envsim.render.renderer.Renderer.lights`), or (B, 6)
                with the gain of flat faces last.

        Returns:
            uint8 (B*P, 3) RGB, float32 (B*P,) z-depth and the (B*P,) semantic ids (``semantic_dtype``) or
            None: numpy arrays over host memory (page-locked on CUDA) that the device wrote into directly.
        """
        p = self.rays_per_view
        b = int(np.asarray(position).reshape(-1, 3).shape[0])
        n = b * p
        pin = self._cuda
        host_rgb = torch.empty((n, 3), dtype=torch.uint8, pin_memory=pin)
        host_depth = torch.empty(n, dtype=torch.float32, pin_memory=pin)
        host_sem = None
        if self.semantic_dtype is not None:
            wide = self.semantic_dtype.itemsize == 4
            host_sem = torch.empty(n, dtype=torch.int32 if wide else torch.int16, pin_memory=pin)
        if n:
            step = max(1, self.chunk_rays // p)  # views per step
            with self._stream("_compute"):
                pos, rot = self.upload_poses(position, rotation)
                lights = torch.from_numpy(np.ascontiguousarray(light, np.float32)).to(self.device)
                for v0 in range(0, b, step):
                    v1 = min(b, v0 + step)
                    rays = make_rays(pos[v0:v1], rot[v0:v1], self._dirs_cam)  # (n_k, 6)
                    t, tri, bary, normal = self.cast(rays)
                    out = self._shade(t, tri, bary, rays[:, 3:], lights[v0:v1], normal)
                    self._to_host(out, slice(v0 * p, v1 * p), host_rgb, host_depth, host_sem)
            if self._cuda:
                self._copy.synchronize()
        semantic = None
        if host_sem is not None:
            semantic = host_sem.numpy().view(np.uint32 if self.semantic_dtype.itemsize == 4 else np.uint16)
        return host_rgb.numpy(), host_depth.numpy(), semantic

    def _shade(self, t, tri, bary, dirs, light, normal) -> Shaded:
        if self.compile:
            try:
                fused = compiled_shade()
                return fused(self.surfaces, t, tri, bary, dirs, light, max_depth=self.max_depth, normal=normal)
            except Exception as exc:  # no compiler, an unsupported device...: the eager code is the same maths
                log.warning("torch.compile of the shading failed (%s: %s); shading eagerly", type(exc).__name__, exc)
                self.compile = False
        return shade(self.surfaces, t, tri, bary, dirs, light, max_depth=self.max_depth, normal=normal)

    def _to_host(
        self, out: Shaded, sl: slice, rgb: torch.Tensor, depth: torch.Tensor, sem: torch.Tensor | None
    ) -> None:
        pairs = [(rgb, out.rgb), (depth, out.depth)] + ([(sem, out.semantic)] if sem is not None else [])
        if not self._cuda:
            for host, dev in pairs:
                host[sl].copy_(dev)
            return
        self._copy.wait_stream(self._compute)  # after this step's shading
        with torch.cuda.stream(self._copy):
            for host, dev in pairs:
                host[sl].copy_(dev, non_blocking=True)
                dev.record_stream(self._copy)  # the allocator must not hand it out before the copy ran
