"""Task 5, relative 3D position: where object B lies relative to object A, from depth, pose and object ids.

Each object's centre is the mean world point of its pixels: pixel ``(u, v)`` with z-depth ``d`` is
``p = ((u - cx) d / fx, -(v - cy) d / fy, -d)`` in the (OpenGL) camera frame and ``R p + t`` in the world,
``[R | t]`` the camera-to-world pose. With ``c_A``, ``c_B`` the two centres and ``delta = c_B - c_A``:

- **A's own frame**, when A has a yaw (the way it faces, radians about +Y, 0 = facing -Z): front
  ``f = (-sin yaw, 0, -cos yaw)``, right ``r = (cos yaw, 0, -sin yaw)``; B is right of A when
  ``delta . r > 0`` and in front of it when ``delta . f > 0`` (as seen by someone standing at A, facing
  where A faces).
- **The camera's frame** otherwise: right and forward are the camera's +X and viewing direction laid flat
  on the floor plane; B is right of A when it lies further along the camera's right, and in front of A
  when it is closer to the camera (``delta . forward < 0``). A camera-frame pair is asked only when the
  image agrees (:func:`camera_consistent`): B's centre projects right of A's exactly when B is right of A,
  and lies nearer the camera exactly when B is in front (perspective can make them differ).

Only pairs whose offsets clear ``min_offset`` metres on both axes are asked, so every answer has a margin.
Objects need ``min_pixels`` valid pixels, a visible extent (diagonal of the bounding box of their points) of
at most ``max_extent`` metres (drops walls and floors of scans whose ids carry no category), and with
``whole_objects`` must not touch the image border (their visible centre would be a part's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pairing.qa.objects import SceneObjects
from pairing.qa.tasks import QATask, Question, Skip, ViewData, make_question

SIDES = ("left", "right")
DEPTHS = ("front", "behind")


@dataclass(frozen=True)
class PositionConfig:
    """The relative-position task.

    Attributes:
        min_pixels: least number of valid pixels of an object, >= 1.
        max_extent: metres, > 0: largest diagonal of an object's visible points.
        min_offset: metres, >= 0: least offset of B from A along each of the two axes asked about.
        whole_objects: leave out objects that touch the image border.
    """

    min_pixels: int = 40
    max_extent: float = 3.0
    min_offset: float = 0.25
    whole_objects: bool = True

    def __post_init__(self) -> None:
        if int(self.min_pixels) != self.min_pixels or self.min_pixels < 1:
            raise ValueError(f"min_pixels must be a positive whole number, got {self.min_pixels}")
        if not (math.isfinite(self.max_extent) and self.max_extent > 0):
            raise ValueError(f"max_extent is a size in metres > 0, got {self.max_extent}")
        if not (math.isfinite(self.min_offset) and self.min_offset >= 0):
            raise ValueError(f"min_offset is a distance in metres >= 0, got {self.min_offset}")


@dataclass(frozen=True, eq=False)
class SeenObject:
    """One object as one view sees it.

    Attributes:
        key: index into the scene's :class:`SceneObjects` names, or ``semantic id - 1`` without a table.
        pixels: its valid pixels.
        box: ``(row0, col0, row1, col1)`` half-open pixel box of those pixels.
        centre: float64 (3,) mean world point, metres.
        extent: diagonal of the bounding box of its world points, metres.
        on_border: whether its pixels touch the image border.
    """

    key: int
    pixels: int
    box: tuple[int, int, int, int]
    centre: np.ndarray
    extent: float
    on_border: bool


def world_points(depth: np.ndarray, K: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """World point of every pixel (see the module docstring).

    Args:
        depth: (H, W) z-depth in metres.
        K: (3, 3) pixel-centre intrinsics.
        pose: (4, 4) camera-to-world.

    Returns:
        float64 (H, W, 3) metres (pixels of depth 0 land on the camera centre).
    """
    d = np.asarray(depth, np.float64)
    K, pose = np.asarray(K, np.float64), np.asarray(pose, np.float64)
    v, u = np.indices(d.shape, dtype=np.float64)  # (H, W) rows, columns
    cam = np.stack([(u - K[0, 2]) / K[0, 0] * d, -(v - K[1, 2]) / K[1, 1] * d, -d], axis=-1)  # (H, W, 3)
    return cam @ pose[:3, :3].T + pose[:3, 3]


def _object_keys(semantic: np.ndarray, valid: np.ndarray, objects: SceneObjects | None) -> np.ndarray:
    """(H, W) object key per pixel, -1 where none (no id, no depth, structure, an id beyond the table)."""
    ids = np.asarray(semantic).astype(np.int64) - 1  # (H, W)
    keys = np.full(ids.shape, -1, np.int64)
    ok = valid & (ids >= 0)
    if objects is None:
        keys[ok] = ids[ok]
        return keys
    ok &= ids < len(objects.group)
    keys[ok] = objects.group[ids[ok]]
    return keys


def seen_objects(depth: np.ndarray, semantic: np.ndarray, pose: np.ndarray, K: np.ndarray,
                 objects: SceneObjects | None) -> list[SeenObject]:
    """Every object with a valid pixel in a view, by increasing key.

    Args:
        depth: (H, W) z-depth in metres, 0 = no surface.
        semantic: (H, W) ``1 + object index``, 0 = none.
        pose: (4, 4) camera-to-world.
        K: (3, 3) intrinsics.
        objects: the scene's object table, or None (each id its own object).
    """
    depth = np.asarray(depth, np.float64)
    h, w = depth.shape
    keys = _object_keys(semantic, np.isfinite(depth) & (depth > 0), objects)
    sel = keys >= 0
    if not sel.any():
        return []
    rows, cols = np.nonzero(sel)  # (P,) each
    pts = world_points(depth, K, pose)[sel]  # (P, 3)
    uniq, inv, counts = np.unique(keys[sel], return_inverse=True, return_counts=True)
    g = len(uniq)
    centre = np.stack([np.bincount(inv, weights=pts[:, a], minlength=g) for a in range(3)], axis=1) / counts[:, None]
    lo, hi = np.full((g, 3), np.inf), np.full((g, 3), -np.inf)
    np.minimum.at(lo, inv, pts)
    np.maximum.at(hi, inv, pts)
    box = np.stack([np.full(g, h), np.full(g, w), np.zeros(g, np.int64), np.zeros(g, np.int64)], axis=1)
    np.minimum.at(box[:, 0], inv, rows)
    np.minimum.at(box[:, 1], inv, cols)
    np.maximum.at(box[:, 2], inv, rows + 1)
    np.maximum.at(box[:, 3], inv, cols + 1)
    border = (box[:, 0] == 0) | (box[:, 1] == 0) | (box[:, 2] == h) | (box[:, 3] == w)
    extent = np.linalg.norm(hi - lo, axis=1)
    return [SeenObject(key=int(uniq[i]), pixels=int(counts[i]), box=tuple(int(v) for v in box[i]),
                       centre=centre[i], extent=float(extent[i]), on_border=bool(border[i])) for i in range(g)]


def frame_axes(*, yaw: float | None = None, pose: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """Unit right and front vectors (3,) on the floor plane: an object's (``yaw``) or the camera's (``pose``).

    For the camera, "front" points back towards the camera (closer to it is in front); None when the
    camera looks straight up or down.
    """
    if yaw is not None and math.isfinite(yaw):
        return np.array([math.cos(yaw), 0.0, -math.sin(yaw)]), np.array([-math.sin(yaw), 0.0, -math.cos(yaw)])
    if pose is None:
        raise ValueError("frame_axes needs an object's yaw or the camera's pose")
    r = np.asarray(pose, np.float64)[:3, :3]
    right, forward = r[:, 0] * [1.0, 0.0, 1.0], -r[:, 2] * [1.0, 0.0, 1.0]
    if np.linalg.norm(forward) < 1e-6 or np.linalg.norm(right) < 1e-6:
        return None
    return right / np.linalg.norm(right), -forward / np.linalg.norm(forward)


def relative_offset(
    centre_a: np.ndarray, centre_b: np.ndarray, axes: tuple[np.ndarray, np.ndarray]
) -> tuple[float, float]:
    """(right, front) offset in metres of B's centre from A's along ``axes`` (from :func:`frame_axes`)."""
    delta = np.asarray(centre_b, np.float64) - np.asarray(centre_a, np.float64)
    return float(delta @ axes[0]), float(delta @ axes[1])


def image_column(centre: np.ndarray, pose: np.ndarray, K: np.ndarray) -> float:
    """Image column (pixels, may lie outside the image) where a world point projects; -inf behind the camera."""
    pose = np.asarray(pose, np.float64)
    cam = pose[:3, :3].T @ (np.asarray(centre, np.float64) - pose[:3, 3])  # (3,) OpenGL camera frame
    if cam[2] >= 0:
        return -math.inf
    return float(K[0, 0] * cam[0] / -cam[2] + K[0, 2])


def camera_consistent(a: SeenObject, b: SeenObject, right: float, front: float, view: ViewData) -> bool:
    """Whether a camera-frame answer agrees with what the image shows: B's centre projects right of A's
    exactly when ``right > 0``, and B's centre is nearer the camera exactly when ``front > 0``."""
    cam = np.asarray(view.pose, np.float64)[:3, 3]
    u_a, u_b = image_column(a.centre, view.pose, view.K), image_column(b.centre, view.pose, view.K)
    nearer = np.linalg.norm(b.centre - cam) < np.linalg.norm(a.centre - cam)
    return (u_b > u_a) == (right > 0) and nearer == (front > 0)


