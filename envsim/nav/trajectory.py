"""Camera trajectories of an agent walking the navigable space of a scene.

A scene's ``views`` are split into trajectories of ``views_per_trajectory`` consecutive steps (the last one
may be shorter). Each view is a camera ``camera_height`` metres above the floor point the agent stands on,
looking along the agent's heading (yaw; yaw 0 looks down -Z, positive yaw turns left, see
:func:`envsim.camera.quat_from_yaw_pitch_roll`), optionally with Gaussian pitch and roll jitter.

Start points: with ``regions`` (the room polygon of every navigable cell, from the scene's room
annotations) and ``starts_by_room``, the trajectories of a scene start in every room: each room with
navigable floor gets one trajectory when there are at least as many trajectories as rooms, the rest go to
rooms in proportion to their floor area (largest remainders); with fewer trajectories than rooms, distinct
rooms are drawn with probability proportional to area. Rooms are assigned to trajectories in random order,
and each start is uniform over its room's cells. Without rooms a start is uniform over the navigable area.

Modes (:class:`TrajectoryMode`):

- ``random_walk``: a smooth random walk. The turn rate itself random-walks (mean-reverting, clipped to
  ``max_turn_deg`` per step); the agent steps ``step_size`` forward when the straight walk there stays on
  navigable cells, and otherwise turns in place, by ``max_turn_deg`` per step, towards the side where free
  space is nearest. It never leaves the navigable space nor crosses a wall. With ``explore`` the walk
  wanders from room to room: the turn rate is pulled (with its noise) towards the next corner of the
  shortest path to a goal, drawn in another room (anywhere on the agent's island when the scene has no
  rooms), and a new goal is drawn on arrival; otherwise a walk rarely finds a doorway and stays in the room
  it starts in.
- ``tour``: shortest-path tours between random goals (:meth:`NavGrid.shortest_path`; with the scene's
  navmesh, Detour's straight paths on it, :meth:`NavMesh.shortest_path`, and floor heights on its detail
  mesh), resampled every ``step_size`` metres along the path. The heading follows the walking direction;
  when the path turns more than ``max_turn_deg``, the agent first rotates in place, by at most
  ``max_turn_deg`` per view.
- ``coverage``: positions spread uniformly over the navigable area (systematic sampling of walkable cells
  ordered block by block in a serpentine, one view per ``area / views`` square metres), random yaw; a
  "trajectory" is a chunk of consecutive views of one region, not a walk.
"""

from __future__ import annotations

import logging
import math
import operator
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

import numpy as np

from envsim.camera import quat_from_yaw_pitch_roll
from envsim.nav.grid import NavGrid

if TYPE_CHECKING:
    from envsim.nav.navmesh import NavMesh

log = logging.getLogger(__name__)

_TURN_RATE_DECAY = 0.9
"""Random walk: the turn rate keeps this fraction of itself from one step to the next..."""
_TURN_RATE_NOISE = 0.25
"""...plus Gaussian noise of this many ``max_turn_deg`` (standard deviation)."""
_MAX_GOAL_TRIES = 8


class TrajectoryMode(str, Enum):
    """How the agent moves through a scene."""

    RANDOM_WALK = "random_walk"
    TOUR = "tour"
    COVERAGE = "coverage"


