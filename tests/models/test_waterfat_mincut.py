"""The compiled Boykov–Kolmogorov minimum cut against SciPy's Dinic max-flow (an independent solver)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order, maximum_flow

from osteomri.models.waterfat.fieldmap import grid_edges
from osteomri.models.waterfat.mincut import min_cut_source_side


def _scipy_reference(n, src, snk, tail, head, cap):
    """Max-flow value and the set reachable from the source in the residual graph (SciPy Dinic)."""
    s, t = n, n + 1
    nodes = np.arange(n)
    rows = np.concatenate([np.full(n, s), nodes, tail])
    cols = np.concatenate([nodes, np.full(n, t), head])
    vals = np.concatenate([src, snk, cap])
    keep = vals > 0
    graph = sp.csr_matrix((vals[keep].astype(np.int32), (rows[keep], cols[keep])), shape=(n + 2, n + 2))
    flow = maximum_flow(graph, s, t, method="dinic")
    residual = (graph - flow.flow).tocsr()
    residual.data[residual.data < 0] = 0
    residual.eliminate_zeros()
    side = np.zeros(n + 2, bool)
    side[breadth_first_order(residual, s, directed=True, return_predecessors=False)] = True
    return flow.flow_value, side[:n]


def _cut_capacity(side, src, snk, tail, head, cap):
    return int(src[~side].sum() + snk[side].sum() + cap[side[tail] & ~side[head]].sum())


def test_random_graphs_match_an_independent_max_flow():
    rng = np.random.default_rng(0)
    for _ in range(400):
        n = int(rng.integers(1, 50))
        m = int(rng.integers(0, 4 * n + 1))
        tail, head = rng.integers(0, n, m), rng.integers(0, n, m)
        keep = tail != head
        tail, head = tail[keep], head[keep]
        cap = rng.integers(0, int(rng.choice([3, 20, 1000])), tail.size)
        d = rng.integers(-30, 30, n) * (rng.random(n) < 0.7)
        src, snk = np.maximum(d, 0), np.maximum(-d, 0)
        value, reference = _scipy_reference(n, src, snk, tail, head, cap)
        side = min_cut_source_side(n, src, snk, tail, head, cap)
        assert _cut_capacity(side, src, snk, tail, head, cap) == value  # a minimum cut (max-flow min-cut)
        np.testing.assert_array_equal(side, reference)  # and the smallest source set, as a BFS gives


def test_grid_graph_with_both_terminal_capacities():
    # a 3-D grid as in the field-map jump moves, with nodes tied to both terminals at once
    rng = np.random.default_rng(1)
    shape = (12, 10, 4)
    n = int(np.prod(shape))
    tail, head, _ = grid_edges(shape, np.ones(3))
    cap = rng.integers(0, 400, tail.size)
    src, snk = rng.integers(0, 1000, n), rng.integers(0, 1000, n)
    value, reference = _scipy_reference(n, src, snk, tail, head, cap)
    side = min_cut_source_side(n, src, snk, tail, head, cap)
    # the cut value counts min(src, snk) of every node once more than the net terminal capacity does
    assert _cut_capacity(side, src, snk, tail, head, cap) == value
    np.testing.assert_array_equal(side, reference)


def test_hand_worked_chain():
    # s -5-> 0 -3-> 1 -4-> t: the bottleneck 0->1 is cut; node 0 stays with the source
    side = min_cut_source_side(2, np.array([5, 0]), np.array([0, 4]), np.array([0]), np.array([1]), np.array([3]))
    np.testing.assert_array_equal(side, [True, False])
    # a node with no terminal arcs and no path from the source is on the sink side
    side = min_cut_source_side(3, np.array([5, 0, 0]), np.array([0, 4, 0]), np.array([0]), np.array([1]),
                               np.array([9]))
    np.testing.assert_array_equal(side, [True, True, False])


def test_bad_input_is_refused():
    one = np.array([1])
    with pytest.raises(ValueError, match="non-negative"):
        min_cut_source_side(2, np.array([1, 0]), np.array([0, 1]), np.array([0]), np.array([1]), np.array([-1]))
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        min_cut_source_side(2, np.array([1, 0]), np.array([0, 1]), np.array([0]), np.array([2]), one)
    with pytest.raises(ValueError, match="shape"):
        min_cut_source_side(2, one, np.array([0, 1]), np.array([0]), np.array([1]), one)


def test_imports_and_cuts_without_a_writable_numba_cache():
    # a read-only install with no writable home: numba finds no cache location; the kernels then compile
    # per process instead of failing at import (run in a fresh interpreter, the patch stays there)
    import subprocess
    import sys

    code = (
        "import numba.core.caching as c; c.CacheImpl._locator_classes = []\n"
        "import numpy as np\n"
        "from osteomri.models.waterfat.mincut import min_cut_source_side\n"
        "print(min_cut_source_side(2, np.array([5, 0]), np.array([0, 4]), np.array([0]), np.array([1]),"
        " np.array([3])).tolist())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[True, False]"
