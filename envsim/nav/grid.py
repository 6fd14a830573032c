"""Navigable space of a scene as a grid: walkable cells with their floor heights, geodesics and paths.

A :class:`NavGrid` samples the floor on a regular (x, z) grid, one cell of ``cell_size`` metres per sample, in
the Y-up world frame: which cells an agent can stand on and the floor height of each. Walkable cells are
joined 8-connected (neighbouring floors must differ by at most ``max_climb``; a diagonal move needs the whole
2x2 block of cells around it walkable, so paths never cut a wall's corner); islands are the connected
components of that graph.

Geodesics are Dijkstra on that graph (:mod:`scipy.sparse.csgraph`); paths are then shortened by
line-of-sight string pulling so they run straight across open floors as on a navmesh.

Grids come from a scene's triangle mesh (:func:`envsim.nav.build.build_navgrid`, with a :class:`NavConfig`)
or from its Habitat navmesh (:func:`envsim.nav.navmesh.navmesh_to_grid`); :meth:`NavGrid.save` and
:meth:`NavGrid.load` keep them as ``.npz`` files.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra

from envsim.provenance import atomic_write

NAVGRID_FORMAT = "envsim-navgrid/1"
"""The ``format`` entry of a saved grid."""

MAX_CELLS = 40_000_000
"""Largest grid :func:`~envsim.nav.build.build_navgrid` accepts (about 1.3 GB of working memory)."""

HEIGHT_EPS = 1e-6
"""Slack in metres added to ``max_climb`` when floor heights are compared (float32 rounding)."""


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
        return bool(np.all(h.max(axis=1) - h.min(axis=1) <= self.max_climb + HEIGHT_EPS))

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
            ok &= np.abs(dh) <= max_climb + HEIGHT_EPS
        if dr and dc:  # the whole 2x2 block, side cells (r, c + dc) and (r + dr, c) included
            ok &= walkable[r0, c1] & walkable[r1, c0]
            block = np.stack([height[r0, c0], height[r1, c1], height[r0, c1], height[r1, c0]])
            with np.errstate(invalid="ignore"):
                ok &= block.max(axis=0) - block.min(axis=0) <= max_climb + HEIGHT_EPS
        rr, cc = np.nonzero(ok)
        src = np.stack([rr + r0.start, cc + c0.start], axis=1)
        dst = src + np.array([dr, dc])
        hor = cell * math.hypot(dr, dc)
        ws.append(np.sqrt(hor * hor + dh[rr, cc] ** 2))
        srcs.append(src)
        dsts.append(dst)
    return np.concatenate(srcs), np.concatenate(dsts), np.concatenate(ws)


__all__ = ["NAVGRID_FORMAT", "NavConfig", "NavGrid"]
