"""Shortest paths on a navigation mesh, found the way Detour's ``dtNavMeshQuery`` finds them for Habitat-Sim.

Habitat-Sim's ``PathFinder::findPath`` (what ``pathfinder.geodesic_distance`` reports) runs four Detour steps;
:class:`NavMeshQuery` runs the same ones on a :class:`~envsim.nav.navmesh.NavMesh` (metres, Y up):

1. **Snap** (``findNearestPoly`` from Habitat's ``projectToPoly``): the candidates are the polygons whose
   bounding box (polygon and detail vertices) overlaps the box of half extents :data:`HALF_EXTENTS` =
   (2, 4, 2) m around the point, Habitat's ``polyPickExt``. On each, the closest point in (x, z) (the point
   itself when it lies over the polygon, else the nearest point of its outline) at the detail-mesh height.
   A polygon the point lies over scores ``max(|dy| - climb, 0)^2``, any other the squared 3-D distance
   (current Detour; ``climb`` is the ``agent_max_climb`` setting, else 0.2 m); the lowest score wins, ties
   to the lower polygon index. No candidate: the point snaps to nothing.
   Only polygons passing Habitat's query filter take part: walkable flag 0x01 set, and a detail area of
   at least 1e-5 m^2 (``removeZeroAreaPolys`` disables the others).
2. **Corridor** (``findPath``): Detour's A* moves from portal-edge midpoint to portal-edge midpoint,
   each move costing the 3-D distance, starting at the start point and ending with the distance from the
   last midpoint to the goal. Here the graph's nodes are the portals themselves (a move crosses one
   polygon from one of its portals to another) and scipy's Dijkstra solves it from the start, one tree
   for every goal; this is the optimum of Detour's cost, without Detour's habit of fixing a polygon's
   midpoint at the first portal it was reached through. Start and goal on one polygon: that polygon.
3. **Funnel** (``findStraightPath``): the portal of two neighbouring polygons is the shared part of their
   edges, computed from the geometry (the whole edge inside a tile, the overlap of two partly
   overlapping edges on a tile border, as ``getPortalPoints`` clips Detour's link), and the corridor is
   string-pulled through its portals; the path is the start, the funnel's corners, the goal.
4. **Heights** (``getPolyHeight``): each path point is put on the detail mesh of its polygon.

The geodesic distance is the sum of the 3-D lengths of the path's segments, as Habitat sums them.
Unreachable goals (another island, or a point that snaps to nothing) get ``inf`` and an empty path.

Where this differs from Habitat-Sim: Habitat passes the requested (unsnapped) ends to ``findStraightPath``,
which keeps their heights, and Detour's corners carry the polygon vertices' heights (quantised by Recast
to the voxel height); here every point is on the detail mesh, so distances can differ by millimetres on
sloped or stepped floors (nothing on flat ones). Habitat's corridor is capped at 256 polygons (longer
paths report inf there); here it is not.

Reference: Mikko Mononen, Recast & Detour (``DetourNavMeshQuery.cpp``); "Simple Stupid Funnel Algorithm"
(digestingduck blog, 2010).
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from envsim.nav.polygons import DT_VERTS_PER_POLYGON

if TYPE_CHECKING:
    from envsim.nav.navmesh import NavMesh

log = logging.getLogger(__name__)

__all__ = ["HALF_EXTENTS", "MIN_POLYGON_AREA", "PORTAL_TOLERANCE", "WALK_FLAG", "NavMeshQuery", "string_pull"]

HALF_EXTENTS = (2.0, 4.0, 2.0)
"""Half extents (x, y, z) in metres of the box a point is snapped within: Habitat's ``polyPickExt``."""

WALK_FLAG = 0x01
"""Polygons without this flag (Habitat's ``POLYFLAGS_WALK``) are left out of queries (Habitat's filter)."""

MIN_POLYGON_AREA = 1e-5
"""Polygons whose detail mesh is smaller than this many square metres are left out (Habitat disables them)."""

PORTAL_TOLERANCE = 0.01
"""Largest (x, z) distance in metres between two neighbours' edges that still share a portal (Detour's slab
tolerance for tile borders)."""

_INSIDE_EPS = 1e-9
"""Slack (m^2, an edge cross product) for a point on a polygon's outline to count as over the polygon."""

