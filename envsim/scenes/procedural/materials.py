"""PBR materials (flat, tinted detail texture, colour texture) and the per-house bank that builds and caches them.

A material carries the size in metres of one texture repeat, which sets the UV scale of the meshes using it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh
from PIL import Image

from envsim.scenes.procedural.palette import RGB
from envsim.scenes.procedural.textures import tex_grey


@dataclass(frozen=True, eq=False)
class Mat:
    """A PBR material and the size in metres of one texture repeat (None: untextured, no UVs)."""

    pbr: trimesh.visual.material.PBRMaterial
    tile: float | None


class MaterialBank:
    """Builds and caches materials; shared detail textures are drawn once per house."""

    def __init__(self, rng: np.random.Generator, size: int) -> None:
        """Draw the shared detail textures.

        Args:
            rng: source of the draws (paint, ceiling, fabric, grain textures, in that order).
            size: pixels per side of every texture.
        """
        self.size = size
        self._cache: dict[tuple, Mat] = {}
        self._detail = {
            kind: Image.fromarray(tex_grey(rng, size, kind), "RGB") for kind in ("paint", "ceiling", "fabric", "grain")
        }
        self._detail_tile = {"paint": 1.0, "ceiling": 1.0, "fabric": 0.5, "grain": 1.2}

    @staticmethod
    def _factor(rgb: RGB) -> list[int]:
        """RGBA 0-255 colour factor of an sRGB colour in [0, 1], opaque."""
        return [round(c * 255) for c in rgb] + [255]

    def flat(self, rgb: RGB) -> Mat:
        """An untextured material of colour ``rgb`` (sRGB in [0, 1])."""
        factor = self._factor(rgb)
        key = ("flat", *factor)
        if key not in self._cache:
            name = "flat_" + "".join(f"{c:02x}" for c in factor[:3])
            pbr = trimesh.visual.material.PBRMaterial(
                name=name, baseColorFactor=factor, metallicFactor=0.0, roughnessFactor=0.8
            )
            self._cache[key] = Mat(pbr, None)
        return self._cache[key]

    def tinted(self, kind: str, rgb: RGB) -> Mat:
        """A shared greyscale detail texture (paint, ceiling, fabric, grain) tinted by ``rgb``."""
        if kind == "grain" and max(rgb) - min(rgb) < 0.08:
            kind = "paint"  # white, grey and black furniture is lacquered, not grained
        factor = self._factor(rgb)
        key = (kind, *factor)
        if key not in self._cache:
            name = f"{kind}_" + "".join(f"{c:02x}" for c in factor[:3])
            pbr = trimesh.visual.material.PBRMaterial(
                name=name,
                baseColorTexture=self._detail[kind],
                baseColorFactor=factor,
                metallicFactor=0.0,
                roughnessFactor=0.9,
            )
            self._cache[key] = Mat(pbr, self._detail_tile[kind])
        return self._cache[key]

    def textured(self, name: str, image: np.ndarray, tile: float) -> Mat:
        """A colour texture (uint8 (S, S, 3)) repeating every ``tile`` metres."""
        pbr = trimesh.visual.material.PBRMaterial(
            name=name,
            baseColorTexture=Image.fromarray(image, "RGB"),
            baseColorFactor=[255, 255, 255, 255],
            metallicFactor=0.0,
            roughnessFactor=0.8,
        )
        return Mat(pbr, tile)