@dataclass(frozen=True)
class TrajectoryConfig:
    """How views of one scene are sampled.

    Attributes:
        mode: how the agent moves (a :class:`TrajectoryMode` or its value, e.g. ``"tour"``).
        views: views per scene, >= 1.
        views_per_trajectory: a scene's views are split into trajectories of this many steps, >= 1.
        step_size: metres walked between consecutive views (horizontal), > 0.
        max_turn_deg: largest heading change between consecutive views in degrees, in (0, 180].
        camera_height: camera height above the floor in metres (Habitat's default sensor height).
        pitch_jitter_deg: standard deviation of per-view pitch noise in degrees, >= 0.
        roll_jitter_deg: standard deviation of per-view roll noise in degrees, >= 0.
        lookahead: random walk only: metres of free floor the agent wants ahead of it; when the way is
            blocked closer than that it starts turning towards the freer side, so it rarely ends up
            facing a wall from a few centimetres (0 disables: turn only when the next step is blocked).
        starts_by_room: random walks and tours start in every room, by area (module docstring), when the
            scene has room annotations; False: uniformly over the navigable area.
        explore: random walk only: wander from room to room towards goals (module docstring); False: a
            plain smooth random walk.
    """

    mode: TrajectoryMode = TrajectoryMode.RANDOM_WALK
    views: int = 200
    views_per_trajectory: int = 50
    step_size: float = 0.25
    max_turn_deg: float = 20.0
    camera_height: float = 1.5
    pitch_jitter_deg: float = 0.0
    roll_jitter_deg: float = 0.0
    lookahead: float = 1.0
    starts_by_room: bool = True
    explore: bool = True

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "mode", TrajectoryMode(self.mode))
        except ValueError:
            choices = ", ".join(m.value for m in TrajectoryMode)
            raise ValueError(f"mode must be one of {choices}; got {self.mode!r}") from None
        for name in ("views", "views_per_trajectory"):
            value = getattr(self, name)
            try:
                if isinstance(value, bool):
                    raise TypeError
                value = operator.index(value)
            except TypeError:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}") from None
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
            object.__setattr__(self, name, int(value))
        if not (math.isfinite(self.step_size) and self.step_size > 0):
            raise ValueError(f"step_size must be a positive number of metres (e.g. 0.25), got {self.step_size}")
        if not 0.0 < self.max_turn_deg <= 180.0:
            raise ValueError(f"max_turn_deg must lie in (0, 180] degrees (e.g. 20), got {self.max_turn_deg}")
        if not (math.isfinite(self.camera_height) and self.camera_height >= 0):
            raise ValueError(f"camera_height must be >= 0 metres (e.g. 1.5), got {self.camera_height}")
        if not (math.isfinite(self.lookahead) and self.lookahead >= 0):
            raise ValueError(f"lookahead must be >= 0 metres (0 disables it), got {self.lookahead}")
        for name in ("pitch_jitter_deg", "roll_jitter_deg"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a standard deviation >= 0 degrees (0 disables it), got {value}")

    @property
    def trajectory_lengths(self) -> list[int]:
        """Number of views of each trajectory of a scene, in order."""
        full, rest = divmod(self.views, self.views_per_trajectory)
        return [self.views_per_trajectory] * full + ([rest] if rest else [])


@dataclass(frozen=True, eq=False)
class Trajectories:
    """The views of one scene, trajectory by trajectory, steps in order.

    Attributes:
        position: float64 (N, 3) camera centres in metres (floor point + ``camera_height`` on Y).
        rotation: float64 (N, 4) unit quaternions (w, x, y, z), camera-to-world.
        trajectory: int32 (N,) trajectory index within the scene.
        step: int32 (N,) step index within its trajectory.
    """

    position: np.ndarray
    rotation: np.ndarray
    trajectory: np.ndarray
    step: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.position)
        shapes = {"position": (n, 3), "rotation": (n, 4), "trajectory": (n,), "step": (n,)}
        for name, shape in shapes.items():
            if np.shape(getattr(self, name)) != shape:
                raise ValueError(f"{name} must have shape {shape}, got {np.shape(getattr(self, name))}")

    def __len__(self) -> int:
        return len(self.position)