def _describe(objects: SceneObjects | None, key: int) -> tuple[str | None, str | None, float | None]:
    """(name, category, yaw or None) of an object."""
    if objects is None:
        return None, None, None
    yaw = float(objects.yaw[key])
    return objects.names[key], objects.category[key], yaw if math.isfinite(yaw) else None


def _pairs(seen: list[SeenObject], view: ViewData, config: PositionConfig) -> list[tuple]:
    """Ordered pairs (A, B, frame, right, front) whose offsets clear ``min_offset`` on both axes."""
    camera = frame_axes(pose=view.pose)
    out = []
    for a in seen:
        yaw = _describe(view.objects, a.key)[2]
        axes, frame = (frame_axes(yaw=yaw), "object") if yaw is not None else (camera, "camera")
        if axes is None:
            continue
        for b in seen:
            if b is a:
                continue
            right, front = relative_offset(a.centre, b.centre, axes)
            if min(abs(right), abs(front)) < config.min_offset:
                continue
            if frame == "object" or camera_consistent(a, b, right, front, view):
                out.append((a, b, frame, right, front))
    return out


def _prompt(frame: str, cat_a: str | None, cat_b: str | None) -> str:
    name_a = cat_a.replace("_", " ") if cat_a else "an object"
    name_b = cat_b.replace("_", " ") if cat_b else "an object"
    head = (f"Two objects are outlined in this image: A ({name_a}, red box) and B ({name_b}, blue box). "
            "Compare their centres.")
    if frame == "object":
        ask = ("Take A's own point of view: stand where A is and face the way A faces (its front). Is B on the "
               "left or on the right, and in front or behind?")
    else:
        ask = ("As seen from the camera, is B to the left or to the right of A, and in front of A (closer to the "
               "camera) or behind A (farther from the camera)?")
    return (f"{head} {ask} Answer with two words, left or right and then front or behind, separated by a comma, "
            "e.g. left, behind.")


