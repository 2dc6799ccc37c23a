"""Minimum s-t cut of sparse graphs with the Boykov–Kolmogorov augmenting-path algorithm (compiled with Numba).

Boykov & Kolmogorov, "An experimental comparison of min-cut/max-flow algorithms for energy minimization in
vision", IEEE TPAMI 2004;26:1124. Two search trees grow from the source (S) and the sink (T); a path found
where they touch is augmented, the nodes cut off by saturated tree arcs ("orphans") are re-adopted or freed.
On the grid graphs of the field-map jump moves it is about ten times faster than SciPy's Dinic
(``scipy.sparse.csgraph.maximum_flow``), which the tests use as the independent reference.

Capacities are integers (int64), so the result is exact: the returned source side is the set of nodes
reachable from the source in the residual graph of a maximum flow (the smallest minimum-cut source set,
unique whatever the maximum flow), the same set a breadth-first search after any max-flow solver gives.
"""

from __future__ import annotations

import numpy as np

from osteomri.models.jit import compiled as _compiled

_FREE, _SOURCE, _SINK = 0, 1, 2
_TERMINAL, _ORPHAN, _NONE = -1, -2, -3
_INF_DIST = 1 << 60


@_compiled
def _arcs(n: int, tail: np.ndarray, head: np.ndarray, cap: np.ndarray):
    """Arcs grouped by tail (CSR): each edge i->j (capacity c) becomes arc i->j (c) and its sister j->i (0)."""
    m = tail.size
    deg = np.zeros(n + 1, np.int64)
    for e in range(m):
        deg[tail[e] + 1] += 1
        deg[head[e] + 1] += 1
    first = np.cumsum(deg)
    fill = first[:-1].copy()
    arc_head = np.empty(2 * m, np.int64)
    arc_cap = np.empty(2 * m, np.int64)
    sister = np.empty(2 * m, np.int64)
    for e in range(m):
        a = fill[tail[e]]
        fill[tail[e]] += 1
        b = fill[head[e]]
        fill[head[e]] += 1
        arc_head[a] = head[e]
        arc_cap[a] = cap[e]
        arc_head[b] = tail[e]
        arc_cap[b] = 0
        sister[a] = b
        sister[b] = a
    return first, arc_head, arc_cap, sister


@_compiled
def _flow_arc(a: int, sister: np.ndarray, in_source_tree: bool) -> int:
    """Of a tree arc ``a`` (child -> parent), the direction in which flow runs towards the sink."""
    return sister[a] if in_source_tree else a


@_compiled
def _push(queue: np.ndarray, in_queue: np.ndarray, q_tail: int, v: int) -> int:
    """Append ``v`` to the circular FIFO of active nodes (once); returns the new tail."""
    if in_queue[v]:
        return q_tail
    queue[q_tail] = v
    in_queue[v] = True
    return (q_tail + 1) % queue.size