_SAME_EPS = 1e-12
"""Squared (x, z) distance in m^2 below which two funnel points are one point."""

_CHUNK = 4096
"""Neighbour pairs handled per vectorised block when portals are built (bounds memory on large meshes)."""


def _cross(ax: float, az: float, bx: float, bz: float) -> float:
    """z-component of the 2-D cross product of (x, z) vectors a and b: > 0 when b lies left of a."""
    return ax * bz - az * bx


class NavMeshQuery:
    """Snapping, corridors, string pulling and heights on one navmesh; build once, query many times.

    Attributes:
        mesh: the navmesh.
        half_extents: (x, y, z) half extents in metres of the snapping box.
        climb: metres of height difference a point may have over a polygon and still stand on it.
        portals: float64 (K, 2, 3) the portal segment (end points in metres) of each usable neighbour pair.
        portal_polygons: int64 (K, 2) the two polygons of each portal, lower index first.
    """

    def __init__(self, mesh: NavMesh, *, half_extents: tuple[float, float, float] = HALF_EXTENTS) -> None:
        """Precompute the polygon geometry, the portals and the portal graph of ``mesh``.

        Args:
            mesh: the navmesh.
            half_extents: snapping box half extents (x, y, z) in metres, all > 0.
        """
        ext = np.asarray(half_extents, dtype=np.float64).reshape(-1)
        if ext.shape != (3,) or not np.all(np.isfinite(ext) & (ext > 0)):
            raise ValueError(f"half_extents must be three positive metres (x, y, z), e.g. (2, 4, 2); got "
                             f"{half_extents}")
        self.mesh = mesh
        self.half_extents = ext
        self.climb = float(mesh.settings.get("agent_max_climb", 0.2))
        self._polygon_geometry(mesh)
        self._detail_geometry(mesh)
        self._usable = ((mesh.flags & WALK_FLAG) != 0) & (mesh.polygon_areas(detail=True) >= MIN_POLYGON_AREA)
        self._index()
        self._build_portals(mesh.neighbours)
        self._build_graph()
        log.debug("navmesh query on %s: %d usable polygons, %d portals", mesh.source, int(self._usable.sum()),
                  self.portal_polygons.shape[0])

    # ------------------------------------------------------------------ precomputation

    def _polygon_geometry(self, mesh: NavMesh) -> None:
        """Each polygon edge's two ends (P, 6, 3) twice, the winding sign (P,) and the (x, z) centroid (P, 2)."""
        v = mesh.vertices.astype(np.float64)
        nv = mesh.vert_count
        used = np.arange(DT_VERTS_PER_POLYGON)[None, :] < nv[:, None]  # (P, 6)
        pv = v[np.maximum(mesh.polygons, 0)]  # (P, 6, 3)
        nxt = (np.arange(DT_VERTS_PER_POLYGON)[None, :] + 1) % nv[:, None]  # (P, 6)
        pv1 = np.take_along_axis(pv, nxt[:, :, None], axis=1)  # (P, 6, 3) the edge's other end
        a, b = pv[:, :, [0, 2]], pv1[:, :, [0, 2]]
        twice_area = np.where(used, a[..., 0] * b[..., 1] - b[..., 0] * a[..., 1], 0.0).sum(axis=1)  # (P,)
        self._used = used
        self._pv, self._pv1 = pv, pv1
        self._sign = np.where(twice_area < 0, -1.0, 1.0)  # +1: counter-clockwise in the (x, z) plane
        self._centroid = np.where(used[:, :, None], a, 0.0).sum(axis=1) / nv[:, None]  # (P, 2)

    def _detail_geometry(self, mesh: NavMesh) -> None:
        """Detail triangles (T, 3, 3) grouped by polygon (fans where a polygon has none) and bounding boxes."""
        p = mesh.n_polygons
        tris, owner = mesh.detail_triangles, mesh.detail_polygon
        missing = np.bincount(owner, minlength=p) == 0
        if np.any(missing):
            fan, fan_owner = mesh.triangles(), mesh.triangle_polygon()
            sel = missing[fan_owner]
            tris, owner = np.concatenate([tris, fan[sel]]), np.concatenate([owner, fan_owner[sel]])
            order = np.argsort(owner, kind="stable")
            tris, owner = tris[order], owner[order]
        self._tri = mesh.vertices.astype(np.float64)[tris]  # (T, 3, 3)
        self._tri_ptr = np.concatenate([[0], np.cumsum(np.bincount(owner, minlength=p))]).astype(np.int64)
        lo = np.where(self._used[:, :, None], self._pv, np.inf).min(axis=1)  # (P, 3)
        hi = np.where(self._used[:, :, None], self._pv, -np.inf).max(axis=1)
        np.minimum.at(lo, owner, self._tri.min(axis=1))
        np.maximum.at(hi, owner, self._tri.max(axis=1))
        self._box_lo, self._box_hi = lo, hi

    def _index(self) -> None:
        """A k-d tree over the (x, z) box centres of the usable polygons, for snapping."""
        self._usable_ids = np.flatnonzero(self._usable)
        centre = 0.5 * (self._box_lo + self._box_hi)[self._usable_ids][:, [0, 2]]
        half = 0.5 * (self._box_hi - self._box_lo)[self._usable_ids][:, [0, 2]]
        self._reach = float(half.max()) if half.size else 0.0
        self._tree = cKDTree(centre) if centre.size else None

    def _build_portals(self, neighbours: np.ndarray) -> None:
        """The portal segment of every neighbour pair of usable polygons (see the module docstring)."""
        pairs = np.asarray(neighbours, dtype=np.int64).reshape(-1, 2)
        pairs = pairs[self._usable[pairs[:, 0]] & self._usable[pairs[:, 1]]]
        segs, found = [np.zeros((0, 2, 3))], [np.zeros(0, bool)]
        for s in range(0, pairs.shape[0], _CHUNK):
            seg, ok = self._shared_segments(pairs[s : s + _CHUNK, 0], pairs[s : s + _CHUNK, 1])
            segs.append(seg)
            found.append(ok)
        seg, ok = np.concatenate(segs), np.concatenate(found)
        if not np.all(ok):
            log.warning("%s: %d neighbour pairs share no edge segment; they are not joined for paths: %s",
                        self.mesh.source, int((~ok).sum()), pairs[~ok][:5].tolist())
        self.portals, self.portal_polygons = seg[ok], pairs[ok]
        self._mid = self.portals.mean(axis=1)  # (K, 3)

    def _shared_segments(self, i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The longest shared (x, z) segment of an edge of polygon i and an edge of polygon j, on i's edge.

        Args:
            i, j: int (C,) polygons.

        Returns:
            float64 (C, 2, 3) segments (heights interpolated along i's edge) and bool (C,) found.
        """
        a0, a1 = self._pv[i][:, :, None], self._pv1[i][:, :, None]  # (C, 6, 1, 3): edges of i
        b0, b1 = self._pv[j][:, None], self._pv1[j][:, None]  # (C, 1, 6, 3): edges of j
        d = (a1 - a0)[..., [0, 2]]
        length = np.linalg.norm(d, axis=-1)  # (C, 6, 1)
        u = d / np.maximum(length, 1e-300)[..., None]
        w0, w1 = (b0 - a0)[..., [0, 2]], (b1 - a0)[..., [0, 2]]  # (C, 6, 6, 2)
        t0, t1 = (w0 * u).sum(-1), (w1 * u).sum(-1)
        off = np.maximum(np.abs(u[..., 0] * w0[..., 1] - u[..., 1] * w0[..., 0]),
                         np.abs(u[..., 0] * w1[..., 1] - u[..., 1] * w1[..., 0]))
        lo = np.maximum(np.minimum(t0, t1), 0.0)
        hi = np.minimum(np.maximum(t0, t1), length)
        valid = self._used[i][:, :, None] & self._used[j][:, None, :] & (off <= PORTAL_TOLERANCE) & (length > 0)
        overlap = np.where(valid, hi - lo, -np.inf).reshape(len(i), -1)  # (C, 36)
        best = np.argmax(overlap, axis=1)
        rows = np.arange(len(i))
        ea, eb = best // DT_VERTS_PER_POLYGON, best % DT_VERTS_PER_POLYGON
        ok = overlap[rows, best] > 0
        a0, a1, n = a0[rows, ea, 0], a1[rows, ea, 0], np.maximum(length[rows, ea, 0], 1e-300)
        f_lo, f_hi = lo[rows, ea, eb] / n, hi[rows, ea, eb] / n
        seg = np.stack([a0 + f_lo[:, None] * (a1 - a0), a0 + f_hi[:, None] * (a1 - a0)], axis=1)
        return seg, ok

    def _build_graph(self) -> None:
        """The portal graph: an edge between two portals of one polygon, costing their midpoints' distance."""
        k = self.portal_polygons.shape[0]
        poly = self.portal_polygons.reshape(-1)  # (2K,) polygon of each portal end
        port = np.repeat(np.arange(k), 2)
        order = np.argsort(poly, kind="stable")
        poly, port = poly[order], port[order]
        deg = np.bincount(poly, minlength=self.mesh.n_polygons)
        self._inc_ptr = np.concatenate([[0], np.cumsum(deg)]).astype(np.int64)
        self._inc = port  # portals of polygon q: _inc[_inc_ptr[q]:_inc_ptr[q + 1]]
        d = deg[poly]  # (2K,) degree of the polygon of each incidence
        src = np.repeat(np.arange(poly.size), d)
        dst = np.repeat(self._inc_ptr[poly], d) + (np.arange(src.size) - np.repeat(np.cumsum(d) - d, d))
        keep = src != dst
        a, b = port[src[keep]], port[dst[keep]]
        w = np.maximum(np.linalg.norm(self._mid[a] - self._mid[b], axis=1), 1e-12)
        self._graph = csr_matrix((w, (a, b)), shape=(k + 1, k + 1))  # node k: the start of a query
        self._graph.sum_duplicates()

    # ------------------------------------------------------------------ snapping and heights

    def polygon_height(self, polygon: np.ndarray, xz: np.ndarray) -> np.ndarray:
        """Height of the detail mesh of each polygon at (x, z), as Detour's ``getPolyHeight``.

        The detail triangle that contains the point (or, just outside all, the one it is least outside of)
        is evaluated at the point.

        Args:
            polygon: int (M,) polygon indices.
            xz: (M, 2) world (x, z) in metres, on or near each polygon.

        Returns:
            float64 (M,) floor y in metres.
        """
        polygon = np.asarray(polygon, dtype=np.int64).reshape(-1)
        xz = np.asarray(xz, dtype=np.float64).reshape(-1, 2)
        owner, rows, first, count = _gather(self._tri_ptr, polygon)
        tri = self._tri[rows]
        p = xz[owner]
        e1, e2, w = (tri[:, 1] - tri[:, 0])[:, [0, 2]], (tri[:, 2] - tri[:, 0])[:, [0, 2]], p - tri[:, 0, [0, 2]]
        den = e1[:, 0] * e2[:, 1] - e2[:, 0] * e1[:, 1]
        flat = np.abs(den) < 1e-14
        den = np.where(flat, 1.0, den)
        u = (w[:, 0] * e2[:, 1] - e2[:, 0] * w[:, 1]) / den
        v = (e1[:, 0] * w[:, 1] - w[:, 0] * e1[:, 1]) / den
        score = np.where(flat, -np.inf, np.minimum(np.minimum(u, v), 1.0 - u - v))
        y = tri[:, 0, 1] + u * (tri[:, 1, 1] - tri[:, 0, 1]) + v * (tri[:, 2, 1] - tri[:, 0, 1])
        order = np.lexsort((-score, owner))
        out = np.full(polygon.size, np.nan)
        has = count > 0
        best = order[first[has]]
        out[has] = np.where(np.isfinite(score[best]), y[best], np.nan)
        bad = ~np.isfinite(out)
        if np.any(bad):  # no usable detail triangle: the mean height of the polygon's vertices
            pv, used = self._pv[polygon[bad]], self._used[polygon[bad]]
            out[bad] = np.where(used, pv[:, :, 1], 0.0).sum(axis=1) / used.sum(axis=1)
        return out

    def _closest_on_polygons(self, polygon: np.ndarray, xz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Closest (x, z) point of each polygon to each point: float64 (M, 2), and bool (M,) point over it."""
        a, b = self._pv[polygon][:, :, [0, 2]], self._pv1[polygon][:, :, [0, 2]]  # (M, 6, 2)
        used = self._used[polygon]
        d, w = b - a, xz[:, None, :] - a
        cross = (d[..., 0] * w[..., 1] - d[..., 1] * w[..., 0]) * self._sign[polygon][:, None]
        inside = np.all(~used | (cross >= -_INSIDE_EPS), axis=1)
        t = np.clip((w * d).sum(-1) / np.maximum((d * d).sum(-1), 1e-300), 0.0, 1.0)
        c = a + t[..., None] * d  # (M, 6, 2)
        dist = np.where(used, ((xz[:, None, :] - c) ** 2).sum(-1), np.inf)
        nearest = c[np.arange(polygon.size), np.argmin(dist, axis=1)]
        return np.where(inside[:, None], xz, nearest), inside

    def snap(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nearest polygon and point on it of each point, as Detour's ``findNearestPoly`` (module docstring).

        Args:
            points: (N, 3) world points in metres.

        Returns:
            polygon: int64 (N,) polygon index, -1 where the point snaps to nothing.
            snapped: float64 (N, 3) the point on that polygon (detail-mesh height), nan where none.
        """
        q = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        polygon = np.full(q.shape[0], -1, np.int64)
        snapped = np.full(q.shape, np.nan)
        ok = np.all(np.isfinite(q), axis=1)
        if self._tree is None or not np.any(ok):
            return polygon, snapped
        rows = np.flatnonzero(ok)
        reach = float(max(self.half_extents[0], self.half_extents[2]) + self._reach) * (1 + 1e-9)
        hits = self._tree.query_ball_point(q[rows][:, [0, 2]], r=reach, p=np.inf)
        counts = np.fromiter((len(h) for h in hits), dtype=np.int64, count=rows.size)
        qi = np.repeat(rows, counts)
        pi = self._usable_ids[np.concatenate([np.asarray(h, np.int64) for h in hits])] if counts.sum() else qi
        ext = self.half_extents
        overlap = np.all((self._box_lo[pi] <= q[qi] + ext) & (self._box_hi[pi] >= q[qi] - ext), axis=1)
        qi, pi = qi[overlap], pi[overlap]
        if qi.size == 0:
            return polygon, snapped
        cxz, over = self._closest_on_polygons(pi, q[qi][:, [0, 2]])
        cy = self.polygon_height(pi, cxz)
        dy = q[qi, 1] - cy
        score = np.where(over, np.maximum(np.abs(dy) - self.climb, 0.0) ** 2,
                         ((q[qi][:, [0, 2]] - cxz) ** 2).sum(axis=1) + dy**2)
        order = np.lexsort((pi, score, qi))
        first = order[np.concatenate([[True], np.diff(qi[order]) != 0])]
        polygon[qi[first]] = pi[first]
        snapped[qi[first]] = np.stack([cxz[first, 0], cy[first], cxz[first, 1]], axis=1)
        return polygon, snapped

    # ------------------------------------------------------------------ corridors

    def _tree_from(self, start_polygon: int, start: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Dijkstra over the portal graph from a start point on ``start_polygon``.

        Returns:
            dist: float64 (K,) cost to each portal's midpoint (inf where unreachable).
            pred: int64 (K,) previous portal on the way, K for the start.
            entered: int64 (K,) polygon the way enters through each portal (-1 where unreachable).
        """
        k = self.portal_polygons.shape[0]
        first = self._inc[self._inc_ptr[start_polygon] : self._inc_ptr[start_polygon + 1]]
        g = self._graph
        w = np.maximum(np.linalg.norm(self._mid[first] - start, axis=1), 1e-12)
        indptr = g.indptr.copy()
        indptr[-1] += first.size  # the start node is the last row
        graph = csr_matrix((np.concatenate([g.data, w]), np.concatenate([g.indices, first]), indptr), shape=g.shape)
        dist, pred = dijkstra(graph, directed=True, indices=k, return_predecessors=True)
        dist, pred = dist[:k], pred[:k].astype(np.int64)
        reach = np.isfinite(dist)
        pred = np.where(reach & (pred < 0), k, pred)
        pp = self.portal_polygons
        prev = np.where(pred == k, -1, pred)
        prev_pp = pp[np.maximum(prev, 0)]
        shared = np.where((pp[:, 0] == prev_pp[:, 0]) | (pp[:, 0] == prev_pp[:, 1]), pp[:, 0], pp[:, 1])
        came_from = np.where(pred == k, start_polygon, shared)
        entered = np.where(pp[:, 0] == came_from, pp[:, 1], pp[:, 0])
        return dist, pred, np.where(reach, entered, -1)

    def _best_entries(self, tree: tuple[np.ndarray, np.ndarray, np.ndarray], goal_polygon: np.ndarray,
                      goal: np.ndarray) -> np.ndarray:
        """For each goal (M,) on its polygon, the portal (int64 (M,), -1 unreachable) entering that polygon with
        the least cost to the goal: cost to the portal's midpoint + distance from there to the goal."""
        dist, _, entered = tree
        out = np.full(goal_polygon.size, -1, np.int64)
        owner, rows, first, count = _gather(self._inc_ptr, goal_polygon)
        cand = self._inc[rows]
        cost = dist[cand] + np.linalg.norm(self._mid[cand] - goal[owner], axis=1)
        cost = np.where(entered[cand] == goal_polygon[owner], cost, np.inf)
        if cand.size == 0:
            return out
        order = np.lexsort((cost, owner))
        has = count > 0
        best = order[first[has]]
        out[has] = np.where(np.isfinite(cost[best]), cand[best], -1)
        return out

    def _corridor(self, tree: tuple[np.ndarray, np.ndarray, np.ndarray], start_polygon: int,
                  last: int) -> tuple[list[int], list[int]]:
        """Polygons (start first) and the portals crossed between them, following the tree back from ``last``."""
        _, pred, entered = tree
        k = self.portal_polygons.shape[0]
        chain = [last]
        while pred[chain[-1]] != k:
            chain.append(int(pred[chain[-1]]))
            if len(chain) > k:  # cannot happen on a shortest-path tree; guards a corrupt graph
                raise RuntimeError("portal tree has a cycle")
        chain.reverse()
        return [start_polygon] + [int(entered[e]) for e in chain], chain

    # ------------------------------------------------------------------ string pulling

    def _straight_path(self, polys: list[int], portals: list[int], start: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """The string-pulled path (P, 3) through a corridor, heights on the detail mesh."""
        left, right = [(start[0], start[2])], [(start[0], start[2])]
        for n, e in enumerate(portals):
            a, b = self.portals[e, 0, [0, 2]], self.portals[e, 1, [0, 2]]
            cx, cz = self._centroid[polys[n]]
            if _cross(b[0] - a[0], b[1] - a[1], cx - a[0], cz - a[1]) < 0:  # walking through, b is on the left
                a, b = b, a  # when the from-polygon lies left of a->b
            left.append((float(b[0]), float(b[1])))
            right.append((float(a[0]), float(a[1])))
        left.append((goal[0], goal[2]))
        right.append((goal[0], goal[2]))
        corners = string_pull(left, right)
        xz = np.array([pt for pt, _ in corners], dtype=np.float64)
        owner = np.array([polys[max(i - 1, 0)] if i < len(left) - 1 else polys[-1] for _, i in corners], np.int64)
        y = self.polygon_height(owner, xz)
        path = np.stack([xz[:, 0], y, xz[:, 1]], axis=1)
        path[0], path[-1] = start, goal
        return path

    # ------------------------------------------------------------------ queries

    def geodesic_distance(self, start: np.ndarray, goals: np.ndarray) -> np.ndarray:
        """Walking distances from one point to many, as Habitat-Sim's ``PathFinder`` measures them.

        Args:
            start: (3,) world point in metres (snapped to the mesh first).
            goals: (G, 3) world points in metres (each snapped).

        Returns:
            float64 (G,) metres: the 3-D length of each straight path; inf where unreachable.
        """
        goals = np.asarray(goals, dtype=np.float64).reshape(-1, 3)
        return np.array([_length(p) for p in self._paths(start, goals)], dtype=np.float64).reshape(-1)

    def shortest_path(self, start: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """The straight path from ``start`` to ``goal`` (module docstring).

        Args:
            start, goal: (3,) world points in metres.

        Returns:
            float64 (P, 3) points from the snapped start to the snapped goal (P >= 2), empty (0, 3) when
            the goal cannot be reached.
        """
        return self._paths(start, np.asarray(goal, dtype=np.float64).reshape(1, 3))[0]

    def _paths(self, start: np.ndarray, goals: np.ndarray) -> list[np.ndarray]:
        """The straight path to every goal ((P, 3) each, empty when unreachable)."""
        empty = np.zeros((0, 3))
        s_poly, s = self.snap(np.asarray(start, dtype=np.float64).reshape(1, 3))
        g_poly, g = self.snap(goals)
        out = [empty] * goals.shape[0]
        if s_poly[0] < 0:
            return out
        ps, s = int(s_poly[0]), s[0]
        same = np.flatnonzero(g_poly == ps)
        for m in same:
            out[m] = np.stack([s, g[m]])
        other = np.flatnonzero((g_poly >= 0) & (g_poly != ps))
        if other.size == 0:
            return out
        tree = self._tree_from(ps, s)
        entry = self._best_entries(tree, g_poly[other], g[other])
        for m, e in zip(other, entry):
            if e >= 0:
                polys, portals = self._corridor(tree, ps, int(e))
                out[m] = self._straight_path(polys, portals, s, g[m])
        return out


def _length(path: np.ndarray) -> float:
    """Sum of the 3-D segment lengths of a (P, 3) path in metres; inf for an empty path."""
    if path.shape[0] == 0:
        return math.inf
    return float(np.linalg.norm(np.diff(path, axis=0), axis=1).sum())


def _gather(ptr: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The rows of grouped data (group q holds rows ``ptr[q]:ptr[q + 1]``) of each key, concatenated.

    Returns:
        owner: int64 (R,) position in ``keys`` of each gathered row; rows: int64 (R,) the row indices;
        first: int64 (M,) where each key's rows start in the output; count: int64 (M,) how many it has.
    """
    count = ptr[keys + 1] - ptr[keys]
    first = np.cumsum(count) - count
    owner = np.repeat(np.arange(keys.size), count)
    rows = np.repeat(ptr[keys], count) + (np.arange(owner.size) - np.repeat(first, count))
    return owner, rows, first, count


_Point = tuple[float, float]


def string_pull(left: list[_Point], right: list[_Point]) -> list[tuple[_Point, int]]:
    """The funnel algorithm: the shortest (x, z) polyline through a sequence of portals.

    Args:
        left, right: the (x, z) end points of each portal, left and right as seen walking through it, in
            corridor order; the first entry of both is the start, the last of both the goal.

    Returns:
        The path's points (start, corners, goal), each with the index of the portal it came from;
        consecutive equal points appear once.
    """
    n = len(left)
    out = [(left[0], 0)]
    apex, pl, pr = left[0], left[0], right[0]
    ia = il = ir = 0
    i = 1
    while i < n:
        (lx, lz), (rx, rz) = left[i], right[i]
        ax, az = apex
        if _cross(pr[0] - ax, pr[1] - az, rx - ax, rz - az) >= 0:  # the right side narrows (or holds)
            if _same(apex, pr) or _cross(pl[0] - ax, pl[1] - az, rx - ax, rz - az) < 0:
                pr, ir = (rx, rz), i
            else:  # right crosses over left: the left point is a corner
                out.append((pl, il))
                apex, ia = pl, il
                pl, pr, il, ir = apex, apex, ia, ia
                i = ia + 1
                continue
        if _cross(pl[0] - ax, pl[1] - az, lx - ax, lz - az) <= 0:  # the left side narrows (or holds)
            if _same(apex, pl) or _cross(pr[0] - ax, pr[1] - az, lx - ax, lz - az) > 0:
                pl, il = (lx, lz), i
            else:  # left crosses over right: the right point is a corner
                out.append((pr, ir))
                apex, ia = pr, ir
                pl, pr, il, ir = apex, apex, ia, ia
                i = ia + 1
                continue
        i += 1
    out.append((left[n - 1], n - 1))
    kept = [out[0]]
    for pt, k in out[1:]:
        if _same(pt, kept[-1][0]):
            kept[-1] = (pt, k)
        else:
            kept.append((pt, k))
    if len(kept) == 1:  # start and goal coincide: keep both ends
        kept.append(out[-1])
    return kept


def _same(a: _Point, b: _Point) -> bool:
    """Whether two (x, z) points coincide (within 1e-6 m)."""
    return (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2 < _SAME_EPS