def build_position(view: ViewData, rng: np.random.Generator, config: PositionConfig) -> Question | Skip:
    """Task 5: an ordered pair of objects drawn uniformly among those that clear the margins."""
    if view.depth is None or view.semantic is None:
        raise ValueError("the position task needs the view's depth and per-pixel object ids")
    seen = [o for o in seen_objects(view.depth, view.semantic, view.pose, view.K, view.objects)
            if o.pixels >= config.min_pixels and o.extent <= config.max_extent
            and not (config.whole_objects and o.on_border)]
    if len(seen) < 2:
        return Skip("fewer than two objects")
    pairs = _pairs(seen, view, config)
    if not pairs:
        return Skip("no two objects apart on both axes")
    a, b, frame, right, front = pairs[int(rng.integers(len(pairs)))]
    described = []
    for label, o in (("A", a), ("B", b)):
        name, cat, yaw = _describe(view.objects, o.key)
        described.append({"label": label, "object": o.key, "name": name, "category": cat,
                          "yaw": None if yaw is None else round(yaw, 6), "box": list(o.box), "pixels": o.pixels,
                          "centre_m": [round(float(x), 4) for x in o.centre]})
    answer = [SIDES[right > 0], DEPTHS[front <= 0]]
    meta = {"frame": frame, "objects": described, "offset_m": {"right": round(right, 4), "front": round(front, 4)},
            "bearing_deg": round(math.degrees(math.atan2(right, front)), 2), "min_offset_m": config.min_offset}
    prompt = _prompt(frame, described[0]["category"], described[1]["category"])
    return make_question(QATask.POSITION, prompt, answer, ", ".join(answer), meta, view.rgb)