def sample_trajectories(
    nav: NavGrid,
    *,
    config: TrajectoryConfig,
    rng: np.random.Generator,
    regions: np.ndarray | None = None,
    navmesh: NavMesh | None = None,
) -> Trajectories:
    """Camera poses of an agent moving through the navigable space of one scene.

    Args:
        nav: the scene's navigable space.
        config: mode, counts and agent settings.
        rng: source of randomness; the same seed gives the same arrays.
        regions: int (rows, cols) like ``nav.walkable``: the room (any id >= 0, e.g. a polygon index) of
            every cell, -1 where none; trajectories start in every room (module docstring). None: no rooms.
        navmesh: the navmesh ``nav`` was rasterised from (:func:`envsim.nav.navmesh.navmesh_to_grid`): tours
            then walk its straight paths (:meth:`NavMesh.shortest_path`) at its detail-mesh heights, as
            Habitat-Sim's agent would. Starts and goals are still drawn on ``nav``. None: paths on ``nav``.

    Returns:
        Exactly ``config.views`` views.

    Raises:
        ValueError: if ``nav`` has no walkable cell.
    """
    if not np.any(nav.walkable):
        raise ValueError("the navigation grid has no walkable cell; rebuild it with a smaller agent_radius")
    lengths = config.trajectory_lengths
    if config.mode is TrajectoryMode.COVERAGE:
        floor, yaw = _coverage(nav, config.views, rng)
    else:
        walk = _random_walk if config.mode is TrajectoryMode.RANDOM_WALK else _tour
        use_rooms = config.starts_by_room and regions is not None
        starts = _room_starts(nav, regions, len(lengths), rng) if use_rooms else [None] * len(lengths)
        if walk is _random_walk:
            goals = _GoalSampler(nav, regions) if config.explore else None
            parts = [_random_walk(nav, n, config, rng, start, goals) for n, start in zip(lengths, starts)]
        else:
            parts = [_tour(nav, n, config, rng, start, navmesh) for n, start in zip(lengths, starts)]
        floor = np.concatenate([p for p, _ in parts])
        yaw = np.concatenate([y for _, y in parts])
    n = config.views
    pitch = np.radians(rng.normal(0.0, config.pitch_jitter_deg, n)) if config.pitch_jitter_deg > 0 else np.zeros(n)
    roll = np.radians(rng.normal(0.0, config.roll_jitter_deg, n)) if config.roll_jitter_deg > 0 else np.zeros(n)
    position = floor.astype(np.float64, copy=True)
    position[:, 1] += config.camera_height
    trajectory = np.repeat(np.arange(len(lengths), dtype=np.int32), lengths)
    step = np.concatenate([np.arange(k, dtype=np.int32) for k in lengths])
    log.debug("sampled %d views in %d %s trajectories", n, len(lengths), config.mode.value)
    return Trajectories(
        position=position,
        rotation=quat_from_yaw_pitch_roll(_wrap(yaw), pitch, roll),
        trajectory=trajectory,
        step=step,
    )


# ---------------------------------------------------------------------- helpers


def _wrap(angle: np.ndarray | float) -> np.ndarray | float:
    """Angles in radians wrapped to [-pi, pi)."""
    return (np.asarray(angle) + np.pi) % (2 * np.pi) - np.pi


def _forward(yaw: float) -> np.ndarray:
    """Unit (x, z) walking direction of heading ``yaw`` (radians): yaw 0 = -Z, positive = left (-X)."""
    return np.array([-math.sin(yaw), -math.cos(yaw)])


def _heading(dxz: np.ndarray) -> float:
    """Yaw in radians that walks along the (x, z) direction ``dxz``."""
    return math.atan2(-dxz[0], -dxz[1])


def _on_floor(nav: NavGrid, xz: np.ndarray) -> np.ndarray:
    """(3,) floor point at world (x, z), with the floor height of its cell."""
    return np.array([xz[0], nav.floor_height(xz[None])[0], xz[1]])


def _try_step(nav: NavGrid, p: np.ndarray, yaw: float, step: float) -> np.ndarray | None:
    """The floor point ``step`` metres ahead along ``yaw``, or None if the straight walk there is blocked."""
    q_xz = p[[0, 2]] + step * _forward(yaw)
    q = _on_floor(nav, q_xz)
    return q if nav.segment_navigable(p, q) else None


