"""Convex polygons as Detour stores them, and their adjacency.

A polygon set is an int32 (P, 6) array of vertex indices padded with -1 together with an int32 (P,) count of
the vertices of each polygon (3 to 6). This module holds the array geometry the navmesh model
(:mod:`envsim.nav.navmesh`) and the binary format (:mod:`envsim.nav.detour`) share: fan triangulation, the
edges of the polygons, Detour's winding, merged vertices and ``neis`` for the encoder, polygons joined by a
shared edge and polygons joined through tile-border portals as Detour's ``findConnectingPolys`` joins them.
Coordinates are metres in the Y-up world frame.
"""

from __future__ import annotations

import numpy as np

DT_VERTS_PER_POLYGON = 6
"""Most vertices of one Detour polygon (``DT_VERTS_PER_POLYGON``): the padded width of a polygon array."""

_PORTAL_SLAB_EPS = 0.01
"""Detour's tolerance in metres for portal edges (same border line, shrunk overlap): findConnectingPolys."""

_EDGE_ROUND = 1e-4
"""Polygon edges whose end points agree after rounding to this many metres are shared edges."""


def fan_triangles(polygons: np.ndarray, vert_count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fan triangulation (v0, v[j-1], v[j]) of padded polygons: int32 (T, 3) and int32 (T,) polygon, grouped."""
    tris, owner = [], []
    for j in range(2, DT_VERTS_PER_POLYGON):
        sel = np.nonzero(vert_count > j)[0]
        tris.append(np.stack([polygons[sel, 0], polygons[sel, j - 1], polygons[sel, j]], axis=1))
        owner.append(sel)
    tri = np.concatenate(tris).astype(np.int32)
    own = np.concatenate(owner).astype(np.int32)
    order = np.argsort(own, kind="stable")
    return tri[order], own[order]


def polygon_edges(polygons: np.ndarray, vert_count: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every polygon edge: (N,) polygon, (N,) edge slot j, (N, 2) vertex indices (v[j], v[j+1 mod n])."""
    p = np.arange(polygons.shape[0])
    poly, slot, ends = [], [], []
    for j in range(DT_VERTS_PER_POLYGON):
        sel = p[vert_count > j]
        nxt = np.where(j + 1 < vert_count[sel], j + 1, 0)
        poly.append(sel)
        slot.append(np.full(sel.size, j))
        ends.append(np.stack([polygons[sel, j], polygons[sel, nxt]], axis=1))
    return np.concatenate(poly), np.concatenate(slot), np.concatenate(ends)


def merge_vertices(vertices: np.ndarray, polygons: np.ndarray, used: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep the polygon vertices (in their order), merging equal positions into the first of them.

    Args:
        vertices: float32 (V, 3) positions in metres.
        polygons: int (P, 6) vertex indices padded with -1.
        used: bool (P, 6) the slots below each polygon's vertex count.

    Returns:
        float32 (V', 3) vertices and int64 (P, 6) polygons indexing them, padded with -1.
    """
    referenced = np.unique(polygons[used])
    _, first, inverse = np.unique(vertices[referenced], axis=0, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first)] = np.arange(first.size)  # unique row -> output vertex, in first-use order
    verts = vertices[referenced[np.sort(first)]]
    new_index = np.zeros(vertices.shape[0], dtype=np.int64)
    new_index[referenced] = rank[inverse.reshape(-1)]
    return verts, np.where(used, new_index[np.maximum(polygons, 0)], -1)


def wind_like_detour(verts: np.ndarray, polys: np.ndarray, nv: np.ndarray, used: np.ndarray) -> np.ndarray:
    """Reverse (in place) the polygons not wound as Detour winds them; returns ``polys``.

    Args:
        verts: (V, 3) positions in metres.
        polys: int64 (P, 6) vertex indices padded with -1; modified.
        nv: (P,) vertices of each polygon.
        used: bool (P, 6) the slots below each polygon's vertex count.
    """
    # Detour's winding: sum(x_i z_{i+1} - x_{i+1} z_i) < 0 (counter-clockwise seen from +Y); its path funnel
    # relies on it.
    xz = verts.astype(np.float64)[np.maximum(polys, 0)][:, :, [0, 2]]  # (P, 6, 2)
    nxt = (np.arange(DT_VERTS_PER_POLYGON)[None, :] + 1) % nv[:, None]  # (P, 6)
    xz1 = np.take_along_axis(xz, nxt[:, :, None], axis=1)
    shoelace = np.where(used, xz[:, :, 0] * xz1[:, :, 1] - xz1[:, :, 0] * xz[:, :, 1], 0.0).sum(axis=1)
    flip = shoelace > 0
    rev = (nv[:, None] - 1 - np.arange(DT_VERTS_PER_POLYGON)[None, :]).clip(0)
    polys[flip] = np.where(used[flip], np.take_along_axis(polys[flip], rev[flip], axis=1), -1)
    return polys


def edge_neis(polys: np.ndarray, nv: np.ndarray, v: int) -> np.ndarray:
    """Detour's ``neis`` of (P, 6) polygons over ``v`` vertices: other polygon + 1 across a shared edge, else 0.

    Edges are shared when their end points are the same vertex indices; returns int64 (P, 6).
    """
    p = polys.shape[0]
    poly, slot, ends = polygon_edges(polys, nv)
    key = np.minimum(ends[:, 0], ends[:, 1]) * (v + 1) + np.maximum(ends[:, 0], ends[:, 1])
    order = np.argsort(key, kind="stable")
    neis = np.zeros((p, DT_VERTS_PER_POLYGON), dtype=np.int64)
    k_sorted = key[order]
    same = np.nonzero(k_sorted[1:] == k_sorted[:-1])[0]
    e0, e1 = order[same], order[same + 1]
    diff = poly[e0] != poly[e1]
    e0, e1 = e0[diff], e1[diff]
    neis[poly[e0], slot[e0]] = poly[e1] + 1
    neis[poly[e1], slot[e1]] = poly[e0] + 1
    return neis


def _pairs_by_key(key: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Pairs of owners of equal keys (each owner chained to the next with the same key): int64 (M, 2)."""
    order = np.argsort(key, kind="stable")
    k, o = key[order], owner[order]
    same = np.nonzero(k[1:] == k[:-1])[0]
    return np.stack([o[same], o[same + 1]], axis=1)


def shared_edge_pairs(vertices: np.ndarray, polygons: np.ndarray, vert_count: np.ndarray) -> np.ndarray:
    """Polygon pairs with an edge whose end points (metres) agree after rounding to 0.1 mm: int32 (E, 2)."""
    q = np.round(vertices.astype(np.float64) / _EDGE_ROUND)  # (V, 3) whole numbers, kept as floats
    order = np.lexsort(q.T[::-1])
    new = np.ones(q.shape[0], dtype=bool)
    new[1:] = np.any(q[order][1:] != q[order][:-1], axis=1)
    vid = np.empty(q.shape[0], dtype=np.int64)
    vid[order] = np.cumsum(new) - 1  # same id for coinciding vertices
    n_ids = int(vid.max()) + 1 if vid.size else 1
    poly, _, ends = polygon_edges(polygons, vert_count)
    a, b = vid[ends[:, 0]], vid[ends[:, 1]]
    ok = a != b
    key = np.minimum(a, b)[ok] * n_ids + np.maximum(a, b)[ok]
    return normalise_pairs(_pairs_by_key(key, poly[ok]))


def normalise_pairs(*pair_sets: np.ndarray) -> np.ndarray:
    """Union of (N, 2) polygon pairs as unique sorted (i < j) int32 (E, 2), self pairs dropped."""
    pairs = np.concatenate([np.asarray(s, dtype=np.int64).reshape(-1, 2) for s in pair_sets])
    pairs = np.sort(pairs, axis=1)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    if pairs.size == 0:
        return np.zeros((0, 2), np.int32)
    n = int(pairs[:, 1].max()) + 1
    key = np.sort(pairs[:, 0] * n + pairs[:, 1])  # 1-D keys sort much faster than rows
    key = key[np.concatenate([[True], key[1:] != key[:-1]])]
    return np.stack([key // n, key % n], axis=1).astype(np.int32)


def _slab(va: np.ndarray, vb: np.ndarray, axis: int, along: int) -> tuple[np.ndarray, ...]:
    """Portal edges as Detour's slabs (``getSlabCoord``, ``calcSlabEndPoints``).

    Args:
        va, vb: (N, 3) end points in metres.
        axis: coordinate that is constant on the border line (0: x, 2: z).
        along: coordinate along the border line (2 or 0).

    Returns:
        pos, u0, y0, u1, y1: (N,) each: the border coordinate, then the end points ordered along the line
        (u0 <= u1) with their heights.
    """
    swap = va[:, along] > vb[:, along]
    p0 = np.where(swap[:, None], vb, va)
    p1 = np.where(swap[:, None], va, vb)
    return va[:, axis], p0[:, along], p0[:, 1], p1[:, along], p1[:, 1]


def match_portals(
    poly: np.ndarray, side: np.ndarray, va: np.ndarray, vb: np.ndarray, tile: np.ndarray, climb: np.ndarray
) -> np.ndarray:
    """Polygon pairs joined through tile-border portals, as Detour's ``findConnectingPolys`` joins them.

    A portal edge on side s (0: +x, 2: +z, 4: -x, 6: -z) of one tile joins a portal edge on the opposite
    side of another tile when both lie on the same border line (within 1 cm), overlap along it by more
    than 2 cm, and their heights over the overlap agree within twice the walkable climb (or cross).

    Args:
        poly: (N,) global polygon of each portal edge.
        side: (N,) Detour side of each portal edge.
        va, vb: (N, 3) float64 end points of each edge in metres.
        tile: (N,) tile of each edge.
        climb: (N,) walkable climb in metres of each edge's tile.

    Returns:
        int64 (M, 2) polygon pairs.
    """
    out = [np.zeros((0, 2), np.int64)]
    for s_pos, s_neg, axis, along in ((0, 4, 0, 2), (2, 6, 2, 0)):
        a = np.nonzero(side == s_pos)[0]
        b = np.nonzero(side == s_neg)[0]
        if a.size == 0 or b.size == 0:
            continue
        apos, au0, ay0, au1, ay1 = _slab(va[a], vb[a], axis, along)
        bpos, bu0, by0, bu1, by1 = _slab(va[b], vb[b], axis, along)
        # Candidates: b edges in the neighbouring position bins whose start lies in [a.u0 - longest b, a.u1].
        bin_w = 2 * _PORTAL_SLAB_EPS
        kb = np.floor(bpos / bin_w)  # whole numbers kept as floats (no overflow on absurd coordinates)
        umin = min(au0.min(), bu0.min())
        maxlen = float((bu1 - bu0).max())
        span = max(au1.max(), bu1.max()) - umin + 2 * maxlen + 1.0
        order = np.lexsort((bu0, kb))
        keys, rank_sorted = np.unique(kb[order], return_inverse=True)
        comp = rank_sorted * span + (bu0[order] - umin)  # sorted
        ka = np.floor(apos / bin_w)
        ia_all, jb_all = [], []
        for dk in (-1, 0, 1):
            q = ka + dk
            r = np.searchsorted(keys, q)
            found = (r < keys.size) & (keys[np.minimum(r, keys.size - 1)] == q)
            lo = np.searchsorted(comp, r * span + (au0 - umin) - maxlen - bin_w, side="left")
            hi = np.searchsorted(comp, r * span + (au1 - umin) + bin_w, side="right")
            n = np.where(found, hi - lo, 0)
            ia = np.repeat(np.arange(a.size), n)
            first = np.repeat(np.cumsum(n) - n, n)
            ia_all.append(ia)
            jb_all.append(order[np.repeat(lo, n) + (np.arange(ia.size) - first)])
        i = np.concatenate(ia_all)
        j = np.concatenate(jb_all)
        ok = (np.abs(apos[i] - bpos[j]) <= _PORTAL_SLAB_EPS) & (tile[a[i]] != tile[b[j]])
        minx = np.maximum(au0[i], bu0[j]) + _PORTAL_SLAB_EPS
        maxx = np.minimum(au1[i], bu1[j]) - _PORTAL_SLAB_EPS
        ok &= minx <= maxx
        with np.errstate(divide="ignore", invalid="ignore"):
            ad = (ay1[i] - ay0[i]) / (au1[i] - au0[i])
            bd = (by1[j] - by0[j]) / (bu1[j] - bu0[j])
            dmin = (by0[j] + bd * (minx - bu0[j])) - (ay0[i] + ad * (minx - au0[i]))
            dmax = (by0[j] + bd * (maxx - bu0[j])) - (ay0[i] + ad * (maxx - au0[i]))
            thr = (2.0 * np.maximum(climb[a[i]], climb[b[j]])) ** 2
            ok &= (dmin * dmax < 0) | (dmin * dmin <= thr) | (dmax * dmax <= thr)
        out.append(np.stack([poly[a[i[ok]]], poly[b[j[ok]]]], axis=1))
    return np.concatenate(out)
