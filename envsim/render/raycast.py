"""Ray-casting backends: "cast these rays -> hit distance, triangle id, barycentrics, normal".

Everything after the hit (depth, texture lookup, lighting, labels) lives in :mod:`envsim.render.renderer` and is
shared by every backend.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import sys
from dataclasses import dataclass
from typing import Protocol

import numpy as np

MISS = 0xFFFFFFFF
"""Triangle id of a ray that hit nothing."""


@dataclass(frozen=True)
class RayHits:
    """First hits of N rays.

    Attributes:
        t: float32 (N,) hit parameter in units of the ray direction's length; inf where nothing was hit.
        triangle: uint32 (N,) index of the hit triangle, :data:`MISS` where nothing was hit.
        bary: float32 (N, 2) barycentric (u, v) of the hit: point = (1-u-v) a + u b + v c.
        normal: float32 (N, 3) unit geometric normal of the hit triangle (asset winding).
    """

    t: np.ndarray
    triangle: np.ndarray
    bary: np.ndarray
    normal: np.ndarray


class RayCaster(Protocol):
    """What a rendering backend must do."""

    def cast(self, rays: np.ndarray) -> RayHits:
        """Cast float32 (N, 6) rays: origin (3) and direction (3, any non-zero length)."""
        ...


class Open3DRayCaster:
    """CPU ray casting with Open3D's ``RaycastingScene`` (Embree, all cores).

    Args:
        vertices: float32 (V, 3) metres.
        faces: int32 (F, 3).
    """

    def __init__(self, vertices: np.ndarray, faces: np.ndarray):
        import open3d as o3d

        self._o3c = o3d.core
        self._scene = o3d.t.geometry.RaycastingScene()
        self._scene.add_triangles(
            o3d.core.Tensor(np.ascontiguousarray(vertices, dtype=np.float32)),
            o3d.core.Tensor(np.ascontiguousarray(faces, dtype=np.uint32)),
        )
        self.invalid_id = int(o3d.t.geometry.RaycastingScene.INVALID_ID)

    def cast(self, rays: np.ndarray) -> RayHits:
        out = self._scene.cast_rays(self._o3c.Tensor.from_numpy(np.ascontiguousarray(rays, dtype=np.float32)))
        assert self.invalid_id == MISS
        return RayHits(
            t=out["t_hit"].numpy(),
            triangle=out["primitive_ids"].numpy(),
            bary=out["primitive_uvs"].numpy(),
            normal=out["primitive_normals"].numpy(),
        )

    def list_intersections(self, rays: np.ndarray) -> dict[str, np.ndarray]:
        """All hits along each of the float32 (N, 6) rays (Open3D's ``list_intersections``), as numpy arrays."""
        out = self._scene.list_intersections(self._o3c.Tensor.from_numpy(np.ascontiguousarray(rays, dtype=np.float32)))
        return {k: v.numpy() for k, v in out.items()}


# ------------------------------------------------------------------------------------------ Mitsuba 3 backend

GPU_EXTRA_HINT = "pip install 'ess-toolkit[gpu]'"
"""How to install the optional Mitsuba 3 / Dr.Jit backend."""

BACKENDS = ("open3d", "mitsuba", "auto")
"""Names :func:`make_ray_caster` accepts; ``auto`` is Mitsuba on a working CUDA device, else Open3D."""

_LIBLLVM_DIRS = (
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
    "/usr/local/lib",
    "/usr/lib/llvm-*/lib",
    "/usr/lib64/llvm*/lib",
    "/opt/homebrew/opt/llvm/lib",
    "/usr/local/opt/llvm/lib",
)
_DRJIT_LIBLLVM_DIRS = (
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib/wsl/lib",
)  # where Dr.Jit 1.x looks by itself on Linux
MIN_LLVM = 15
"""Oldest LLVM Dr.Jit 1.x accepts (it needs opaque pointers); Debian 12's libllvm14 is too old."""
_LIBLLVM_NAME = re.compile(r"^libLLVM(-\d+[\w.]*)?\.(so(\.\d+[\w.]*)?|dylib)$")


def find_libllvm(*, where: tuple[str, ...] | None = None) -> str | None:
    """The newest LLVM shared library Dr.Jit can use (LLVM >= 15) in the usual places, or None.

    Dr.Jit's CPU backend (Mitsuba's ``llvm_*`` variants) loads it at run time, e.g. Debian's ``libllvm15``.

    Args:
        where: folder glob patterns to search; by default the system folders, Homebrew's and the active
            Python environment's ``lib``.
    """
    dirs = where if where is not None else (os.path.join(sys.prefix, "lib"), *_LIBLLVM_DIRS)
    found: dict[str, tuple[int, ...]] = {}
    for pattern in dirs:
        for folder in glob.glob(pattern):
            try:
                names = os.listdir(folder)
            except OSError:
                continue
            for name in names:
                if not _LIBLLVM_NAME.match(name):
                    continue
                path = os.path.realpath(os.path.join(folder, name))
                version = tuple(int(x) for x in re.findall(r"\d+", name)[:2])
                if version and version[0] >= MIN_LLVM and os.path.isfile(path):
                    found[path] = max(version, found.get(path, ()))
    return max(found, key=found.get) if found else None


def _import_mitsuba():
    """``(mitsuba, drjit)``, imported on first use.

    When ``DRJIT_LIBLLVM_PATH`` is unset and Dr.Jit's own search folders hold no LLVM >= 15, it is set to
    :func:`find_libllvm`'s answer first (a versioned ``/usr/lib/llvm-*``, ``/usr/lib64``, a conda ``lib``).
    """
    if "drjit" not in sys.modules and not os.environ.get("DRJIT_LIBLLVM_PATH"):
        if find_libllvm(where=_DRJIT_LIBLLVM_DIRS) is None:  # Dr.Jit's own search would fail or find LLVM 14-
            lib = find_libllvm()
            if lib is not None:
                os.environ["DRJIT_LIBLLVM_PATH"] = lib  # read by Dr.Jit when its LLVM backend starts
    try:
        import drjit as dr
        import mitsuba as mi
    except ImportError as e:
        raise ImportError(
            f"the 'mitsuba' ray-casting backend needs Mitsuba 3 and Dr.Jit ({e}); install them with: {GPU_EXTRA_HINT}"
        ) from e
    return mi, dr


def _cuda_usable(mi, dr) -> bool:
    return "cuda_ad_rgb" in mi.variants() and bool(dr.has_backend(dr.JitBackend.CUDA))


def mitsuba_variant() -> str:
    """The Mitsuba variant a :class:`MitsubaRayCaster` uses by default: ``cuda_ad_rgb`` when a CUDA device
    works, else ``llvm_ad_rgb`` (the same code on the CPU).

    Raises:
        ImportError: Mitsuba is not installed.
        RuntimeError: neither a CUDA device nor libLLVM is usable.
    """
    mi, dr = _import_mitsuba()
    if _cuda_usable(mi, dr):
        return "cuda_ad_rgb"
    if "llvm_ad_rgb" in mi.variants() and dr.has_backend(dr.JitBackend.LLVM):
        return "llvm_ad_rgb"
    raise RuntimeError(f"Mitsuba has no usable variant: no CUDA device, and {_NO_LLVM}")


_NO_LLVM = (
    f"Dr.Jit's CPU backend found no usable LLVM shared library (LLVM >= {MIN_LLVM}). Install one "
    "(Debian/Ubuntu: apt-get install libllvm15) or point DRJIT_LIBLLVM_PATH at libLLVM.so."
)


LIST_MAX_HITS = 64
"""Most hits :meth:`MitsubaRayCaster.list_intersections` lists per ray by default."""


def list_step(point: np.ndarray) -> np.ndarray:
    """How far past a hit at ``point`` (float (K, 3), metres) the next cast of a listed ray starts: metres (K,).

    10 um plus 4 float32 ulps of the largest coordinate (2 um at 4 m, 16 um at 32 m): far enough that a
    float32 origin lies past the surface, well below the 0.1 mm within which navigation merges hits into one
    surface.
    """
    return 1e-5 + 4.8e-7 * np.max(np.abs(point), axis=1, initial=0.0)


def duplicate_faces(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Triangles on the same three vertex positions (in any order: both sides of a double-sided face).

    Args:
        vertices: float32 (V, 3).
        faces: int (F, 3).

    Returns:
        ``(group, starts, members)``: int64 (F,) group of each face, -1 for a face without duplicate; the
        faces of group g are ``members[starts[g]:starts[g + 1]]`` (int64 (G + 1,) and (M,)).
    """
    tri = np.ascontiguousarray(vertices[faces], dtype=np.float32) + np.float32(0)  # (F, 3, 3); -0.0 -> 0.0
    corners = tri.view(np.dtype((np.void, 12))).reshape(len(faces), 3)  # (F, 3) one opaque key per corner
    key = np.ascontiguousarray(np.sort(corners, axis=1)).view(np.dtype((np.void, 36))).ravel()  # (F,)
    _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    dup = np.flatnonzero(counts[inverse] > 1)  # faces with a duplicate
    _, group = np.unique(inverse[dup], return_inverse=True)
    out = np.full(len(faces), -1, np.int64)
    out[dup] = group.ravel()
    members = dup[np.argsort(out[dup], kind="stable")]
    starts = np.concatenate([[0], np.cumsum(np.bincount(out[dup]))]).astype(np.int64)
    return out, starts, members.astype(np.int64)


def barycentric(tri: np.ndarray, point: np.ndarray) -> np.ndarray:
    """(u, v) of points (K, 3) in their triangles (K, 3, 3): point = (1-u-v) a + u b + v c, float (K, 2)."""
    e1, e2, w = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], point - tri[:, 0]
    d11, d12, d22 = (e1 * e1).sum(1), (e1 * e2).sum(1), (e2 * e2).sum(1)
    w1, w2 = (w * e1).sum(1), (w * e2).sum(1)
    den = d11 * d22 - d12 * d12
    den = np.where(den == 0, 1.0, den)
    return np.stack([(d22 * w1 - d12 * w2) / den, (d11 * w2 - d12 * w1) / den], axis=1)


def _rays_from(origin: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """float32 (K, 6) rays from float (K, 3) origins and directions."""
    return np.concatenate([origin, direction], axis=1).astype(np.float32)


@contextlib.contextmanager
def _variant_scope(mi, variant: str):
    """Mitsuba's ``scoped_set_variant``, which cannot restore "no variant set" (Mitsuba 3.9): then keep ours."""
    previous = mi.variant()
    mi.set_variant(variant)
    try:
        yield
    finally:
        if previous is not None:
            mi.set_variant(previous)


class MitsubaRayCaster:
    """Ray casting with Mitsuba 3 (``Scene.ray_intersect_preliminary``): OptiX on a CUDA GPU
    (``cuda_ad_rgb``) or Embree through Dr.Jit's LLVM backend on the CPU (``llvm_ad_rgb``).

    Returns exactly what :class:`Open3DRayCaster` returns (see :class:`RayHits`), so the two are
    interchangeable; ``tests/test_mitsuba.py`` checks that.

    Args:
        vertices: float32 (V, 3) metres.
        faces: int32 (F, 3).
        variant: a Mitsuba ``cuda_*`` or ``llvm_*`` variant; by default :func:`mitsuba_variant`.

    Raises:
        ImportError: Mitsuba is not installed (``pip install 'ess-toolkit[gpu]'``).
        ValueError: an unknown or non-vectorised variant.
        RuntimeError: the variant's Dr.Jit backend cannot start (no libLLVM >= 15, no CUDA device).
    """

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, *, variant: str | None = None):
        mi, dr = _import_mitsuba()
        if variant is None:
            variant = mitsuba_variant()
        elif variant not in mi.variants() or not variant.startswith(("cuda_", "llvm_")):
            vectorised = [v for v in mi.variants() if v.startswith(("cuda_", "llvm_"))]
            raise ValueError(f"Mitsuba variant {variant!r} is not available here; choose one of {vectorised}")
        if variant.startswith("llvm_") and not dr.has_backend(dr.JitBackend.LLVM):
            raise RuntimeError(f"Mitsuba variant {variant!r} cannot run: {_NO_LLVM}")
        if variant.startswith("cuda_") and not dr.has_backend(dr.JitBackend.CUDA):
            raise RuntimeError(f"Mitsuba variant {variant!r} cannot run: Dr.Jit finds no working CUDA device")
        self.variant = variant
        self._dr = dr
        self._m = getattr(mi, variant)  # the variant's types, without touching the global variant
        v = np.ascontiguousarray(vertices, dtype=np.float32).reshape(-1, 3)
        f = np.ascontiguousarray(faces, dtype=np.uint32).reshape(-1, 3)
        if len(f) and f.max() >= len(v):
            raise ValueError(f"faces index vertex {int(f.max())} but there are only {len(v)} vertices")
        with _variant_scope(mi, variant):
            mesh = mi.Mesh("scene", vertex_count=len(v), face_count=len(f), has_vertex_normals=False,
                           has_vertex_texcoords=False)
            params = mi.traverse(mesh)
            params["vertex_positions"] = mi.Float(v.ravel())
            params["faces"] = mi.UInt32(f.ravel())
            params.update()
            self._scene = mi.load_dict({"type": "scene", "mesh": mesh})
        # Unit geometric normals (b - a) x (c - a), the asset's winding, as Open3D reports them.
        tri = v[f].astype(np.float64)  # (F, 3, 3)
        n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # (F, 3)
        length = np.linalg.norm(n, axis=1, keepdims=True)
        n = np.divide(n, length, out=np.zeros_like(n), where=length > 0).astype(np.float32)
        self._face_normal = self._m.Float(n.ravel())
        self._mesh = (v, f)
        self._twins = None  # duplicate_faces(v, f), made on the first list_intersections

    def cast(self, rays: np.ndarray) -> RayHits:
        """Cast float32 (N, 6) rays: origin (3) and direction (3, any non-zero length)."""
        dr, m = self._dr, self._m
        rays = np.asarray(rays, dtype=np.float32).reshape(-1, 6)
        if len(rays) == 0:
            return RayHits(np.zeros(0, np.float32), np.zeros(0, np.uint32), np.zeros((0, 2), np.float32),
                           np.zeros((0, 3), np.float32))
        cols = np.ascontiguousarray(rays.T)  # (6, N)
        d = m.Vector3f(cols[3:])
        length = dr.norm(d)  # (N,); Mitsuba wants unit directions, callers' t is in units of |d|
        pi = self._scene.ray_intersect_preliminary(m.Ray3f(m.Point3f(cols[:3]), d / length), coherent=True)
        hit = pi.is_valid()
        t = dr.select(hit, pi.t / length, dr.inf)
        triangle = dr.select(hit, pi.prim_index, MISS)
        bary = dr.select(hit, pi.prim_uv, 0.0)  # Mitsuba's (b1, b2): p = (1-b1-b2) a + b1 b + b2 c, as Open3D
        normal = dr.gather(m.Vector3f, self._face_normal, pi.prim_index, hit)  # zeros on a miss
        dr.eval(t, triangle, bary, normal)
        return RayHits(
            t=np.asarray(t, dtype=np.float32),
            triangle=np.asarray(triangle, dtype=np.uint32),
            bary=np.ascontiguousarray(np.asarray(bary, dtype=np.float32).T),
            normal=np.ascontiguousarray(np.asarray(normal, dtype=np.float32).T),
        )

    def list_intersections(self, rays: np.ndarray, *, max_hits: int = LIST_MAX_HITS) -> dict[str, np.ndarray]:
        """All hits along each ray, as Open3D's ``RaycastingScene.list_intersections`` lists them.

        Mitsuba finds first hits only, so each ray is cast again from just past its last hit (by
        :func:`list_step` metres) until it misses or has ``max_hits`` hits. A first-hit cast sees one of
        several coincident triangles, which Open3D lists all: so the duplicates of a hit triangle (the same
        three vertices in any order, e.g. both sides of a double-sided floor) are listed with it, and after
        each hit a short ray is cast back from the next start towards it, listing a different triangle it
        meets (another coplanar face there). Other coincident triangles (a shared edge's second triangle, a
        third overlapping face) are not listed.

        Args:
            rays: float32 (N, 6) origin (3) and direction (3, any non-zero length).
            max_hits: most forward casts per ray.

        Returns:
            numpy arrays as Open3D names them, sorted by ray then distance: ``ray_ids`` uint32 (H,),
            ``t_hit`` float32 (H,) in units of the direction's length, ``primitive_ids`` and
            ``geometry_ids`` (all 0) uint32 (H,), ``primitive_uvs`` float32 (H, 2) and ``ray_splits``
            uint32 (N + 1,): the hits of ray i are [ray_splits[i], ray_splits[i + 1]).
        """
        rays = np.asarray(rays, dtype=np.float32).reshape(-1, 6)
        origin = rays[:, :3].astype(np.float64)  # (N, 3)
        d = rays[:, 3:].astype(np.float64)  # (N, 3)
        length = np.linalg.norm(d, axis=1)  # (N,)
        start = np.zeros(len(rays))  # (N,) where each ray's next cast starts, in units of |d|
        active = np.arange(len(rays))
        found = [(np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.uint32), np.zeros((0, 2), np.float32))]
        for _ in range(max_hits):
            if active.size == 0:
                break
            sub = _rays_from(origin[active] + start[active, None] * d[active], d[active])  # (A, 6) float32
            # where the float32 origins really lie along each ray, in units of |d| (0 on the first cast)
            start[active] = np.einsum("ij,ij->i", sub[:, :3] - origin[active], d[active]) / length[active] ** 2
            hits = self.cast(sub)
            hit = hits.triangle != MISS
            active = active[hit]
            t = start[active] + hits.t[hit].astype(np.float64)  # (K,) from the original origin
            found.append((active, t, hits.triangle[hit], hits.bary[hit]))
            point = origin[active] + t[:, None] * d[active]  # (K, 3)
            start[active] = t + list_step(point) / length[active]
            found.append(self._cast_back(active, origin[active] + start[active, None] * d[active], d[active],
                                         start[active], t, hits.triangle[hit]))
        ray_ids, t_hit, prim, uv = self._with_duplicates(*(np.concatenate(x) for x in zip(*found)), origin, d)
        order = np.lexsort((t_hit, ray_ids))
        return {
            "ray_ids": ray_ids[order].astype(np.uint32),
            "t_hit": t_hit[order].astype(np.float32),
            "primitive_ids": prim[order].astype(np.uint32),
            "geometry_ids": np.zeros(order.size, np.uint32),
            "primitive_uvs": np.ascontiguousarray(uv[order], dtype=np.float32),
            "ray_splits": np.searchsorted(ray_ids[order], np.arange(len(rays) + 1)).astype(np.uint32),
        }

    def _with_duplicates(self, ray_ids, t, prim, uv, origin, d) -> tuple[np.ndarray, ...]:
        """The hits (H,) plus hits on the duplicates of their triangles, each (ray, triangle) once."""
        if self._twins is None:
            self._twins = duplicate_faces(*self._mesh)
        group, starts, members = self._twins
        g = group[prim]  # (H,) -1: no duplicate
        has = np.flatnonzero(g >= 0)
        count = starts[g[has] + 1] - starts[g[has]]  # (K,) triangles in each hit's group
        src = np.repeat(has, count)  # (M,) the hit each added row copies
        first = np.repeat(np.cumsum(count) - count, count)
        twin = members[np.repeat(starts[g[has]], count) + np.arange(src.size) - first]  # (M,)
        v, f = self._mesh
        point = origin[ray_ids[src]] + t[src, None] * d[ray_ids[src]]  # (M, 3)
        ray_ids, t = np.concatenate([ray_ids, ray_ids[src]]), np.concatenate([t, t[src]])
        prim = np.concatenate([prim.astype(np.int64), twin])
        uv = np.concatenate([uv, barycentric(v[f[twin]].astype(np.float64), point).astype(np.float32)])
        _, keep = np.unique(ray_ids * (len(f) + 1) + prim, return_index=True)  # a plane meets a ray once
        return ray_ids[keep], t[keep], prim[keep], uv[keep]

    def _cast_back(self, ray_ids, point, d, start, t, triangle) -> tuple[np.ndarray, ...]:
        """Hits of rays cast back from ``point`` (K, 3) (at ``start`` (K,), in units of |d|) along -``d`` up to
        the forward hit at ``t`` (K,) on ``triangle`` (K,), on another triangle: (ray, t, triangle, bary)."""
        hits = self.cast(_rays_from(point, -d))
        other = (hits.triangle != MISS) & (hits.triangle != triangle) & (hits.t <= (start - t) * 1.5)
        return ray_ids[other], start[other] - hits.t[other].astype(np.float64), hits.triangle[other], hits.bary[other]

    @property
    def torch_device_type(self) -> str:
        """Where :meth:`cast_torch` wants its rays: ``"cuda"`` for a ``cuda_*`` variant, else ``"cpu"``."""
        return "cuda" if self.variant.startswith("cuda_") else "cpu"

    def cast_torch(self, rays):
        """:meth:`cast` on torch tensors that stay on their device: no host copy on a GPU.

        The rays are handed to Dr.Jit through DLPack without a copy; the hits come back the same way. On a
        ``cuda_*`` variant Dr.Jit runs on its own CUDA stream: the call first waits for the torch work that
        produced ``rays`` (the current stream), and the torch work that reads the hits is ordered after the
        cast by the DLPack stream handshake (torch's current stream waits for Dr.Jit's). The hits are
        torch-owned copies there, so the torch caching allocator's usual stream rules apply to them.

        Args:
            rays: float32 torch tensor (N, 6), origin (3) and direction (3, any non-zero length), on
                :attr:`torch_device_type` (the GPU Dr.Jit uses for ``cuda_*``, the CPU for ``llvm_*``).

        Returns:
            ``(t, triangle, bary)`` torch tensors on the rays' device: float32 (N,) hit parameter in units of
            the direction's length (inf on a miss); int32 (N,) hit triangle, -1 on a miss (:data:`MISS` read
            as int32); float32 (N, 2) barycentric (u, v) as in :class:`RayHits` (0 on a miss). Normals are
            not returned: the shading looks them up per triangle.

        Raises:
            ValueError: the rays are not a (N, 6) tensor on this variant's device.
        """
        import torch

        dr, m = self._dr, self._m
        want = self.torch_device_type
        if not isinstance(rays, torch.Tensor) or rays.device.type != want:
            raise ValueError(f"cast_torch needs a torch tensor on {want!r} for Mitsuba variant {self.variant!r}")
        if rays.ndim != 2 or rays.shape[1] != 6:
            raise ValueError(f"rays must have shape (N, 6), got {tuple(rays.shape)}")
        n = rays.shape[0]
        if n == 0:
            return (torch.zeros(0, dtype=torch.float32, device=rays.device),
                    torch.zeros(0, dtype=torch.int32, device=rays.device),
                    torch.zeros((0, 2), dtype=torch.float32, device=rays.device))
        cuda = rays.device.type == "cuda"
        cols = rays.to(torch.float32).T.contiguous()  # (6, N): six flat arrays Dr.Jit maps without a copy
        x = [m.Float(cols[k]) for k in range(6)]  # zero-copy views (Dr.Jit keeps ``cols`` alive while it reads)
        d = m.Vector3f(x[3], x[4], x[5])
        length = dr.norm(d)  # as in cast(): unit directions for Mitsuba, t in units of |d|
        pi = self._scene.ray_intersect_preliminary(m.Ray3f(m.Point3f(x[0], x[1], x[2]), d / length), coherent=True)
        hit = pi.is_valid()
        t = dr.select(hit, pi.t / length, dr.inf)
        triangle = dr.select(hit, m.Int32(pi.prim_index), -1)
        u = dr.select(hit, pi.prim_uv.x, 0.0)
        v = dr.select(hit, pi.prim_uv.y, 0.0)
        if cuda:  # traced so far, nothing run: now Dr.Jit's stream may start reading the rays
            stream = torch.cuda.current_stream(rays.device)
            self._release_pending()
            stream.synchronize()
        dr.eval(t, triangle, u, v)  # one kernel for all outputs
        if not cuda:  # LLVM: .torch() synchronises; the tensors share Dr.Jit's (host) memory
            return t.torch(), triangle.torch(), torch.stack([u.torch(), v.torch()], dim=1)
        if stream.cuda_stream == 0:  # torch passes the legacy stream as 1, for which DLPack makes no handshake
            dr.sync_thread()
        out = t.torch().clone(), triangle.torch().clone(), torch.stack([u.torch(), v.torch()], dim=1)
        # The copies above are queued, maybe not run: keep Dr.Jit's arrays until they have (next call).
        done = torch.cuda.Event()
        done.record(stream)
        self._pending = (done, (t, triangle, u, v))
        return out

    def _release_pending(self) -> None:
        pending = getattr(self, "_pending", None)
        if pending is not None:
            pending[0].synchronize()
            self._pending = None