def _free_side(nav: NavGrid, p: np.ndarray, yaw: float, turn: float, step: float, rng: np.random.Generator) -> int:
    """+1 (left) or -1 (right): the side on which turning by multiples of ``turn`` frees the way soonest."""
    for k in range(1, math.ceil(math.pi / turn) + 1):
        left = _try_step(nav, p, yaw + k * turn, step) is not None
        right = _try_step(nav, p, yaw - k * turn, step) is not None
        if left and right:
            return 1 if rng.random() < 0.5 else -1
        if left or right:
            return 1 if left else -1
    return 1 if rng.random() < 0.5 else -1  # boxed in: spin on the spot


def _room_allocation(area: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """How many of ``n`` trajectories start in each room of floor ``area`` (cells, all > 0): int (R,)."""
    r = area.size
    if n < r:  # not every room can have one: distinct rooms, likelier the larger
        out = np.zeros(r, np.int64)
        out[rng.choice(r, size=n, replace=False, p=area / area.sum())] = 1
        return out
    share = (n - r) * area / area.sum()  # the rest by area, largest remainders
    out = 1 + np.floor(share).astype(np.int64)
    rest = n - int(out.sum())
    out[np.argsort(-(share - np.floor(share)), kind="stable")[:rest]] += 1
    return out


def _room_starts(nav: NavGrid, regions: np.ndarray, n: int, rng: np.random.Generator) -> list[np.ndarray | None]:
    """Start floor points (3,) of ``n`` trajectories spread over the rooms (module docstring); None entries
    (start anywhere) when no navigable cell has a room."""
    rows, cols = np.nonzero(nav.walkable & (regions >= 0))
    if rows.size == 0:
        return [None] * n
    ids, cell_room, area = np.unique(regions[rows, cols], return_inverse=True, return_counts=True)
    counts = _room_allocation(area.astype(np.float64), n, rng)
    order = rng.permutation(np.repeat(np.arange(ids.size), counts))  # the room of each trajectory
    starts = []
    for room in order:
        cells = np.flatnonzero(cell_room == room)
        k = cells[rng.integers(cells.size)]
        p = nav.to_world(rows[k : k + 1], cols[k : k + 1])[0]
        p[[0, 2]] += rng.uniform(-0.5, 0.5, 2) * (nav.cell_size * (1.0 - 1e-6))  # strictly inside the cell
        starts.append(p)
    return starts


class _GoalSampler:
    """Goals of an exploring random walk: a floor point in another room (by the ``regions`` of the cells;
    rooms equally likely), or anywhere on the agent's island when there are no rooms."""

    def __init__(self, nav: NavGrid, regions: np.ndarray | None):
        self.nav = nav
        _, self.labels = nav.islands()
        self.regions = regions if regions is not None else np.full(nav.walkable.shape, -1, np.int64)

    def __call__(self, p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        r, c = self.nav.to_cell(p[None, [0, 2]])
        island, here = int(self.labels[r[0], c[0]]), int(self.regions[r[0], c[0]])
        on_island = self.labels == island
        rooms = np.unique(self.regions[on_island & (self.regions >= 0)])
        rooms = rooms[rooms != here]
        cells = on_island & (self.regions == rooms[rng.integers(rooms.size)]) if rooms.size else on_island
        rows, cols = np.nonzero(cells)
        k = int(rng.integers(rows.size))
        return self.nav.to_world(rows[k : k + 1], cols[k : k + 1])[0]


_GOAL_REACHED = 0.5  # metres: a goal (or a path corner) this close is reached
_GOAL_PULL = 0.5  # fraction of the heading error towards the path the turn rate takes each step
_MAX_REPLANS = 4  # path recomputations per goal before the walk gives up on it


def _random_walk(
    nav: NavGrid, n: int, config: TrajectoryConfig, rng: np.random.Generator, start: np.ndarray | None = None,
    goals: _GoalSampler | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Floor points (n, 3) and yaws (n,) radians of one smooth random walk (from ``start``, else anywhere),
    wandering towards goals drawn by ``goals`` when given."""
    max_turn = math.radians(config.max_turn_deg)
    p = nav.sample_points(rng=rng, n=1)[0] if start is None else start
    yaw = float(rng.uniform(-math.pi, math.pi))
    rate = 0.0
    points, yaws = [p], [yaw]
    steer = 0  # side the agent keeps turning to while the way ahead is blocked (0: not steering)
    path, replans = None, 0  # path corners still ahead, towards the current goal
    for _ in range(n - 1):
        rate = _TURN_RATE_DECAY * rate + float(rng.normal(0.0, _TURN_RATE_NOISE * max_turn))
        rate = min(max(rate, -max_turn), max_turn)
        if goals is not None:
            path, replans = _follow(nav, p, path, replans, goals, rng)
            if path is not None:
                pull = _GOAL_PULL * float(_wrap(_heading((path[0] - p)[[0, 2]]) - yaw))
                rate = min(max(rate + pull, -max_turn), max_turn)
        if config.lookahead > config.step_size and _try_step(nav, p, yaw + rate, config.lookahead) is None:
            if steer == 0:
                steer = _free_side(nav, p, yaw, max_turn, config.lookahead, rng)
            rate = steer * max_turn
        else:
            steer = 0
        q = _try_step(nav, p, yaw + rate, config.step_size)
        if q is not None:
            p, yaw = q, yaw + rate
        else:
            side = _free_side(nav, p, yaw, max_turn, config.step_size, rng)
            rate = side * max_turn
            yaw = yaw + rate
        points.append(p)
        yaws.append(yaw)
    return np.asarray(points), np.asarray(yaws)


def _follow(nav: NavGrid, p: np.ndarray, path: np.ndarray | None, replans: int, goals: _GoalSampler,
            rng: np.random.Generator) -> tuple[np.ndarray | None, int]:
    """The path corners still ahead of an exploring walk at ``p`` (a new goal's path when the last one is
    done, a fresh path when the next corner is out of sight), and the replans spent on the current goal."""
    while path is not None and len(path) and np.linalg.norm((path[0] - p)[[0, 2]]) < _GOAL_REACHED:
        path = path[1:]
    if path is not None and len(path) and nav.segment_navigable(p, path[0]):
        return path, replans
    if path is not None and len(path) and replans < _MAX_REPLANS:  # strayed: the next corner is out of sight
        goal, replans = path[-1], replans + 1
    else:
        goal, replans = goals(p, rng), 0
    try:
        path = nav.shortest_path(p, goal)[1:]
    except ValueError:  # p off the grid's graph (a point on a cell border) or unreachable: wander freely
        return None, replans
    return (path if len(path) else None), replans


def _resample(nav: NavGrid, path: np.ndarray, step: float, navmesh: NavMesh | None = None) -> np.ndarray:
    """Points every ``step`` metres (horizontal arc length) along a path after its start, ending at its end.

    Where the straight walk between two consecutive points would cut a corner of the path through
    non-navigable cells, the path's corners in between are inserted. Floor heights come from the cells of
    ``nav``, or from ``navmesh``'s detail mesh when given.

    Returns:
        float64 (K, 3) floor points, K >= 0 (0 when the path has no length).
    """
    xz = path[:, [0, 2]]
    seg = np.linalg.norm(np.diff(xz, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    total = float(arc[-1])
    if total <= 1e-9:
        return np.empty((0, 3))
    s = np.arange(1, math.floor(total / step + 1e-9) + 1) * step
    if s.size == 0 or total - s[-1] > 1e-6:
        s = np.append(s, total)
    s[-1] = total
    out = [path[0]]
    arc_out = [0.0]
    for si in s:
        k = min(int(np.searchsorted(arc, si, side="right")) - 1, len(seg) - 1)
        f = (si - arc[k]) / seg[k] if seg[k] > 0 else 0.0
        q = _on_floor(nav, xz[k] + f * (xz[k + 1] - xz[k])) if navmesh is None else _on_mesh(navmesh, path, k, f)
        if not nav.segment_navigable(out[-1], q):
            for c in np.flatnonzero((arc > arc_out[-1] + 1e-9) & (arc < si - 1e-9)):
                out.append(path[c])
                arc_out.append(float(arc[c]))
        out.append(q)
        arc_out.append(float(si))
    return np.asarray(out[1:])


def _tour(
    nav: NavGrid, n: int, config: TrajectoryConfig, rng: np.random.Generator, start: np.ndarray | None = None,
    navmesh: NavMesh | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Floor points (n, 3) and yaws (n,) radians of a walk along shortest paths between random goals (on
    ``navmesh`` when given, else on ``nav``)."""
    max_turn = math.radians(config.max_turn_deg)
    p = nav.sample_points(rng=rng, n=1)[0] if start is None else start
    _, labels = nav.islands()
    r, c = nav.to_cell(p[None, [0, 2]])
    island = int(labels[r[0], c[0]])
    if navmesh is not None:  # stand on the mesh (a grid point may lie up to half a cell off it)
        snapped = navmesh.snap_point(p)
        p = snapped if np.all(np.isfinite(snapped)) else p
    yaw = float(rng.uniform(-math.pi, math.pi))
    points, yaws = [p], [yaw]
    while len(points) < n:
        waypoints = np.empty((0, 3))
        for _ in range(_MAX_GOAL_TRIES):
            goal = nav.sample_points(rng=rng, n=1, island=island)[0]
            if np.linalg.norm((goal - p)[[0, 2]]) < config.step_size:
                continue
            path = nav.shortest_path(p, goal) if navmesh is None else navmesh.shortest_path(p, goal)
            waypoints = _resample(nav, path, config.step_size, navmesh) if len(path) > 1 else np.empty((0, 3))
            if len(waypoints):
                break
        if len(waypoints) == 0:  # a tiny island: look around on the spot
            yaw += float(rng.uniform(-max_turn, max_turn))
            points.append(p)
            yaws.append(yaw)
            continue
        for w in waypoints:
            want = _heading((w - p)[[0, 2]])
            delta = float(_wrap(want - yaw))
            while abs(delta) > max_turn and len(points) < n:
                yaw += math.copysign(max_turn, delta)
                delta = float(_wrap(want - yaw))
                points.append(p)
                yaws.append(yaw)
            if len(points) >= n:
                break
            yaw += delta
            p = w
            points.append(p)
            yaws.append(yaw)
            if len(points) >= n:
                break
    return np.asarray(points[:n]), np.asarray(yaws[:n])


def _on_mesh(navmesh: NavMesh, path: np.ndarray, k: int, f: float) -> np.ndarray:
    """(3,) the point a fraction ``f`` along segment ``k`` of a path on ``navmesh``, on its detail mesh."""
    q = path[k] + f * (path[k + 1] - path[k])
    snapped = navmesh.snap_point(q)
    return snapped if np.all(np.isfinite(snapped)) else q


def _coverage(nav: NavGrid, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Floor points (n, 3) spread uniformly over the walkable area, and random yaws (n,) radians.

    Walkable cells are ordered block by block (square blocks of about ``area / n``, visited in a serpentine,
    cells in random order within a block) and ``n`` of them are taken at equal spacing along that order from
    a random offset (systematic sampling), then a point is drawn uniformly inside each.
    """
    rows, cols = np.nonzero(nav.walkable)
    m = rows.size
    block = max(1, round(math.sqrt(m / n)))
    br, bc = rows // block, cols // block
    n_bc = int(bc.max()) + 1
    serp = np.where(br % 2 == 0, bc, n_bc - 1 - bc)
    order = np.lexsort((rng.random(m), serp, br))
    pick = order[np.floor((np.arange(n) + rng.random()) * (m / n)).astype(np.int64).clip(0, m - 1)]
    pts = nav.to_world(rows[pick], cols[pick])
    jitter = rng.uniform(-0.5, 0.5, size=(n, 2)) * (nav.cell_size * (1.0 - 1e-6))
    pts[:, 0] += jitter[:, 0]
    pts[:, 2] += jitter[:, 1]
    yaw = rng.uniform(-math.pi, math.pi, n)
    return pts, yaw


__all__ = ["Trajectories", "TrajectoryConfig", "TrajectoryMode", "sample_trajectories"]
