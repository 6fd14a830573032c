"""Navigable space of a scene, computed from its triangle mesh alone (no navmesh needed).

The scene is sampled on a regular (x, z) grid, one cell of ``cell_size`` metres per sample, in the Y-up
world frame. A cell is *walkable* when an agent (a vertical cylinder of ``agent_radius`` and
``agent_height``, Habitat-Sim's defaults) can stand on its floor:

1. **Floors.** A vertical ray is cast down through every cell centre from above the scene and *all* its hits
   are listed (Open3D ``RaycastingScene.list_intersections``), so ceilings and roofs do not hide the floors
   below them. A hit is a candidate floor when its triangle's normal lies within ``max_slope_deg`` of +Y
   (``|n_y|`` is used: assets come with either winding). A candidate is walkable when the next surface above
   it (the previous hit along the downward ray) is at least ``agent_height`` higher. Each cell keeps its
   *lowest* walkable candidate.
2. **Walls.** Vertical surfaces are invisible to vertical rays (single-sheet walls of scanned meshes most of
   all), so short horizontal rays join the centres of neighbouring cells at several heights between
   ``max_climb`` and ``agent_height`` above the floor; a hit means a wall, a table leg or the side of a solid
   lies between the two cells. Neighbouring cells whose floors differ by more than ``max_climb`` (a ledge, a
   step too high) are a boundary too.
3. **Clearance.** Cells closer than ``agent_radius`` to a cell with no floor, to a wall or to a ledge are
   removed (Euclidean distance transforms).
4. **Islands.** Walkable cells are joined 8-connected (neighbouring floors must differ by at most
   ``max_climb``; a diagonal move needs the whole 2x2 block of cells around it walkable, so paths never cut
   a wall's corner) and, with ``largest_island``, only the largest connected island is kept, which drops
   table tops, wall tops, roofs and the insides of closed solids.

Geodesics are Dijkstra on that graph (:mod:`scipy.sparse.csgraph`); paths are then shortened by
line-of-sight string pulling so they run straight across open floors as on a navmesh.

Limitations: one floor per cell, the lowest, so a multi-storey scene keeps its ground level only; features
smaller than a cell (thin rails, narrow gaps) are resolved to a cell at best; the clearance test measures
distances between cell centres, so walkable borders are accurate to about half a cell.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra

from envsim.provenance import atomic_write

log = logging.getLogger(__name__)

NAVGRID_FORMAT = "envsim-navgrid/1"
"""The ``format`` entry of a saved grid."""

MAX_CELLS = 40_000_000
"""Largest grid :func:`build_navgrid` accepts (about 1.3 GB of working memory)."""

_RAY_OFFSET = (0.01234567, 0.03141593)
"""Vertical rays run this fraction of a cell off the cell centre (x, z), so that rays through the centres of
axis-aligned assets do not graze triangle edges and vertices exactly."""

_SURFACE_MERGE_EPS = 1e-4
"""Hits closer than this along one ray (metres) are one surface (shared edges, coplanar faces)."""

_PROBE_SPACING = 0.25
"""Largest vertical spacing in metres between the horizontal wall probes."""

_HEIGHT_EPS = 1e-6


@dataclass(frozen=True)
class NavConfig:
    """How the navigable space is computed; defaults follow Habitat-Sim's agent.

    Attributes:
        cell_size: grid cell side in metres.
        agent_radius: agent radius in metres; walkable cells keep this clearance from walls and ledges.
        agent_height: free headroom in metres the agent needs above its floor.
        max_climb: largest height step in metres between neighbouring cells the agent can take.
        max_slope_deg: floor triangles steeper than this (degrees from horizontal) are not walkable.
        largest_island: keep only the largest connected island of walkable cells.
    """

    cell_size: float = 0.05
    agent_radius: float = 0.1
    agent_height: float = 1.5
    max_climb: float = 0.2
    max_slope_deg: float = 45.0
    largest_island: bool = True

    def __post_init__(self) -> None:
        if not (math.isfinite(self.cell_size) and self.cell_size > 0):
            raise ValueError(f"cell_size must be a positive number of metres (e.g. 0.05), got {self.cell_size}")
        if not (math.isfinite(self.agent_radius) and self.agent_radius >= 0):
            raise ValueError(f"agent_radius must be >= 0 metres (e.g. 0.1), got {self.agent_radius}")
        if not (math.isfinite(self.max_climb) and self.max_climb >= 0):
            raise ValueError(f"max_climb must be >= 0 metres (e.g. 0.2), got {self.max_climb}")
        if not (math.isfinite(self.agent_height) and self.agent_height > self.max_climb):
            raise ValueError(
                f"agent_height must be a number of metres greater than max_climb={self.max_climb} "
                f"(e.g. 1.5), got {self.agent_height}"
            )
        if not 0.0 <= self.max_slope_deg < 90.0:
            raise ValueError(f"max_slope_deg must lie in [0, 90) degrees (e.g. 45), got {self.max_slope_deg}")


@dataclass(frozen=True, eq=False, repr=False)
class NavGrid:
    """Walkable cells of a scene on a regular (x, z) grid, with the floor height of each cell.

    Cell ``(row, col)`` is centred on world ``x = origin[0] + col * cell_size``,
    ``z = origin[1] + row * cell_size``; a world point belongs to the cell whose centre is nearest.
    The arrays are read-only.

    Attributes:
        origin: float64 (2,) world (x, z) in metres of the centre of cell (0, 0).
        cell_size: cell side in metres.
        walkable: bool (nz, nx); row index = z, column index = x.
        height: float32 (nz, nx) floor y in metres of each cell that has a floor the agent fits on
            (also where clearance or island filtering removed the cell); nan where there is none.
        max_climb: largest height step in metres between neighbouring cells a path may take.
        config: the settings the grid was built with (provenance), or None for a hand-made grid.
    """

    origin: np.ndarray
    cell_size: float
    walkable: np.ndarray
    height: np.ndarray
    max_climb: float = 0.2
    config: NavConfig | None = None

    def __post_init__(self) -> None:
        origin = np.array(self.origin, dtype=np.float64).reshape(-1)
        walkable = np.array(self.walkable, dtype=bool)
        height = np.array(self.height, dtype=np.float32)
        if origin.shape != (2,) or not np.all(np.isfinite(origin)):
            raise ValueError(f"origin must be a finite (x, z) pair in metres, got {self.origin!r}")
        if walkable.ndim != 2 or walkable.shape != height.shape or walkable.size == 0:
            raise ValueError(
                f"walkable and height must be non-empty 2-D arrays of one shape (nz, nx), got "
                f"{walkable.shape} and {height.shape}"
            )
        if not np.all(np.isfinite(height[walkable])):
            raise ValueError("every walkable cell needs a finite floor height; set height or clear walkable there")
        if not (math.isfinite(self.cell_size) and self.cell_size > 0):
            raise ValueError(f"cell_size must be a positive number of metres, got {self.cell_size}")
        if not (math.isfinite(self.max_climb) and self.max_climb >= 0):
            raise ValueError(f"max_climb must be >= 0 metres, got {self.max_climb}")
        for a in (origin, walkable, height):
            a.setflags(write=False)
        object.__setattr__(self, "origin", origin)
        object.__setattr__(self, "walkable", walkable)
        object.__setattr__(self, "height", height)
        object.__setattr__(self, "cell_size", float(self.cell_size))
        object.__setattr__(self, "max_climb", float(self.max_climb))

    def __repr__(self) -> str:
        nz, nx = self.shape
        return (
            f"NavGrid({nz}x{nx} cells of {self.cell_size} m, origin=({self.origin[0]:.3f}, {self.origin[1]:.3f}), "
            f"walkable={int(self.walkable.sum())} cells / {self.area_m2:.2f} m2, max_climb={self.max_climb})"
        )

    # ------------------------------------------------------------------ geometry of the grid

    @property
    def shape(self) -> tuple[int, int]:
        """Grid shape (nz, nx)."""
        return self.walkable.shape  # type: ignore[return-value]

    @property
    def area_m2(self) -> float:
        """Walkable floor area in square metres (horizontal projection)."""
        return float(self.walkable.sum()) * self.cell_size**2

    def to_cell(self, xz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nearest cell of world points; may lie outside the grid.

        Args:
            xz: (N, 2) world (x, z) in metres.

        Returns:
            rows, cols: int64 (N,) each.
        """
        xz = np.asarray(xz, dtype=np.float64).reshape(-1, 2)
        cols = np.floor((xz[:, 0] - self.origin[0]) / self.cell_size + 0.5).astype(np.int64)
        rows = np.floor((xz[:, 1] - self.origin[1]) / self.cell_size + 0.5).astype(np.int64)
        return rows, cols

    def to_world(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Floor points at cell centres.

        Args:
            rows, cols: (N,) cell indices inside the grid.

        Returns:
            float64 (N, 3) world points in metres; y is the cell's floor height (nan where it has none).
        """
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        cols = np.asarray(cols, dtype=np.int64).reshape(-1)
        out = np.empty((rows.size, 3))
        out[:, 0] = self.origin[0] + cols * self.cell_size
        out[:, 1] = self.height[rows, cols]
        out[:, 2] = self.origin[1] + rows * self.cell_size
        return out

    def cell_centers(self) -> np.ndarray:
        """Floor points at the centres of all walkable cells, row-major order: float64 (M, 3) metres."""
        rows, cols = np.nonzero(self.walkable)
        return self.to_world(rows, cols)

    def floor_height(self, xz: np.ndarray) -> np.ndarray:
        """Floor y in metres of the nearest cell of (N, 2) world (x, z) points; nan off the grid or floor."""
        rows, cols = self.to_cell(xz)
        inside = self._inside(rows, cols)
        out = np.full(rows.shape, np.nan)
        out[inside] = self.height[rows[inside], cols[inside]]
        return out

    def is_navigable(self, points: np.ndarray, *, y_tolerance: float | None = None) -> np.ndarray:
        """Whether floor points stand on walkable cells.

        Args:
            points: (N, 3) world floor points in metres (not camera positions).
            y_tolerance: largest ``|y - floor height|`` in metres accepted; defaults to
                ``max(max_climb, cell_size)``.

        Returns:
            bool (N,): the nearest cell is walkable and the point lies on its floor.
        """
        points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        tol = max(self.max_climb, self.cell_size) if y_tolerance is None else float(y_tolerance)
        rows, cols = self.to_cell(points[:, [0, 2]])
        inside = self._inside(rows, cols)
        ok = np.zeros(points.shape[0], dtype=bool)
        r, c = rows[inside], cols[inside]
        ok[inside] = self.walkable[r, c] & (np.abs(points[inside, 1] - self.height[r, c]) <= tol)
        return ok

    def segment_navigable(self, a: np.ndarray, b: np.ndarray) -> bool:
        """Whether the straight walk from floor point ``a`` to ``b`` stays on walkable cells.

        Every cell the segment's (x, z) projection touches (borders and corners included) must be walkable,
        and where the segment crosses from cell to cell, the floors of the cells meeting there (two on a
        border, four at a corner) may differ by at most ``max_climb``: the same rules as the moves of
        :meth:`geodesic_distance`. The y of ``a`` and ``b`` is ignored.

        Args:
            a, b: (3,) world points in metres.
        """
        rows, cols = self._segment_cells(np.asarray(a, float)[[0, 2]], np.asarray(b, float)[[0, 2]])  # (P, 4)
        if not np.all(self._inside(rows, cols)):
            return False
        if not np.all(self.walkable[rows, cols]):
            return False
        h = self.height[rows, cols]
        return bool(np.all(h.max(axis=1) - h.min(axis=1) <= self.max_climb + _HEIGHT_EPS))

    # ------------------------------------------------------------------ connectivity

    def islands(self) -> tuple[int, np.ndarray]:
        """Connected islands of walkable cells (8-connected, honouring ``max_climb``).

        Returns:
            n_islands: how many islands.
            labels: read-only int32 (nz, nx), island index per walkable cell, -1 elsewhere; island 0 is the
                largest (ties broken by first cell in row-major order).
        """
        return self._islands

    @cached_property
    def _islands(self) -> tuple[int, np.ndarray]:
        graph, _, _ = self._graph
        labels = np.full(self.shape, -1, dtype=np.int32)
        if graph.shape[0] == 0:
            labels.setflags(write=False)
            return 0, labels
        n, comp = connected_components(graph, directed=False)
        sizes = np.bincount(comp, minlength=n)
        order = np.argsort(-sizes, kind="stable")  # new label -> old label
        rank = np.empty(n, dtype=np.int32)
        rank[order] = np.arange(n, dtype=np.int32)
        labels[self.walkable] = rank[comp]
        labels.setflags(write=False)
        return int(n), labels

    def geodesic_distance(self, start: np.ndarray, goals: np.ndarray) -> np.ndarray:
        """Walking distances on the grid from one point to many.

        The distance is that of the shortest 8-connected cell path between the cells of the two points.
        A move joins walkable cells whose floors differ by at most ``max_climb``; a diagonal move also needs
        the two side cells walkable, with all four floors within ``max_climb`` (no corner cutting). A move
        costs its 3-D length: ``cell_size`` or ``sqrt(2) cell_size`` across, combined with the height change.
        Distances are between cell centres; on open floors they exceed the straight-line distance by up to 8 %
        (:meth:`shortest_path` returns a shortened path).

        Args:
            start: (3,) world floor point in metres; must be navigable.
            goals: (N, 3) world floor points in metres.

        Returns:
            float64 (N,) metres; inf where a goal is not navigable or not reachable.

        Raises:
            ValueError: if ``start`` is not navigable.
        """
        graph, node, _ = self._graph
        s = self._node_of(start, "start")
        goals = np.asarray(goals, dtype=np.float64).reshape(-1, 3)
        out = np.full(goals.shape[0], np.inf)
        ok = self.is_navigable(goals)
        if not np.any(ok):
            return out
        dist = dijkstra(graph, directed=True, indices=s)
        rows, cols = self.to_cell(goals[ok, :][:, [0, 2]])
        out[ok] = dist[node[rows, cols]]
        return out

    def shortest_path(self, start: np.ndarray, goal: np.ndarray, *, smooth: bool = True) -> np.ndarray:
        """The shortest walk between two floor points.

        Dijkstra on the cell graph (see :meth:`geodesic_distance`), from ``start`` through the centres of the
        cells on the way to ``goal``; with ``smooth``, path points are dropped greedily wherever the straight
        walk between the remaining ones stays navigable (:meth:`segment_navigable`), so the path runs
        straight across open floors.

        Args:
            start, goal: (3,) world floor points in metres, both navigable.
            smooth: shorten the cell path by string pulling.

        Returns:
            float64 (P, 3) world floor points, P >= 2, from ``start`` to ``goal`` (x, z as given, y the floor
            height of their cells); every segment is navigable.

        Raises:
            ValueError: if either point is not navigable or the goal cannot be reached from the start.
        """
        graph, _node, cells = self._graph
        start = np.asarray(start, dtype=np.float64).reshape(3)
        goal = np.asarray(goal, dtype=np.float64).reshape(3)
        s = self._node_of(start, "start")
        g = self._node_of(goal, "goal")
        dist, pred = dijkstra(graph, directed=True, indices=s, return_predecessors=True)
        if not np.isfinite(dist[g]):
            raise ValueError(
                f"goal {goal.tolist()} cannot be reached from start {start.tolist()}: they lie on different "
                "islands of the navigable space; pick both from one island (NavGrid.islands)"
            )
        chain = [g]
        while chain[-1] != s:
            chain.append(int(pred[chain[-1]]))
        chain.reverse()
        rc = cells[np.asarray(chain[1:-1], dtype=np.int64)]
        pts = np.concatenate(
            [
                [[start[0], self.height[cells[s, 0], cells[s, 1]], start[2]]],
                self.to_world(rc[:, 0], rc[:, 1]),
                [[goal[0], self.height[cells[g, 0], cells[g, 1]], goal[2]]],
            ]
        ).astype(np.float64)
        return self._string_pull(pts) if smooth else pts

    # ------------------------------------------------------------------ sampling and I/O

    def sample_points(self, *, rng: np.random.Generator, n: int, island: int | None = None) -> np.ndarray:
        """Floor points uniformly distributed over the walkable area.

        A walkable cell is drawn uniformly, then a point uniformly inside it.

        Args:
            rng: source of randomness.
            n: number of points, >= 0.
            island: draw only from this island of :meth:`islands` (None: all walkable cells).

        Returns:
            float64 (n, 3) world floor points in metres, each navigable.
        """
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if island is None:
            rows, cols = np.nonzero(self.walkable)
        else:
            n_islands, labels = self.islands()
            if not 0 <= island < n_islands:
                raise ValueError(f"island must lie in [0, {n_islands}), got {island}")
            rows, cols = np.nonzero(labels == island)
        if rows.size == 0:
            raise ValueError("the grid has no walkable cell to sample from")
        pick = rng.integers(0, rows.size, size=n)
        pts = self.to_world(rows[pick], cols[pick])
        # Strictly inside the cell so the nearest cell stays the drawn one.
        jitter = rng.uniform(-0.5, 0.5, size=(n, 2)) * (self.cell_size * (1.0 - 1e-6))
        pts[:, 0] += jitter[:, 0]
        pts[:, 2] += jitter[:, 1]
        return pts

    def save(self, path: str | os.PathLike) -> None:
        """Write the grid to a compressed ``.npz`` file, atomically (an exact round trip with :meth:`load`)."""
        config = json.dumps(dataclasses.asdict(self.config)) if self.config is not None else ""

        def write(tmp: Path) -> None:
            with open(tmp, "xb") as f:
                np.savez_compressed(
                    f,
                    format=np.array(NAVGRID_FORMAT),
                    origin=self.origin,
                    cell_size=np.float64(self.cell_size),
                    walkable=self.walkable,
                    height=self.height,
                    max_climb=np.float64(self.max_climb),
                    config=np.array(config),
                )

        atomic_write(path, write, unique=True)

    @classmethod
    def load(cls, path: str | os.PathLike) -> NavGrid:
        """Read a grid written by :meth:`save`.

        Raises:
            ValueError: if the file is not a saved navigation grid.
        """
        with np.load(path, allow_pickle=False) as z:
            fmt = str(z["format"]) if "format" in z.files else ""
            if fmt != NAVGRID_FORMAT:
                raise ValueError(f"{path} is not a navigation grid ({NAVGRID_FORMAT}); build one with build_navgrid")
            config_json = str(z["config"])
            return cls(
                origin=z["origin"],
                cell_size=float(z["cell_size"]),
                walkable=z["walkable"],
                height=z["height"],
                max_climb=float(z["max_climb"]),
                config=NavConfig(**json.loads(config_json)) if config_json else None,
            )

    # ------------------------------------------------------------------ internals

    def _inside(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        nz, nx = self.shape
        return (rows >= 0) & (rows < nz) & (cols >= 0) & (cols < nx)

    def _node_of(self, point: np.ndarray, what: str) -> int:
        point = np.asarray(point, dtype=np.float64).reshape(3)
        if not self.is_navigable(point[None])[0]:
            raise ValueError(
                f"{what} {point.tolist()} is not navigable: give a floor point (not a camera position) on a "
                "walkable cell, e.g. from NavGrid.sample_points"
            )
        rows, cols = self.to_cell(point[None, [0, 2]])
        return int(self._graph[1][rows[0], cols[0]])

    @cached_property
    def _graph(self) -> tuple[csr_matrix, np.ndarray, np.ndarray]:
        """(symmetric (M, M) move-cost graph in metres, int64 (nz, nx) node of each cell or -1, (M, 2) cells)."""
        node = np.full(self.shape, -1, dtype=np.int64)
        cells = np.argwhere(self.walkable)  # (M, 2) row-major
        node[cells[:, 0], cells[:, 1]] = np.arange(cells.shape[0])
        src, dst, w = _cell_edges(self.walkable, self.height.astype(np.float64), self.cell_size, self.max_climb)
        m = cells.shape[0]
        a, b = node[src[:, 0], src[:, 1]], node[dst[:, 0], dst[:, 1]]
        graph = csr_matrix((np.concatenate([w, w]), (np.concatenate([a, b]), np.concatenate([b, a]))), shape=(m, m))
        return graph, node, cells

    def _segment_cells(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cells touched by the segment between world (x, z) points ``a`` and ``b``.

        The segment is sampled at its ends, where it crosses cell borders and halfway between; each sample
        lists the four cells meeting at it (duplicates inside a cell or on a border).

        Returns:
            rows, cols: int64 (P, 4) each, samples in order along the segment.
        """
        ua = (a - self.origin) / self.cell_size  # (2,) continuous (col, row); cell k spans [k - 0.5, k + 0.5]
        ub = (b - self.origin) / self.cell_size
        d = ub - ua
        ts = [np.array([0.0, 1.0])]
        for k in range(2):
            if d[k] != 0.0:
                lo, hi = min(ua[k], ub[k]), max(ua[k], ub[k])
                borders = np.arange(math.ceil(lo - 0.5), math.floor(hi - 0.5) + 1) + 0.5
                ts.append((borders - ua[k]) / d[k])
        t = np.unique(np.clip(np.concatenate(ts), 0.0, 1.0))
        t = np.sort(np.concatenate([t, (t[:-1] + t[1:]) / 2]))  # (P,) borders and cell interiors
        f = ua[None] + t[:, None] * d[None] + 0.5  # (P, 2); cell k spans [k, k + 1] here
        near = np.round(f)
        on_border = np.abs(f - near) < 1e-9
        hi_idx = np.where(on_border, near, np.floor(f)).astype(np.int64)
        lo_idx = np.where(on_border, near - 1, np.floor(f)).astype(np.int64)
        cols = np.stack([lo_idx[:, 0], hi_idx[:, 0], lo_idx[:, 0], hi_idx[:, 0]], axis=1)
        rows = np.stack([lo_idx[:, 1], lo_idx[:, 1], hi_idx[:, 1], hi_idx[:, 1]], axis=1)
        return rows, cols

    def _string_pull(self, pts: np.ndarray) -> np.ndarray:
        """Drop path points greedily while the straight walk between the kept ones stays navigable."""
        last = pts.shape[0] - 1
        out = [pts[0]]
        i = 0
        while i < last:
            best = i + 1
            step = 1
            fail = None
            # Gallop forward to bracket the farthest visible point, then bisect.
            while True:
                j = min(i + 2 * step, last)
                if j <= best:
                    break
                if self.segment_navigable(pts[i], pts[j]):
                    best = j
                    if j == last:
                        break
                    step *= 2
                else:
                    fail = j
                    break
            if fail is not None:
                lo, hi = best, fail
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    if self.segment_navigable(pts[i], pts[mid]):
                        lo = mid
                    else:
                        hi = mid
                best = lo
            out.append(pts[best])
            i = best
        return np.asarray(out)


def _cell_edges(
    walkable: np.ndarray, height: np.ndarray, cell: float, max_climb: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Moves between walkable cells: (E, 2) source cells, (E, 2) destination cells, (E,) cost in metres.

    Each undirected move appears once. Every move needs ``|dh| <= max_climb``; a diagonal move needs the
    whole 2x2 block of cells around it walkable with floors within ``max_climb`` (no corner cutting).
    """
    nz, nx = walkable.shape
    srcs, dsts, ws = [], [], []
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        r0, c0 = slice(0, nz - dr), slice(max(0, -dc), nx - max(0, dc))  # source cells
        r1, c1 = slice(dr, nz), slice(max(0, dc), nx + min(0, dc))  # their neighbours
        ok = walkable[r0, c0] & walkable[r1, c1]
        dh = height[r1, c1] - height[r0, c0]
        with np.errstate(invalid="ignore"):
            ok &= np.abs(dh) <= max_climb + _HEIGHT_EPS
        if dr and dc:  # the whole 2x2 block, side cells (r, c + dc) and (r + dr, c) included
            ok &= walkable[r0, c1] & walkable[r1, c0]
            block = np.stack([height[r0, c0], height[r1, c1], height[r0, c1], height[r1, c0]])
            with np.errstate(invalid="ignore"):
                ok &= block.max(axis=0) - block.min(axis=0) <= max_climb + _HEIGHT_EPS
        rr, cc = np.nonzero(ok)
        src = np.stack([rr + r0.start, cc + c0.start], axis=1)
        dst = src + np.array([dr, dc])
        hor = cell * math.hypot(dr, dc)
        ws.append(np.sqrt(hor * hor + dh[rr, cc] ** 2))
        srcs.append(src)
        dsts.append(dst)
    return np.concatenate(srcs), np.concatenate(dsts), np.concatenate(ws)


def _floor_like(vertices: np.ndarray, faces: np.ndarray, prim: np.ndarray, max_slope_deg: float) -> np.ndarray:
    """Whether triangles ``prim`` (K,) are within ``max_slope_deg`` of horizontal, either side up: bool (K,)."""
    uniq, inverse = np.unique(prim, return_inverse=True)
    tri = vertices[faces[uniq]]  # (U, 3, 3)
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    norm = np.linalg.norm(normal, axis=1)
    cos_up = np.abs(normal[:, 1]) / np.maximum(norm, 1e-300)  # 0 for degenerate triangles
    return (cos_up >= math.cos(math.radians(max_slope_deg)) - 1e-9)[inverse.reshape(-1)]


def build_navgrid(vertices: np.ndarray, faces: np.ndarray, *, config: NavConfig = NavConfig()) -> NavGrid:
    """The navigable space of a triangle mesh (see the module docstring for the method).

    Args:
        vertices: (V, 3) float world positions in metres, Y up.
        faces: (F, 3) int vertex indices.
        config: agent and grid settings.

    Returns:
        The grid over the mesh's (x, z) bounding box.

    Raises:
        ValueError: on malformed input, a grid over :data:`MAX_CELLS` cells, or a scene without navigable
            area.
    """
    import open3d as o3d

    t0 = time.perf_counter()
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or vertices.shape[0] == 0:
        raise ValueError(f"vertices must be a non-empty (V, 3) array, got shape {vertices.shape}")
    if not np.all(np.isfinite(vertices)):
        raise ValueError("vertices contain nan or inf; clean the mesh before building its navigable space")
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.shape[0] == 0 or not np.issubdtype(faces.dtype, np.integer):
        raise ValueError(f"faces must be a non-empty (F, 3) integer array, got {faces.dtype} {faces.shape}")
    if faces.min() < 0 or faces.max() >= vertices.shape[0]:
        raise ValueError(f"faces index vertices outside [0, {vertices.shape[0]}); check the mesh")
    cell = config.cell_size

    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    nx = max(1, math.ceil((hi[0] - lo[0]) / cell - 1e-9))
    nz = max(1, math.ceil((hi[2] - lo[2]) / cell - 1e-9))
    if nx * nz > MAX_CELLS:
        raise ValueError(
            f"a {hi[0] - lo[0]:.1f} m x {hi[2] - lo[2]:.1f} m scene at cell_size={cell} m needs {nx * nz:,} cells "
            f"(at most {MAX_CELLS:,}); increase cell_size or check the scene's units"
        )
    origin = np.array([lo[0] + cell / 2, lo[2] + cell / 2])

    scene = o3d.t.geometry.RaycastingScene()
    v32 = vertices.astype(np.float32)
    scene.add_triangles(o3d.core.Tensor(v32), o3d.core.Tensor(np.ascontiguousarray(faces, dtype=np.uint32)))

    # 1. Floors: all hits of one downward ray per cell.
    top = hi[1] + 1.0
    rows, cols = np.mgrid[0:nz, 0:nx]
    rays = np.zeros((nz * nx, 6), dtype=np.float32)
    rays[:, 0] = origin[0] + (cols.ravel() + _RAY_OFFSET[0]) * cell
    rays[:, 1] = top
    rays[:, 2] = origin[1] + (rows.ravel() + _RAY_OFFSET[1]) * cell
    rays[:, 4] = -1.0
    hits = scene.list_intersections(o3d.core.Tensor(rays))
    ray_id = hits["ray_ids"].numpy().astype(np.int64)
    t_hit = hits["t_hit"].numpy().astype(np.float64)
    prim = hits["primitive_ids"].numpy().astype(np.int64)
    order = np.lexsort((t_hit, ray_id))  # by ray, then top to bottom
    ray_id, t_hit, prim = ray_id[order], t_hit[order], prim[order]
    y_hit = top - t_hit
    floor_like = _floor_like(vertices, faces, prim, config.max_slope_deg)  # per hit

    # Merge coincident hits into surfaces.
    new_surface = np.ones(ray_id.size, dtype=bool)
    new_surface[1:] = (ray_id[1:] != ray_id[:-1]) | (t_hit[1:] - t_hit[:-1] > _SURFACE_MERGE_EPS)
    surf = np.cumsum(new_surface) - 1  # surface index of each hit
    n_surf = int(surf[-1]) + 1 if surf.size else 0
    surf_first = np.flatnonzero(new_surface)
    surf_ray = ray_id[surf_first]
    surf_y = y_hit[surf_first]
    surf_floor = np.bincount(surf, weights=floor_like, minlength=n_surf) > 0
    headroom = np.full(n_surf, np.inf)
    same_ray = surf_ray[1:] == surf_ray[:-1]
    headroom[1:][same_ray] = surf_y[:-1][same_ray] - surf_y[1:][same_ray]
    stand = surf_floor & (headroom >= config.agent_height)
    # The lowest standable surface per ray: the last one in top-to-bottom order.
    idx = np.flatnonzero(stand)
    last = np.ones(idx.size, dtype=bool)
    last[:-1] = surf_ray[idx[1:]] != surf_ray[idx[:-1]]
    idx = idx[last]
    height = np.full(nz * nx, np.nan)
    height[surf_ray[idx]] = surf_y[idx]
    height = height.reshape(nz, nx)
    floor = np.isfinite(height)
    if not np.any(floor):
        raise ValueError(
            "the scene has no navigable area: no upward-facing surface with "
            f"{config.agent_height} m of headroom; check the up axis (--up) and the units (metres)"
        )

    # 2. Boundaries between neighbouring floors: ledges and walls.
    boundary = np.zeros((nz, nx), dtype=bool)
    probe_src, probe_dst = [], []
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        a = (slice(0, nz - dr), slice(max(0, -dc), nx - max(0, dc)))
        b = (slice(dr, nz), slice(max(0, dc), nx + min(0, dc)))
        both = floor[a] & floor[b]
        with np.errstate(invalid="ignore"):
            ledge = both & (np.abs(height[a] - height[b]) > config.max_climb + _HEIGHT_EPS)
        boundary[a] |= ledge
        boundary[b] |= ledge
        if dr == 0 or dc == 0:  # walls are probed between 4-neighbours
            rr, cc = np.nonzero(both & ~ledge)
            src = np.stack([rr + a[0].start, cc + a[1].start], axis=1)
            probe_src.append(src)
            probe_dst.append(src + np.array([dr, dc]))
    src = np.concatenate(probe_src)
    dst = np.concatenate(probe_dst)
    if src.size:
        n_levels = max(2, math.ceil((config.agent_height - config.max_climb) / _PROBE_SPACING) + 1)
        margin = min(0.01, (config.agent_height - config.max_climb) / 4)
        levels = np.linspace(config.max_climb + margin, config.agent_height - margin, n_levels)
        base = np.maximum(height[src[:, 0], src[:, 1]], height[dst[:, 0], dst[:, 1]])  # (E,)
        e = src.shape[0]
        probes = np.empty((levels.size, e, 6), dtype=np.float32)
        probes[..., 0] = origin[0] + (src[:, 1] + _RAY_OFFSET[0]) * cell
        probes[..., 1] = base[None] + levels[:, None]
        probes[..., 2] = origin[1] + (src[:, 0] + _RAY_OFFSET[1]) * cell
        probes[..., 3] = (dst[:, 1] - src[:, 1]) * cell
        probes[..., 4] = 0.0
        probes[..., 5] = (dst[:, 0] - src[:, 0]) * cell
        t_probe = scene.cast_rays(o3d.core.Tensor(probes.reshape(-1, 6)))["t_hit"].numpy().reshape(levels.size, e)
        wall = np.any(t_probe <= 1.0, axis=0)  # (E,)
        boundary[src[wall, 0], src[wall, 1]] = True
        boundary[dst[wall, 0], dst[wall, 1]] = True

    # 3. Clearance: distance from cell centres to the nearest cell without floor (whose border lies about half
    # a cell closer) and to the nearest boundary cell (the wall or ledge lies about half a cell beyond it).
    r = config.agent_radius
    free = np.pad(floor, 1, constant_values=False)
    d_void = ndimage.distance_transform_edt(free)[1:-1, 1:-1] * cell
    walkable = floor & ~boundary & (d_void >= r + cell / 2 - 1e-9)
    if np.any(boundary):
        d_edge = ndimage.distance_transform_edt(~boundary) * cell
        walkable &= d_edge >= r - cell / 2 - 1e-9

    grid = NavGrid(
        origin=origin,
        cell_size=cell,
        walkable=walkable,
        height=height.astype(np.float32),
        max_climb=config.max_climb,
        config=config,
    )
    if not np.any(walkable):
        raise ValueError(
            f"the scene has no navigable area once {r} m of clearance is kept from walls and ledges; "
            "lower agent_radius or cell_size"
        )

    # 4. Islands.
    if config.largest_island:
        n_islands, labels = grid.islands()
        if n_islands > 1:
            grid = dataclasses.replace(grid, walkable=labels == 0)
    log.info(
        "navigable grid %dx%d at %.3f m: %.1f m2 walkable in %.2f s",
        nz,
        nx,
        cell,
        grid.area_m2,
        time.perf_counter() - t0,
    )
    return grid


__all__ = ["NAVGRID_FORMAT", "NavConfig", "NavGrid", "build_navgrid"]
