"""RGB-D rendering on top of a ray-casting backend: z-depth, texture/vertex-colour lookup, diffuse
lighting, per-pixel semantic ids and the room label of each camera.

Rays are generated for a batch of views at once and cast in one call; every step after the cast is a
vectorised gather over hits, so there are no per-pixel Python loops. The steps around the cast exist twice,
as fused numba kernels on host arrays (:mod:`envsim.render.kernels`) and as torch code on any device
(:mod:`envsim.render.shade_torch`, the GPU path with Mitsuba), both held against the numpy reference here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

import numpy as np

from envsim.camera import Intrinsics, camera_rays, make_intrinsics, quat_to_matrix
from envsim.render.raycast import MISS, RayCaster, make_ray_caster
from envsim.scenes.scene import Scene

if TYPE_CHECKING:
    import torch


class Backend(str, Enum):
    """Which ray caster renders (see :func:`envsim.render.raycast.make_ray_caster`)."""

    OPEN3D = "open3d"  # CPU, Embree through Open3D (the default)
    MITSUBA = "mitsuba"  # Mitsuba 3 / Dr.Jit: CUDA GPU when one works, else CPU via LLVM (extra "gpu")
    AUTO = "auto"  # Mitsuba on a working CUDA device, else Open3D


class Shading(str, Enum):
    """How surfaces are coloured (Habitat shows scans unlit: ``"shader_type": "flat"``)."""

    AUTO = "auto"  # flat where the asset's material asks for it (Material.unlit), lit elsewhere
    LIT = "lit"  # half-Lambert lighting everywhere (LightingConfig)
    FLAT = "flat"  # the albedo itself everywhere: texture * vertex colour * factor, no lighting


class SemanticMode(str, Enum):
    """What the optional per-pixel ``semantic`` image holds (0 always means no surface)."""

    NONE = "none"
    OBJECT = "object"  # object (mesh node) index + 1; the dataset's instance id + 1 for annotated scans
    ROOM = "room"  # ROOM_NAMES index + 1 of the room the surface belongs to


@dataclass(frozen=True)
class LightingConfig:
    """Half-Lambert lighting: shade = ambient + diffuse * (0.5 + 0.5 * n.l).

    Attributes:
        ambient: ambient term in [0, 1].
        diffuse: directional term in [0, 1].
        direction: world direction towards the light (normalised on use).
        jitter: when True each view gets its own light direction and intensities (the ESS lighting
            augmentation), drawn from the view's seed; when False all views share the values above.
    """

    ambient: float = 0.35
    diffuse: float = 0.65
    direction: tuple[float, float, float] = (0.3, 1.0, 0.2)
    jitter: bool = False

    def __post_init__(self) -> None:
        if not (0 <= self.ambient <= 1 and 0 <= self.diffuse <= 1):
            raise ValueError("lighting ambient and diffuse must lie in [0, 1]")
        if np.linalg.norm(self.direction) == 0:
            raise ValueError("lighting direction must be non-zero")


@dataclass(frozen=True)
class RenderConfig:
    """How views are rendered.

    Attributes:
        width: image width in pixels.
        height: image height in pixels.
        hfov_deg: horizontal field of view in degrees (Habitat's default is 90).
        max_depth: z-depth in metres beyond which a pixel counts as no surface (depth 0).
        semantic: which per-pixel ids to produce.
        batch_views: views per ray-casting call.
        lighting: the lighting model.
        backend: the ray-casting backend.
        shading: lit or flat surfaces (see :class:`Shading`). A flat pixel is its albedo; with
            ``lighting.jitter`` it is scaled by the view's light intensity relative to the configured one
            (brightness varies, no direction), without jitter by exactly 1.
    """

    width: int = 128
    height: int = 128
    hfov_deg: float = 90.0
    max_depth: float = 20.0
    semantic: SemanticMode = SemanticMode.NONE
    batch_views: int = 32
    lighting: LightingConfig = LightingConfig()
    backend: Backend = Backend.OPEN3D
    shading: Shading = Shading.AUTO

    def __post_init__(self) -> None:
        for name, kind, what in (("shading", Shading, "shading"), ("backend", Backend, "render backend")):
            value = getattr(self, name)
            if not isinstance(value, kind):
                try:
                    object.__setattr__(self, name, kind(value))
                except ValueError:
                    choices = ", ".join(m.value for m in kind)
                    raise ValueError(f"unknown {what} {value!r}; choose one of {choices}") from None
        if self.width < 1 or self.height < 1:
            raise ValueError(f"image size must be positive, got {self.width}x{self.height}")
        if self.width * self.height > 8192 * 8192:
            raise ValueError(f"image size {self.width}x{self.height} is too large (at most 8192x8192)")
        if not 0 < self.hfov_deg < 180:
            raise ValueError(f"--hfov must lie strictly between 0 and 180 degrees, got {self.hfov_deg}")
        if self.max_depth <= 0:
            raise ValueError("max_depth must be positive")
        if self.batch_views < 1:
            raise ValueError("batch_views must be >= 1")

    @property
    def intrinsics(self) -> Intrinsics:
        return make_intrinsics(width=self.width, height=self.height, hfov_deg=self.hfov_deg)


@dataclass(frozen=True)
class Views:
    """A batch of rendered views.

    Attributes:
        rgb: uint8 (B, H, W, 3).
        depth: float32 (B, H, W) z-depth in metres, 0 = no surface within range.
        semantic: uint16 or uint32 (B, H, W) ids (see :class:`SemanticMode`), or None.
        room: int32 (B,) room of each camera position (index into ROOM_NAMES), -1 unknown.
        light: float32 (B, 5) light direction (3), ambient, diffuse used for each view (flat surfaces
            ignore it; see :attr:`RenderConfig.shading`).
    """

    rgb: np.ndarray
    depth: np.ndarray
    semantic: np.ndarray | None
    room: np.ndarray
    light: np.ndarray


class Renderer:
    """Renders RGB-D views of one scene.

    Two implementations of everything around the cast give the same images (``tests/test_shade_torch.py``):

    * the **numba path** (CPU): rays, hits and shading in host memory, fused numba kernels;
    * the **torch path** (:mod:`envsim.render.shade_torch`): rays made, cast (Mitsuba's ``cast_torch``) and shaded
      as torch tensors on ``device``; on a GPU only the finished uint8 RGB, float32 depth and semantic ids
      are copied to the host, each chunk's copy overlapping the next chunk's work.

    Which one runs is decided here, not in :class:`RenderConfig` (it changes no output beyond float rounding,
    so datasets keep their config): ``device=None`` picks the torch path on CUDA when the caster is Mitsuba
    on a CUDA device (``cuda_ad_rgb``) and torch sees that GPU, else the numba path; ``device="cpu"`` or
    ``"cuda"`` asks for the torch path there (with a caster that cannot cast on that device, rays go through
    the host for the cast only).

    Args:
        scene: the scene, in the Y-up world frame.
        config: render settings.
        caster: a ray-casting backend over ``scene``'s triangles; ``config.backend`` when omitted.
        device: ``None`` (automatic, see above), ``"cpu"``, ``"cuda"`` or a ``torch.device``.
        chunk_rays: rays per cast-and-shade step of the torch path (device memory bound; see
            :class:`envsim.render.shade_torch.DeviceRenderPath`).
        compile_shading: run the torch path's shading through ``torch.compile`` (fused kernels: several
            times less device memory traffic; compiles on first use; see
            :func:`envsim.render.shade_torch.compiled_shade`).

    Raises:
        ValueError: an unknown device, or ``"cuda"`` without a CUDA device that torch can use.
        ImportError: the torch path asked for without torch installed.
    """

    def __init__(
        self,
        scene: Scene,
        config: RenderConfig,
        caster: RayCaster | None = None,
        *,
        device: str | torch.device | None = None,
        chunk_rays: int | None = None,
        compile_shading: bool = False,
    ):
        self.scene = scene
        self.config = config
        self.intrinsics = config.intrinsics
        if caster is None:
            caster = make_ray_caster(config.backend.value, scene.vertices, scene.faces)
        self.caster = caster
        self._dirs_cam = camera_rays(self.intrinsics).reshape(-1, 3)  # (HW, 3), z = -1
        self._pack_surfaces()
        self.device_path = None  # the torch path (envsim.render.shade_torch.DeviceRenderPath), None on the numba path
        torch_device = _torch_device(device, caster)
        if torch_device is not None:
            self.device_path = self._make_device_path(torch_device, chunk_rays, compile_shading)

    @property
    def device(self) -> torch.device | None:
        """The ``torch.device`` of the torch path, or None on the numba path."""
        return None if self.device_path is None else self.device_path.device

    def _make_device_path(self, device, chunk_rays: int | None, compile_shading: bool):
        from envsim.render.shade_torch import DEFAULT_CHUNK_RAYS, DeviceRenderPath, face_normals, upload_surfaces

        surfaces = upload_surfaces(
            face_uv=self._face_uv, face_col=self._face_col, face_factor=self._face_factor,
            face_tex_offset=self._face_tex_offset, face_tex_hw=self._face_tex_hw, texels=self._texels,
            face_normal=face_normals(self.scene.vertices, self.scene.faces), face_semantic=self._face_semantic,
            semantic_dtype=self._semantic_dtype, face_flat=self._face_flat if self._face_flat.size else None,
            device=device,
        )
        return DeviceRenderPath(
            surfaces=surfaces, dirs_cam=self._dirs_cam, caster=self.caster, max_depth=self.config.max_depth,
            semantic_dtype=self._semantic_dtype if self._face_semantic is not None else None,
            chunk_rays=chunk_rays or DEFAULT_CHUNK_RAYS, compile=compile_shading,
        )

    def _pack_surfaces(self) -> None:
        """Per-face colour inputs and all textures packed into one flat texel array."""
        s = self.scene
        self._face_uv = np.ascontiguousarray(s.uv[s.faces])  # (F, 3, 2)
        self._face_col = np.ascontiguousarray(s.color[s.faces])  # (F, 3, 3)
        factors = np.stack([m.factor for m in s.materials]).astype(np.float32)  # (M, 3)
        self._face_factor = np.ascontiguousarray(factors[s.face_material])  # (F, 3)
        texels, offsets, sizes = [], [], []
        offset = 0
        for m in s.materials:
            tex = m.texture if m.texture is not None else np.full((1, 1, 3), 255, np.uint8)
            texels.append(tex.reshape(-1, 3))
            offsets.append(offset)
            sizes.append(tex.shape[:2])
            offset += tex.shape[0] * tex.shape[1]
        self._texels = np.ascontiguousarray(np.concatenate(texels).astype(np.float32) / 255.0)  # (T, 3)
        self._face_tex_offset = np.asarray(offsets, np.int64)[s.face_material]  # (F,)
        self._face_tex_hw = np.ascontiguousarray(np.asarray(sizes, np.int64)[s.face_material])  # (F, 2)
        self._face_flat = self._flat_faces()  # uint8 (F,) 1 = unlit, or (0,) when every face is lit
        self._face_semantic = None
        if self.config.semantic is SemanticMode.OBJECT:
            ids = s.face_instance if s.face_instance is not None else s.face_object  # the dataset's ids when it has them
            self._face_semantic = ids.astype(np.int64) + 1
        elif self.config.semantic is SemanticMode.ROOM:
            labels = np.array([r.index for r in s.rooms] + [-1], dtype=np.int64)
            obj_room = labels[np.where(s.object_room >= 0, s.object_room, len(s.rooms))]
            self._face_semantic = obj_room[s.face_object] + 1  # -1 -> 0 (unknown)
        # Room ids fit in uint16; object ids may not (large scans have >65k objects).
        self._semantic_dtype = np.uint16 if self.config.semantic is SemanticMode.ROOM else np.uint32

    def _flat_faces(self) -> np.ndarray:
        """uint8 (F,) 1 where a face is shown unlit under :attr:`RenderConfig.shading`; (0,) when none is."""
        s, mode = self.scene, self.config.shading
        if mode is Shading.FLAT:
            return np.ones(s.n_triangles, np.uint8)
        unlit = np.array([bool(m.unlit) for m in s.materials], bool)
        if mode is Shading.LIT or not unlit.any():
            return np.zeros(0, np.uint8)
        return unlit[s.face_material].astype(np.uint8)

    def flat_gain(self, light: np.ndarray) -> np.ndarray:
        """float32 (B,) brightness of flat surfaces in each view: 1 without lighting jitter, else the view's
        ambient + diffuse over the configured ambient + diffuse."""
        cfg = self.config.lighting
        if not cfg.jitter or cfg.ambient + cfg.diffuse == 0:
            return np.ones(len(light), np.float32)
        return ((light[:, 3].astype(np.float64) + light[:, 4]) / (cfg.ambient + cfg.diffuse)).astype(np.float32)

    def _shade_light(self, light: np.ndarray) -> np.ndarray:
        """float32 (B, 6): the per-view lighting and, last, the flat-surface gain (what the shaders read)."""
        return np.ascontiguousarray(np.concatenate([light, self.flat_gain(light)[:, None]], axis=1), np.float32)

    def lights(self, seeds: np.ndarray) -> np.ndarray:
        """Per-view lighting (B, 5): direction (3, unit), ambient, diffuse; from per-view seeds when jittered."""
        cfg = self.config.lighting
        d = np.asarray(cfg.direction, np.float64)
        d = d / np.linalg.norm(d)
        out = np.tile(np.concatenate([d, [cfg.ambient, cfg.diffuse]]), (len(seeds), 1))
        if cfg.jitter:
            for i, seed in enumerate(seeds):
                rng = np.random.default_rng(int(seed))
                az = rng.uniform(0, 2 * np.pi)
                el = rng.uniform(np.radians(20), np.radians(85))
                out[i, :3] = [np.cos(el) * np.cos(az), np.sin(el), np.cos(el) * np.sin(az)]
                out[i, 3] = cfg.ambient * rng.uniform(0.6, 1.4)
                out[i, 4] = cfg.diffuse * rng.uniform(0.6, 1.4)
        return out.astype(np.float32)

    def rays(self, position: np.ndarray, rotation: np.ndarray) -> np.ndarray:
        """World rays of a batch of cameras, float32 (B*H*W, 6): origin, direction.

        Directions are scaled so that the hit parameter is the z-depth in metres.
        """
        from envsim.render.kernels import make_rays

        position = np.ascontiguousarray(np.asarray(position, np.float32).reshape(-1, 3))
        r = quat_to_matrix(np.asarray(rotation, np.float64).reshape(-1, 4)).astype(np.float32)  # (B, 3, 3)
        out = np.empty((position.shape[0] * self._dirs_cam.shape[0], 6), np.float32)
        make_rays(position, np.ascontiguousarray(r), self._dirs_cam, out)
        return out

    def render(self, position: np.ndarray, rotation: np.ndarray, light_seeds: np.ndarray | None = None) -> Views:
        """Render a batch of views.

        Args:
            position: (B, 3) camera centres in metres.
            rotation: (B, 4) camera-to-world unit quaternions (w, x, y, z).
            light_seeds: (B,) integer seeds for per-view lighting jitter (ignored without jitter).

        Returns:
            The rendered views.
        """
        from envsim.render.kernels import shade_hits

        position = np.asarray(position, np.float64).reshape(-1, 3)
        b = position.shape[0]
        h, w = self.intrinsics.height, self.intrinsics.width
        light = self.lights(np.zeros(b, np.int64) if light_seeds is None else np.asarray(light_seeds))
        if self.device_path is not None:
            return self._render_device(position, rotation, light)
        rays = self.rays(position, rotation)
        hits = self.caster.cast(rays)
        n = rays.shape[0]
        rgb = np.empty((n, 3), np.uint8)
        depth = np.empty(n, np.float32)
        semantic = np.empty(n if self._face_semantic is not None else 0, self._semantic_dtype)
        shade_hits(
            hits.t, hits.triangle, hits.bary, hits.normal, rays, self._shade_light(light), h * w,
            np.float32(self.config.max_depth), self._face_uv, self._face_col, self._face_factor,
            self._face_tex_offset, self._face_tex_hw, self._texels, self._face_flat,
            self._face_semantic if self._face_semantic is not None else np.zeros(0, np.int64),
            rgb, depth, semantic,
        )
        return self._views(b, rgb, depth, semantic if self._face_semantic is not None else None, position, light)

    def _views(self, b: int, rgb, depth, semantic, position: np.ndarray, light: np.ndarray) -> Views:
        """Per-pixel outputs (B*H*W, ...) as images, with each camera's room."""
        h, w = self.intrinsics.height, self.intrinsics.width
        return Views(
            rgb=rgb.reshape(b, h, w, 3),
            depth=depth.reshape(b, h, w),
            semantic=None if semantic is None else semantic.reshape(b, h, w),
            room=self.scene.room_at(position),
            light=light,
        )

    def _render_device(self, position: np.ndarray, rotation: np.ndarray, light: np.ndarray) -> Views:
        """:meth:`render` on the torch path: only finished pixels come back from the device."""
        rgb, depth, semantic = self.device_path.render(position, rotation, self._shade_light(light))
        return self._views(position.shape[0], rgb, depth, semantic, position, light)

    def render_reference(self, position: np.ndarray, rotation: np.ndarray, light_seeds: np.ndarray | None = None) -> Views:
        """:meth:`render` in plain numpy, step by step: slow, for tests and as the readable definition."""
        position = np.asarray(position, np.float64).reshape(-1, 3)
        b = position.shape[0]
        h, w = self.intrinsics.height, self.intrinsics.width
        light = self.lights(np.zeros(b, np.int64) if light_seeds is None else np.asarray(light_seeds))
        r = quat_to_matrix(np.asarray(rotation, np.float64).reshape(-1, 4)).astype(np.float32)
        dirs = np.einsum("bij,pj->bpi", r, self._dirs_cam).reshape(-1, 3)  # (B*HW, 3)
        origins = np.repeat(position.astype(np.float32), h * w, axis=0)
        hits = self.caster.cast(np.concatenate([origins, dirs], axis=1))
        valid = (hits.triangle != MISS) & (hits.t <= self.config.max_depth)
        depth = np.where(valid, hits.t, 0.0).astype(np.float32)
        rgb, semantic = self.shade_reference(hits, dirs, light, valid)
        return self._views(b, rgb, depth, semantic, position, light)

    def shade_reference(
        self, hits, dirs: np.ndarray, light: np.ndarray, valid: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Colour and label the hits (numpy reference of the fused kernel).

        albedo = material factor * interpolated vertex colour * bilinear texture(uv);
        rgb = albedo * (ambient + diffuse * (0.5 + 0.5 * n.l)), n facing the camera, on lit faces;
        rgb = albedo * flat gain (:meth:`flat_gain`) on flat ones.

        Args:
            hits: the backend's :class:`~envsim.render.raycast.RayHits` for N = B*H*W rays.
            dirs: float32 (N, 3) ray directions.
            light: float32 (B, 5) per-view lighting.
            valid: bool (N,) rays with a surface within range.

        Returns:
            uint8 (N, 3) RGB (black where invalid) and the (N,) semantic ids or None.
        """
        n = dirs.shape[0]
        per_view = n // light.shape[0]
        idx = np.flatnonzero(valid)
        f = hits.triangle[idx].astype(np.int64)
        u, v = hits.bary[idx, 0:1], hits.bary[idx, 1:2]
        w0 = 1.0 - u - v  # (M, 1)
        fuv = self._face_uv[f]  # (M, 3, 2)
        uv = w0 * fuv[:, 0] + u * fuv[:, 1] + v * fuv[:, 2]  # (M, 2)
        fc = self._face_col[f]  # (M, 3, 3)
        albedo = (w0 * fc[:, 0] + u * fc[:, 1] + v * fc[:, 2]) * self._face_factor[f]  # (M, 3)
        albedo *= self._sample_textures(uv, self._face_tex_offset[f], self._face_tex_hw[f])
        normal = hits.normal[idx]  # (M, 3)
        facing = np.einsum("ij,ij->i", normal, dirs[idx])
        normal = np.where(facing[:, None] > 0, -normal, normal)  # towards the camera
        lv = light[idx // per_view]  # (M, 5)
        ndotl = np.einsum("ij,ij->i", normal, lv[:, :3])
        shade = lv[:, 3] + lv[:, 4] * (0.5 + 0.5 * ndotl)  # (M,)
        if self._face_flat.size:
            gain = self.flat_gain(light)[idx // per_view]
            shade = np.where(self._face_flat[f] == 1, gain, shade)
        rgb = np.zeros((n, 3), np.uint8)
        rgb[idx] = np.clip(albedo * shade[:, None] * 255.0 + 0.5, 0, 255).astype(np.uint8)
        semantic = None
        if self._face_semantic is not None:
            semantic = np.zeros(n, self._semantic_dtype)
            semantic[idx] = self._face_semantic[f]
        return rgb, semantic

    def _sample_textures(self, uv: np.ndarray, offset: np.ndarray, hw: np.ndarray) -> np.ndarray:
        """Bilinear REPEAT sampling of each hit's texture at ``uv`` (OpenGL convention), (M, 3) in [0, 1]."""
        th, tw = hw[:, 0], hw[:, 1]
        x = uv[:, 0].astype(np.float64) * tw - 0.5
        y = (1.0 - uv[:, 1].astype(np.float64)) * th - 0.5
        x0, y0 = np.floor(x), np.floor(y)
        fx, fy = (x - x0)[:, None], (y - y0)[:, None]
        x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
        xa, xb = x0 % tw, (x0 + 1) % tw
        ya, yb = y0 % th, (y0 + 1) % th
        t = self._texels
        top = t[offset + ya * tw + xa] * (1 - fx) + t[offset + ya * tw + xb] * fx
        bot = t[offset + yb * tw + xa] * (1 - fx) + t[offset + yb * tw + xb] * fx
        return (top * (1 - fy) + bot * fy).astype(np.float32)


def _torch_device(device: str | torch.device | None, caster: RayCaster) -> torch.device | None:
    """The ``torch.device`` of the torch path for a :class:`Renderer`'s ``device`` argument, or None for the
    numba path (see :class:`Renderer`)."""
    if device is None:
        if not str(getattr(caster, "variant", "")).startswith("cuda_"):
            return None  # the numba path, without importing torch
        try:
            import torch
        except ImportError:
            return None  # Mitsuba on CUDA, shading on the CPU: hits come to the host
        return torch.device("cuda") if torch.cuda.is_available() else None
    try:
        import torch
    except ImportError as e:
        raise ImportError(f"the torch render path (device={device!r}) needs torch: pip install torch ({e})") from e
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise ValueError(f"unknown render device {device!r}; use None (automatic), 'cpu' or 'cuda'")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"render device {device!r} asked for, but torch sees no CUDA device (torch {torch.__version__}); "
            "use device='cpu' or install a CUDA build of torch"
        )
    return dev
