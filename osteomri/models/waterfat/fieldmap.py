"""Spatially regularised field-map estimation over a discrete grid, coarse to fine.

Energy (a discrete Markov random field over the field-map grid labels ``l_i`` of every voxel ``i``):

    E(l) = sum_i D_i(l_i) + sum_(i,j neighbours) mu_ij * (psi(l_i) - psi(l_j))^2

with ``D_i`` the VARPRO residual of voxel ``i`` (:mod:`osteomri.models.waterfat.varpro`; zero in voxels
without signal, so the field is interpolated smoothly through air) and ``mu_ij`` a smoothness weight in
residual units per Hz^2 (Hernando et al., MRM 2010;63:79, "graph cut" field-map estimation).

Minimisation, coarse to fine (in the spirit of Berglund & Kullberg, MRM 2012;67:1684, and the hierarchical
IDEAL of Tsao & Jiang, MRM 2013;70:155): the residual curves are *summed* over blocks of 2^k voxels, which is
the exact data term of a field that is constant over each block; pooling water-only and fat-only tissue in
one block removes the water–fat ambiguity of single voxels. On the coarsest levels the energy is minimised
with graph-cut "jump moves" (each move a binary min-cut, solved by the Boykov–Kolmogorov algorithm of :mod:`.mincut`;
for the convex smoothness term every jump move is submodular, Hernando 2010 after Ishikawa / Veksler),
then each finer level is initialised by upsampling and relaxed with checkerboard iterated conditional
modes (Besag, J R Stat Soc B 1986), vectorised over voxels. Smoothness weights at level k are scaled so
that a linear field costs the same at every level (face count / block length^2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from osteomri.models.waterfat.varpro import FieldGrid


@dataclass
class Level:
    """One resolution level: grid shape, block size (in finest voxels) and pooled data term."""

    shape: tuple[int, int, int]
    block: tuple[int, int, int]
    data: np.ndarray  # [n_vox_level, n_labels] float32, or at the finest level [n_signal, n_labels]
    axis_weight: np.ndarray  # smoothness weight per axis (residual units / Hz^2)


def _coarse_index(coords: np.ndarray, block: tuple[int, int, int], shape: tuple[int, int, int]) -> np.ndarray:
    c = coords // np.asarray(block)
    return np.ravel_multi_index((c[:, 0], c[:, 1], c[:, 2]), shape)


def level_blocks(shape: tuple[int, int, int], min_size: int = 8) -> list[tuple[int, int, int]]:
    """Block size (finest voxels per axis) of every level, finest first: each coarser level halves every
    axis of at least ``2 * min_size`` (current length) voxels."""
    blocks = [(1, 1, 1)]
    block = np.ones(3, int)
    while True:
        cur = -(-np.asarray(shape) // block)
        grow = cur >= 2 * min_size
        if not grow.any():
            return blocks
        block = block * np.where(grow, 2, 1)
        blocks.append(tuple(int(b) for b in block))


def build_levels(shape: tuple[int, int, int], signal_index: np.ndarray, data: np.ndarray,
                 axis_weight: np.ndarray, min_size: int = 8) -> list[Level]:
    """Finest level first, with the blocks of :func:`level_blocks`; the data term is summed over each block
    (each level pooled from the one below it)."""
    levels = [Level(shape, (1, 1, 1), data, np.asarray(axis_weight, float))]
    fine_index, fine_shape, fine_data = signal_index, shape, data
    fine_block = np.ones(3, int)
    for block in level_blocks(shape, min_size)[1:]:
        b = np.asarray(block)
        cshape = tuple(int(v) for v in -(-np.asarray(shape) // b))
        coords = np.stack(np.unravel_index(fine_index, fine_shape), axis=1)
        idx = _coarse_index(coords, tuple(int(r) for r in b // fine_block), cshape)
        pool = sp.csr_matrix((np.ones(idx.size, np.float32), (idx, np.arange(idx.size))),
                             shape=(int(np.prod(cshape)), idx.size))
        pooled = np.asarray(pool @ fine_data, dtype=np.float32)
        face = np.array([b[1] * b[2], b[0] * b[2], b[0] * b[1]], float)
        levels.append(Level(cshape, block, pooled, axis_weight * face / b**2))
        fine_index, fine_shape, fine_data, fine_block = np.arange(pooled.shape[0]), cshape, pooled, b
    return levels


def grid_edges(shape: tuple[int, int, int], axis_weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """6-neighbour edges of a 3-D grid: (i, j, weight) arrays with i < j along each axis."""
    idx = np.arange(int(np.prod(shape))).reshape(shape)
    ii, jj, ww = [], [], []
    for axis in range(3):
        if shape[axis] < 2 or axis_weight[axis] <= 0:
            continue
        a = np.take(idx, np.arange(shape[axis] - 1), axis=axis).ravel()
        b = np.take(idx, np.arange(1, shape[axis]), axis=axis).ravel()
        ii.append(a)
        jj.append(b)
        ww.append(np.full(a.size, axis_weight[axis]))
    if not ii:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0)
    return np.concatenate(ii), np.concatenate(jj), np.concatenate(ww)


def energy(data: np.ndarray, labels: np.ndarray, grid: FieldGrid, edges: tuple) -> float:
    i, j, w = edges
    g = grid.values_hz
    smooth = (w * grid.difference(g[labels[i]], g[labels[j]]) ** 2).sum()
    return float(data[np.arange(labels.size), labels].sum() + smooth)


def _min_cut_source_side(n: int, src_cap: np.ndarray, snk_cap: np.ndarray, i: np.ndarray, j: np.ndarray,
                         cap: np.ndarray) -> np.ndarray:
    """Boolean source-side membership of the minimum s-t cut of a graph with n nodes (float capacities).

    Capacities are scaled to integers (the largest to 1e6) so that the cut is exact (:mod:`.mincut`).
    """
    from osteomri.models.waterfat.mincut import min_cut_source_side  # Numba loads on the first graph cut

    scale = 1e6 / max(float(np.max(src_cap, initial=0)), float(np.max(snk_cap, initial=0)),
                      float(np.max(cap, initial=0)), 1e-30)

    def integer(x: np.ndarray) -> np.ndarray:
        return np.round(x * scale).astype(np.int64)

    return min_cut_source_side(n, integer(src_cap), integer(snk_cap), i, j, integer(cap))


def _destination(data: np.ndarray, labels: np.ndarray, alpha: int, n_lab: int, circular: bool,
                 window: int) -> np.ndarray:
    """Per-voxel destination of a jump: the lowest data cost within ``window`` labels of ``label + alpha``.

    A voxel-specific destination lets one move shift a whole region onto its alias minimum even where the
    alias spacing varies (multi-peak fat, R2*), which exact-size jump moves cannot.
    """
    if window == 0:
        shifted = labels + alpha
        return shifted % n_lab if circular else np.clip(shifted, 0, n_lab - 1)
    offsets = np.arange(-window, window + 1)
    cand = labels[:, None] + alpha + offsets[None, :]
    cand = cand % n_lab if circular else np.clip(cand, 0, n_lab - 1)
    cost = np.take_along_axis(data, cand, axis=1) + 1e-9 * np.abs(offsets)[None, :]
    return np.take_along_axis(cand, cost.argmin(axis=1)[:, None], axis=1)[:, 0]


def _squared_steps(grid: FieldGrid) -> np.ndarray:
    """``(psi_a - psi_b)^2`` (Hz^2, wrapped on a circular grid) indexed by the label difference ``a - b + n - 1``."""
    n_lab = grid.values_hz.size
    return grid.difference(np.arange(-(n_lab - 1), n_lab) * grid.step_hz, 0.0) ** 2


def jump_moves(data: np.ndarray, labels: np.ndarray, grid: FieldGrid, edges: tuple,
               jumps: list[int], sweeps: int = 3) -> np.ndarray:
    """Minimise the MRF energy by graph-cut jump moves (Hernando et al. 2010), each a binary min-cut.

    A move is kept when it lowers the exact energy (the cut minimises the move's submodular truncation).
    """
    n_lab = grid.values_hz.size
    sq, off = _squared_steps(grid), n_lab - 1
    i, j, w = edges
    labels = labels.copy()
    rows = np.arange(labels.size)
    best = energy(data, labels, grid, edges)
    for _ in range(sweeps):
        improved = False
        for alpha in jumps:
            new = _destination(data, labels, alpha, n_lab, grid.circular, window=abs(alpha) // 6)
            if grid.circular:
                valid = np.ones(labels.size, bool)
            else:
                valid = (labels + alpha >= 0) & (labels + alpha < n_lab)
            u0 = data[rows, labels].astype(float)
            u1_data = np.where(valid, data[rows, new], np.inf).astype(float)
            li, lj, ni, nj = labels[i], labels[j], new[i], new[j]
            a = w * sq[li - lj + off]  # pair cost: neither end jumps, only j, only i, both
            b = w * sq[li - nj + off]
            c = w * sq[ni - lj + off]
            d = w * sq[ni - nj + off]
            u1 = u1_data + np.bincount(i, c - a, labels.size) + np.bincount(j, d - c, labels.size)
            pair = np.maximum(b + c - a - d, 0.0)  # truncation keeps the move submodular
            diff = u1 - u0
            big = 1e3 * (np.abs(u0).sum() + pair.sum() + 1.0)
            diff = np.where(np.isfinite(diff), diff, big)
            src = np.maximum(diff, 0.0)  # paid when the node jumps (sink side)
            snk = np.maximum(-diff, 0.0)  # paid when the node stays (source side)
            jump = ~_min_cut_source_side(labels.size, src, snk, i, j, pair) & valid
            ji, jj = jump[i], jump[j]
            change = (u1_data[jump] - u0[jump]).sum() + (np.where(ji, np.where(jj, d, c), np.where(jj, b, a)) - a).sum()
            if change < -1e-9 * abs(best):
                labels, best, improved = np.where(jump, new, labels), best + change, True
        if not improved:
            break
    return labels


def _neighbour_mean_at(psi: np.ndarray, vox: np.ndarray, shape: tuple[int, int, int], grid: FieldGrid,
                       axis_weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted neighbour sum-of-weights and mean field (unwrapped around each voxel) at flat indices ``vox``.

    ``psi``: the flat field (Hz) of a 3-D grid of ``shape``; only the voxels ``vox`` are evaluated.
    """
    p = psi[vox]
    wsum = np.zeros(vox.size)
    dsum = np.zeros(vox.size)
    coords = np.unravel_index(vox, shape)
    strides = (shape[1] * shape[2], shape[2], 1)
    for axis in range(3):
        if shape[axis] < 2 or axis_weight[axis] <= 0:
            continue
        for shift in (1, -1):
            valid = coords[axis] >= 1 if shift == 1 else coords[axis] <= shape[axis] - 2
            nb = psi[np.where(valid, vox - shift * strides[axis], vox)]
            d = grid.difference(nb, p)
            wsum += np.where(valid, axis_weight[axis], 0.0)
            dsum += np.where(valid, axis_weight[axis] * d, 0.0)
    return wsum, p + dsum / np.maximum(wsum, 1e-30)


def _neighbours(vox: np.ndarray, shape: tuple[int, int, int], axis_weight: np.ndarray) -> np.ndarray:
    """Boolean mask (flat) of the 6-neighbours of the flat voxel indices ``vox`` along weighted axes."""
    mask = np.zeros(int(np.prod(shape)), bool)
    coords = np.unravel_index(vox, shape)
    strides = (shape[1] * shape[2], shape[2], 1)
    for axis in range(3):
        if shape[axis] < 2 or axis_weight[axis] <= 0:
            continue
        mask[vox[coords[axis] >= 1] - strides[axis]] = True
        mask[vox[coords[axis] <= shape[axis] - 2] + strides[axis]] = True
    return mask


def icm(level: Level, labels: np.ndarray, grid: FieldGrid, n_iter: int = 4,
        signal_index: np.ndarray | None = None, chunk_voxels: int = 8192) -> np.ndarray:
    """Checkerboard iterated conditional modes on one level, vectorised over voxels.

    ``labels``: 3-D int array of the level's shape. At the finest level ``level.data`` holds only the
    voxels in ``signal_index`` (flat indices); the others have no data term and take the label nearest
    to their neighbours' mean field. The smoothness cost of label ``l`` is ``W_i (psi_l - m_i)^2`` with
    ``W_i`` the summed neighbour weights and ``m_i`` their weighted mean field (exact up to a constant).

    After the first sweep a voxel is revisited only when one of its neighbours changed in the previous
    half-sweep (otherwise its conditional mode is unchanged), so late sweeps touch only the few voxels near
    moving labels; the result is identical to visiting every voxel.
    """
    g = grid.values_hz.astype(np.float32)
    period = np.float32(grid.period_hz)
    shape = labels.shape
    n = int(np.prod(shape))
    parity = (np.indices(shape).sum(axis=0) % 2).ravel().astype(bool)
    flat_labels = labels.ravel().copy()
    row_of = np.full(n, -1, np.int64)  # data row of each voxel, -1 without data term
    if signal_index is None:
        row_of[:] = np.arange(n)
    else:
        row_of[signal_index] = np.arange(signal_index.size)
    psi = grid.values_hz[flat_labels]
    todo = [np.flatnonzero(~parity), np.flatnonzero(parity)]
    for it in range(n_iter):
        changed = 0
        for par in (0, 1):
            vox = todo[par]
            wsum, mean = _neighbour_mean_at(psi, vox, shape, grid, level.axis_weight)
            rows = row_of[vox]
            new = np.empty(vox.size, flat_labels.dtype)
            has = rows >= 0
            sel = np.flatnonzero(has)
            for start in range(0, sel.size, chunk_voxels):
                part = sel[start:start + chunk_voxels]
                d = g[None, :] - mean[part, None].astype(np.float32)
                if grid.circular:
                    d -= period * np.rint(d / period)
                d *= d
                d *= wsum[part, None].astype(np.float32)
                d += level.data[rows[part]]
                new[part] = d.argmin(axis=1)
            nod = np.flatnonzero(~has)
            if nod.size:
                m = mean[nod]
                if grid.circular:
                    m = grid.difference(m, g[0]) % grid.period_hz + g[0]
                lab = np.clip(np.round((m - g[0]) / grid.step_hz).astype(int), 0, g.size - 1)
                if grid.circular:
                    lab %= g.size
                new[nod] = lab
            diff = new != flat_labels[vox]
            moved = vox[diff]
            changed += moved.size
            flat_labels[moved] = new[diff]
            psi[moved] = grid.values_hz[new[diff]]
            if it > 0 or par == 1:  # the first sweep visits every voxel of both parities
                # voxels of the other parity whose neighbourhood changed (all neighbours have the other parity)
                todo[1 - par] = np.flatnonzero(_neighbours(moved, shape, level.axis_weight))
        if changed == 0:
            break
    return flat_labels.reshape(shape)


def region_alias_moves(data: np.ndarray, labels: np.ndarray, grid: FieldGrid, axis_weight: np.ndarray,
                       fat_jump: int, signal_index: np.ndarray | None = None,
                       cut_fractions: tuple[float, ...] = (0.5, 0.3, 0.15), max_rounds: int = 4) -> np.ndarray:
    """Move whole field-map regions between their water- and fat-dominant minima where that lowers the energy.

    Coarse-to-fine estimation can leave a region (often block-shaped: a coarse block that pooled the wrong
    solution) one fat shift away from its surroundings. At the finest level no single voxel can leave it
    (each would break its own edges), and a full-resolution jump move misses it too: on a circular grid, or
    with per-voxel destinations, the move's pairwise terms are not submodular and their truncation
    overcharges exactly the region's boundary. Here the voxels with signal are cut into regions wherever
    neighbours differ by more than ``cut_fraction`` of a fat shift (several fractions in turn: a smaller one
    splits regions joined by a steep ramp); the exact energy change of shifting each region by
    ``±fat_jump`` labels (each voxel to its lowest data cost near the shifted label, as in
    :func:`jump_moves`) is computed for all regions at once (bincounts over voxels and edges), and the
    non-adjacent regions with the largest decreases move. Voxels without signal stay put (the ICM that
    follows re-interpolates them). A region-level version of the alias jump moves of Hernando et al.
    (MRM 2010).

    ``data``: residual curves [n_rows, n_labels] of the voxels ``signal_index`` (flat indices into
    ``labels``; None: every voxel). ``labels``: 3-D int array.
    """
    shape = labels.shape
    n = labels.size
    i, j, w = grid_edges(shape, axis_weight)
    if i.size == 0 or fat_jump <= 0:
        return labels
    has = np.zeros(n, bool)
    has[np.arange(n) if signal_index is None else signal_index] = True
    rows = np.full(n, -1, np.int64)
    rows[has] = np.arange(int(has.sum()))
    flat = labels.ravel().copy()
    joinable = has[i] & has[j]
    g = grid.values_hz
    psi = g[flat]
    d_old = grid.difference(psi[i], psi[j])
    step = np.abs(d_old)
    for fraction in cut_fractions:
        for _ in range(max_rounds):
            joined = joinable & (step <= fraction * fat_jump * grid.step_hz)
            adj = sp.csr_matrix((np.ones(int(joined.sum()), np.int8), (i[joined], j[joined])), shape=(n, n))
            n_reg, region = connected_components(adj, directed=False)
            region = np.where(has, region, n_reg)  # voxels without signal: one extra region that never moves
            # the largest region is the reference that the others move against (its own move would be the
            # complement's); only the other regions' voxels and edges are evaluated
            largest = int(np.argmax(np.bincount(region, minlength=n_reg + 1)[:n_reg]))
            active = has & (region != largest)
            if not active.any() or not _move_regions(data, flat, rows, active, region, n_reg + 1, d_old, grid,
                                                     (i, j, w), fat_jump):
                break
            psi = g[flat]
            d_old = grid.difference(psi[i], psi[j])
            step = np.abs(d_old)
    return flat.reshape(shape)


def _move_regions(data, flat, rows, active, region, n_reg, d_old, grid: FieldGrid, edges, fat_jump: int) -> bool:
    """Shift the best mutually non-adjacent improving regions by ±fat_jump (``flat`` in place).

    The energy change of moving a region alone is summed exactly from its voxels' data terms and its
    internal and boundary edges. False when no region improves.
    """
    i, j, w = edges
    n_lab = grid.values_hz.size
    g = grid.values_hz
    act = np.flatnonzero(active)
    touch = active[i] | active[j]
    i, j, w, d = i[touch], j[touch], w[touch], d_old[touch]
    old2 = d**2
    ri, rj = region[i], region[j]
    same = ri == rj
    r_act = region[act]
    base = data[rows[act], flat[act]]
    scale = float(np.abs(base).sum() + (w * old2).sum())
    present = np.zeros(n_reg, bool)
    present[r_act] = True
    best_gain = np.zeros(n_reg)
    best_move = np.full(n_reg, -1)
    moves = []
    for k, alpha in enumerate((fat_jump, -fat_jump)):
        dest = _destination(data[rows[act]], flat[act], alpha, n_lab, grid.circular, window=abs(alpha) // 6)
        unary = data[rows[act], dest] - base
        if not grid.circular:  # a move off the grid is not allowed
            unary = np.where((flat[act] + alpha < 0) | (flat[act] + alpha >= n_lab), np.inf, unary)
        new = flat.copy()
        new[act] = dest
        pi_old, pj_old, pi_new, pj_new = g[flat[i]], g[flat[j]], g[new[i]], g[new[j]]
        delta = np.bincount(r_act, unary, n_reg)
        both = w[same] * (grid.difference(pi_new[same], pj_new[same]) ** 2 - old2[same])  # both ends move
        delta += np.bincount(ri[same], both, n_reg)
        only_i = w[~same] * (grid.difference(pi_new[~same], pj_old[~same]) ** 2 - old2[~same])
        only_j = w[~same] * (grid.difference(pi_old[~same], pj_new[~same]) ** 2 - old2[~same])
        delta += np.bincount(ri[~same], only_i, n_reg) + np.bincount(rj[~same], only_j, n_reg)
        gain = np.nan_to_num(-delta, nan=0.0, neginf=0.0)
        gain[~present] = 0.0  # the reference region and the voxels without signal
        better = gain > best_gain
        best_gain[better] = gain[better]
        best_move[better] = k
        moves.append(dest)
    movers = np.flatnonzero(best_gain > 1e-9 * max(scale, 1e-30))
    if movers.size == 0:
        return False
    # the largest gains among mutually non-adjacent regions (their gains are then independent)
    nb = sp.csr_matrix((np.ones(int((~same).sum())), (ri[~same], rj[~same])), shape=(n_reg, n_reg))
    nb = (nb + nb.T).tocsr()
    taken = np.zeros(n_reg, bool)
    blocked = np.zeros(n_reg, bool)
    for r in movers[np.argsort(-best_gain[movers])]:  # a loop over the few improving regions, not voxels
        if not blocked[r]:
            taken[r] = True
            blocked[nb.indices[nb.indptr[r]:nb.indptr[r + 1]]] = True
    for k, dest in enumerate(moves):
        sel = taken[r_act] & (best_move[r_act] == k)
        flat[act[sel]] = dest[sel]
    return True


def upsample(labels: np.ndarray, block_ratio, shape: tuple[int, int, int]) -> np.ndarray:
    """Nearest-neighbour upsampling by whole blocks (``block_ratio`` per axis), cropped to ``shape``."""
    up = labels
    for axis in range(3):
        if block_ratio[axis] > 1:
            up = np.repeat(up, block_ratio[axis], axis=axis)
    return up[: shape[0], : shape[1], : shape[2]]


def regularised_fieldmap_labels(
    shape: tuple[int, int, int],
    signal_index: np.ndarray,
    data: np.ndarray,
    grid: FieldGrid,
    axis_weight: np.ndarray,
    fat_shift_hz: float,
    graphcut_max_nodes: int = 10000,
    icm_iterations: int = 4,
    min_size: int = 8,
    prior_hz: np.ndarray | None = None,
    stop_level: int = 0,
    region_moves: bool = True,
) -> np.ndarray:
    """Field-map grid label per voxel of ``shape`` (3-D int array), coarse to fine.

    ``prior_hz`` (optional, array of ``shape``): a smooth field the solution is expected to follow. The
    problem is then solved for the deviation from it ("demodulated"): every voxel's residual curve is shifted
    by its prior, so block pooling stays sharp and the smoothness term no longer charges the prior's
    gradients (which otherwise make a shift onto an alias minimum look cheaper than a steep true field).

    ``data`` [n_signal, n_labels] residual curves of the voxels ``signal_index``; ``axis_weight`` the
    smoothness weight per axis at the finest level; ``fat_shift_hz`` the main fat-peak frequency (sets the
    graph-cut jump that moves a region between its water- and fat-dominant solutions). ``region_moves``:
    finish (at the finest level) with :func:`region_alias_moves`, which replaces full-resolution graph-cut
    alias moves (their pairwise terms are not submodular there, see that function).
    """
    n_lab = grid.values_hz.size
    shift = None
    if prior_hz is not None:
        shift = np.round(np.asarray(prior_hz, float).ravel() / grid.step_hz).astype(int)
        if grid.circular:
            shift %= n_lab
            data = _normalise_rows(data, shift[signal_index])
        else:
            data = _shift_rows(_normalise_rows(data), shift[signal_index], grid.circular)
    else:
        data = _normalise_rows(data)
    levels = build_levels(shape, signal_index, data, axis_weight, min_size=min_size)
    n_lab = grid.values_hz.size
    fat_jump = int(round(abs(fat_shift_hz) / grid.step_hz))
    jumps: list[int] = []
    step = 1
    while step <= min(8, n_lab // 4):  # small moves (gradients); large moves are the fat-alias jumps below
        jumps += [step, -step]
        step *= 2
    if 0 < fat_jump < n_lab:
        jumps += [fat_jump, -fat_jump]
    labels = None
    stop_level = min(stop_level, len(levels) - 1)
    for k in range(len(levels) - 1, stop_level - 1, -1):
        lev = levels[k]
        n_vox = int(np.prod(lev.shape))
        if labels is None:
            if k == 0:
                full = np.zeros((n_vox, n_lab), np.float32)
                full[signal_index] = lev.data
                lev = Level(lev.shape, lev.block, full, lev.axis_weight)
                levels[0] = lev
                signal_index_k = None
            labels = lev.data.argmin(axis=1).reshape(lev.shape)
        else:
            ratio = np.asarray(levels[k + 1].block) // np.asarray(lev.block)
            labels = upsample(labels, ratio, lev.shape)
        signal_index_k = signal_index if (k == 0 and lev.data.shape[0] != n_vox) else None
        if n_vox <= graphcut_max_nodes and signal_index_k is None:
            labels = icm(lev, labels, grid, n_iter=icm_iterations)
            edges = grid_edges(lev.shape, lev.axis_weight)
            flat = jump_moves(lev.data, labels.ravel(), grid, edges, jumps)
            labels = flat.reshape(lev.shape)
        labels = icm(lev, labels, grid, n_iter=icm_iterations, signal_index=signal_index_k)
    n_full = int(np.prod(shape))
    if stop_level == 0 and region_moves and fat_jump > 0:
        lev0 = levels[0]
        sparse = lev0.data.shape[0] != n_full
        moved = region_alias_moves(lev0.data, labels, grid, lev0.axis_weight, fat_jump,
                                   signal_index=signal_index if sparse else None)
        if np.any(moved != labels):
            labels = icm(lev0, moved, grid, n_iter=icm_iterations, signal_index=signal_index if sparse else None)
    if stop_level > 0:
        labels = upsample(labels, np.asarray(levels[stop_level].block), shape)
    if shift is not None:
        labels = labels.ravel() + shift
        labels = (labels % n_lab if grid.circular else np.clip(labels, 0, n_lab - 1)).reshape(shape)
    return labels


def _normalise_rows(data: np.ndarray, shift: np.ndarray | None = None, chunk_rows: int = 8192) -> np.ndarray:
    """``data - data.min(axis=1)`` per row, then (optional) ``out[i, l] = data[i, (l + shift[i]) % n]``.

    Chunked so that each block stays in cache; the circular shift is one row gather from a sliding window
    over the row repeated twice (``shift`` in [0, n)).
    """
    out = np.empty(data.shape, data.dtype)
    n = data.shape[1]
    for start in range(0, data.shape[0], chunk_rows):
        sl = slice(start, min(start + chunk_rows, data.shape[0]))
        block = data[sl] - data[sl].min(axis=1, keepdims=True)
        if shift is None:
            out[sl] = block
        else:
            twice = np.concatenate([block, block], axis=1)
            windows = np.lib.stride_tricks.sliding_window_view(twice, n, axis=1)
            out[sl] = windows[np.arange(block.shape[0]), shift[sl]]
    return out


def _shift_rows(data: np.ndarray, shift: np.ndarray, circular: bool) -> np.ndarray:
    """``out[i, l] = data[i, l + shift[i]]`` (wrapped, or high cost outside a non-circular grid)."""
    out = np.empty_like(data)
    n = data.shape[1]
    high = data.max(axis=1)
    for value in np.unique(shift):
        rows = np.flatnonzero(shift == value)
        block = data[rows]
        if circular:
            out[rows] = np.roll(block, -value, axis=1)
        else:
            idx = np.arange(n) + value
            ok = (idx >= 0) & (idx < n)
            shifted = np.repeat(high[rows, None], n, axis=1)
            shifted[:, ok] = block[:, idx[ok]]
            out[rows] = shifted
    return out


def robust_polynomial_field(psi_hz: np.ndarray, weight: np.ndarray, voxel_size_mm: np.ndarray,
                            degree: int = 2, n_iter: int = 5, max_samples: int = 20000) -> np.ndarray:
    """Smooth prior field: a weighted polynomial of ``degree`` in (x, y, z) mm fitted with Tukey-biweight IRLS.

    Regions on a wrong (alias) solution are a minority and are down-weighted as outliers.
    """
    shape = psi_hz.shape
    coords = [np.arange(n) * v for n, v in zip(shape, voxel_size_mm, strict=True)]
    grids = np.meshgrid(*coords, indexing="ij")
    axes = [a for a in range(3) if shape[a] > 1]
    norm = [(grids[a] - grids[a].mean()) / max(np.ptp(grids[a]), 1e-9) for a in axes]
    terms = [np.ones(shape)]
    for d in range(1, degree + 1):
        import itertools

        for combo in itertools.combinations_with_replacement(range(len(axes)), d):
            t = np.ones(shape)
            for c in combo:
                t = t * norm[c]
            terms.append(t)
    sel = np.flatnonzero(weight.ravel() > 0)
    if sel.size > max_samples:  # a regular subsample is plenty for a handful of coefficients
        sel = sel[:: int(np.ceil(sel.size / max_samples))]
    basis = np.stack([t.ravel()[sel] for t in terms], axis=1)
    y = psi_hz.ravel()[sel]
    w0 = weight.ravel()[sel] / weight.ravel()[sel].max()
    w = w0.copy()
    coef = np.zeros(basis.shape[1])
    for _ in range(n_iter):
        sw = np.sqrt(w)
        coef = np.linalg.lstsq(basis * sw[:, None], y * sw, rcond=None)[0]
        r = y - basis @ coef
        scale = 1.4826 * np.median(np.abs(r)) + 1e-6
        u = r / (4.685 * scale)
        w = w0 * np.where(np.abs(u) < 1, (1 - u**2) ** 2, 0.0)
    return sum(c * t for c, t in zip(coef, terms, strict=True))