@_compiled
def _source_side(n: int, terminal: np.ndarray, tail: np.ndarray, head: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """Boykov–Kolmogorov max-flow; ``terminal[v]`` > 0: capacity source->v, < 0: capacity v->sink (negated).

    A tree node's ``parent`` is the arc from the node to its parent; flow towards the sink runs along the
    sister of that arc in the source tree and along the arc itself in the sink tree (:func:`_flow_arc`).
    """
    first, arc_head, rcap, sister = _arcs(n, tail, head, cap)
    tr = terminal.copy()
    tree = np.zeros(n, np.int8)
    parent = np.full(n, _NONE, np.int64)  # arc towards the parent, or _TERMINAL / _ORPHAN / _NONE
    ts = np.zeros(n, np.int64)  # time stamp and distance to the terminal (the adoption heuristic)
    dist = np.zeros(n, np.int64)
    queue = np.empty(n + 1, np.int64)  # circular FIFO of active nodes
    in_queue = np.zeros(n, np.bool_)
    q_head = 0
    q_tail = 0
    orphans = np.empty(n, np.int64)  # circular FIFO of orphans (a node is an orphan at most once at a time)
    o_head = 0
    o_tail = 0
    time = 0
    for v in range(n):
        if tr[v] != 0:
            tree[v] = _SOURCE if tr[v] > 0 else _SINK
            parent[v] = _TERMINAL
            dist[v] = 1
            q_tail = _push(queue, in_queue, q_tail, v)
    current = -1
    while True:
        # --- next active node (the current one again right after an augmentation)
        i = -1
        if current >= 0 and tree[current] != _FREE:
            i = current
        else:
            while q_head != q_tail:
                v = queue[q_head]
                q_head = (q_head + 1) % (n + 1)
                in_queue[v] = False
                if tree[v] != _FREE:
                    i = v
                    break
        if i < 0:
            break
        current = -1
        # --- growth: a free neighbour joins i's tree; a neighbour in the other tree closes a path
        src_i = tree[i] == _SOURCE
        bridge = -1  # arc from the source tree to the sink tree
        for a in range(first[i], first[i + 1]):
            child_arc = sister[a]  # j -> i, j's parent arc if it joins
            if rcap[_flow_arc(child_arc, sister, src_i)] == 0:
                continue
            j = arc_head[a]
            if tree[j] == _FREE:
                tree[j] = tree[i]
                parent[j] = child_arc
                ts[j] = ts[i]
                dist[j] = dist[i] + 1
                q_tail = _push(queue, in_queue, q_tail, j)
            elif tree[j] != tree[i]:
                bridge = _flow_arc(child_arc, sister, src_i)
                break
            elif ts[j] <= ts[i] and dist[j] > dist[i]:  # a shorter path to the terminal
                parent[j] = child_arc
                ts[j] = ts[i]
                dist[j] = dist[i] + 1
        time += 1
        if bridge < 0:
            continue
        current = i
        # --- augmentation by the bottleneck of source ... s_node -> t_node ... sink
        ends = (arc_head[sister[bridge]], arc_head[bridge])  # (source-tree end, sink-tree end)
        delta = rcap[bridge]
        for side in range(2):
            in_src = side == 0
            v = ends[side]
            while parent[v] != _TERMINAL:
                delta = min(delta, rcap[_flow_arc(parent[v], sister, in_src)])
                v = arc_head[parent[v]]
            delta = min(delta, tr[v] if in_src else -tr[v])
        rcap[bridge] -= delta
        rcap[sister[bridge]] += delta
        for side in range(2):
            in_src = side == 0
            v = ends[side]
            while True:
                a = parent[v]
                if a == _TERMINAL:
                    tr[v] += -delta if in_src else delta
                    if tr[v] == 0:
                        parent[v] = _ORPHAN
                        orphans[o_tail % n] = v
                        o_tail += 1
                    break
                f = _flow_arc(a, sister, in_src)
                rcap[f] -= delta
                rcap[sister[f]] += delta
                if rcap[f] == 0:
                    parent[v] = _ORPHAN
                    orphans[o_tail % n] = v
                    o_tail += 1
                v = arc_head[a]
        # --- adoption: each orphan takes the neighbour closest to its terminal as parent, or becomes free
        while o_head != o_tail:
            v = orphans[o_head % n]
            o_head += 1
            side_v = tree[v]
            in_src = side_v == _SOURCE
            best_arc = -1
            best_dist = _INF_DIST
            for a in range(first[v], first[v + 1]):
                j = arc_head[a]
                if tree[j] != side_v or rcap[_flow_arc(a, sister, in_src)] == 0:
                    continue
                # is j rooted at the terminal (not below an orphan)? its distance, with time stamps
                d = 0
                k = j
                while True:
                    if ts[k] == time:
                        d += dist[k]
                        break
                    pa = parent[k]
                    d += 1
                    if pa == _TERMINAL:
                        ts[k] = time
                        dist[k] = 1
                        break
                    if pa == _ORPHAN or pa == _NONE:
                        d = _INF_DIST
                        break
                    k = arc_head[pa]
                if d < _INF_DIST:
                    if d < best_dist:
                        best_arc = a
                        best_dist = d
                    k = j
                    while ts[k] != time:
                        ts[k] = time
                        dist[k] = d
                        d -= 1
                        k = arc_head[parent[k]]
            if best_arc >= 0:
                parent[v] = best_arc
                ts[v] = time
                dist[v] = best_dist + 1
                continue
            # no valid parent: v becomes free; neighbours that could grow into it become active, its
            # children orphans
            for a in range(first[v], first[v + 1]):
                j = arc_head[a]
                if tree[j] != side_v:
                    continue
                if rcap[_flow_arc(a, sister, in_src)] > 0:
                    q_tail = _push(queue, in_queue, q_tail, j)
                pa = parent[j]
                if pa >= 0 and arc_head[pa] == v:
                    parent[j] = _ORPHAN
                    orphans[o_tail % n] = j
                    o_tail += 1
            tree[v] = _FREE
            parent[v] = _NONE
    return tree == _SOURCE


def min_cut_source_side(n: int, source_cap: np.ndarray, sink_cap: np.ndarray, tail: np.ndarray,
                        head: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """Source side (boolean, length ``n``) of the minimum s-t cut; every capacity an integer >= 0.

    ``source_cap[v]`` / ``sink_cap[v]``: capacities source->v and v->sink; ``(tail, head, cap)``: arcs
    tail->head between the nodes. Raises ``ValueError`` on negative capacities or out-of-range nodes.
    """
    source_cap = np.asarray(source_cap, np.int64)
    sink_cap = np.asarray(sink_cap, np.int64)
    tail = np.asarray(tail, np.int64)
    head = np.asarray(head, np.int64)
    cap = np.asarray(cap, np.int64)
    if source_cap.shape != (n,) or sink_cap.shape != (n,):
        raise ValueError(f"terminal capacities must have shape ({n},), got {source_cap.shape} and {sink_cap.shape}")
    if not (tail.shape == head.shape == cap.shape) or tail.ndim != 1:
        raise ValueError("tail, head and cap must be 1-D arrays of one length")
    if (source_cap < 0).any() or (sink_cap < 0).any() or (cap < 0).any():
        raise ValueError("capacities must be non-negative")
    if tail.size and (min(tail.min(), head.min()) < 0 or max(tail.max(), head.max()) >= n):
        raise ValueError(f"arc end points must lie in [0, {n})")
    if n == 0:
        return np.zeros(0, bool)
    return _source_side(n, source_cap - sink_cap, tail, head, cap)