def available_backends() -> list[str]:
    """The ray-casting backends usable here: always ``open3d``; ``mitsuba`` when installed with a working
    CUDA device or libLLVM."""
    out = ["open3d"]
    try:
        mitsuba_variant()
    except (ImportError, RuntimeError):
        return out
    return out + ["mitsuba"]


def make_ray_caster(backend: str, vertices: np.ndarray, faces: np.ndarray) -> RayCaster:
    """A ray caster over one triangle mesh.

    Args:
        backend: ``open3d`` (CPU, Embree), ``mitsuba`` (Mitsuba 3: CUDA GPU if one works, else CPU via
            LLVM) or ``auto`` (Mitsuba on a working CUDA device, else Open3D).
        vertices: float32 (V, 3) metres.
        faces: int32 (F, 3).

    Raises:
        ValueError: an unknown backend name.
        ImportError: ``mitsuba`` asked for but not installed.
        RuntimeError: ``mitsuba`` asked for but neither a CUDA device nor libLLVM >= 15 works.
    """
    name = getattr(backend, "value", backend)
    if name not in BACKENDS:
        raise ValueError(f"unknown ray-casting backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if name == "auto":
        try:
            mi, dr = _import_mitsuba()
        except ImportError:
            name = "open3d"
        else:
            name = "mitsuba" if _cuda_usable(mi, dr) else "open3d"
    if name == "mitsuba":
        return MitsubaRayCaster(vertices, faces)
    return Open3DRayCaster(vertices, faces)
