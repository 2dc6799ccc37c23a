"""Truth tests: the optimised water–fat kernels equal simple reference implementations.

The references are the straightforward formulas ([voxels, echoes] layout, whole-array neighbour sums)
that the fast kernels in :mod:`osteomri.models.waterfat` replaced.
"""

from __future__ import annotations

import numpy as np

from osteomri.models.waterfat import fieldmap, nlls
from osteomri.models.waterfat.varpro import make_field_grid
from osteomri.waterfat import WaterFatModel, multiecho_signal

TE_S = 1.3e-3 + 0.8e-3 * np.arange(6)
NONUNIFORM_TE_S = np.array([1.2, 2.1, 2.8, 3.9, 4.5, 5.6]) * 1e-3


def _voxels(te, n=3000, seed=0):
    rng = np.random.default_rng(seed)
    ff, r2, psi = rng.uniform(0, 1, n), rng.uniform(10, 300, n), rng.uniform(-300, 300, n)
    s = multiecho_signal(1 - ff, ff, r2, psi, te, 3.0)
    s = s + (rng.normal(size=s.shape) + 1j * rng.normal(size=s.shape)) / 50
    return s, psi + rng.normal(0, 10, n), r2 + rng.normal(0, 30, n)


def _ref_amplitudes(e, c, y):
    """Reference 2x2 least squares on B = [e, e c], [v, n] layout."""
    a2 = np.abs(e) ** 2
    g00, g11, g01 = a2.sum(1), (a2 * np.abs(c) ** 2).sum(1), (a2 * c).sum(1)
    det = g00 * g11 - np.abs(g01) ** 2
    det = np.where(det > 1e-30, det, 1e-30)
    ey = e.conj() * y
    y0, y1 = ey.sum(1), (ey * c.conj()).sum(1)
    return (g11 * y0 - g01 * y1) / det, (g00 * y1 - np.conj(g01) * y0) / det


def _ref_evaluate(s, te, c, psi, r2):
    e = np.exp((2j * np.pi * psi[:, None] - r2[:, None]) * te)
    w, f = _ref_amplitudes(e, c, s)
    m = e * (w[:, None] + f[:, None] * c)
    return e, w, f, m, s - m, (np.abs(s - m) ** 2).sum(1)


def _ref_fit(s, te, c, psi0, r20, fix_psi, halfwidth, r2_bounds, n_iter):
    """Reference Levenberg–Marquardt with both Kaufman columns projected separately (full 2x2 system)."""
    psi, r2 = psi0.copy(), np.clip(r20, *r2_bounds)
    e, w, f, m, r, cost = _ref_evaluate(s, te, c, psi, r2)
    lam = np.full(s.shape[0], 1e-3)
    for _ in range(n_iter):
        cols = []
        for d in ([-te * m] if fix_psi else [2j * np.pi * te * m, -te * m]):
            a0, a1 = _ref_amplitudes(e, c, d)
            cols.append(d - e * (a0[:, None] + a1[:, None] * c))
        q = np.stack(cols, axis=-1)  # [v, n, k]
        jtj = np.einsum("vnk,vnl->vkl", q.conj(), q).real
        jtr = np.einsum("vnk,vn->vk", q.conj(), r).real
        jtj[:, np.arange(q.shape[-1]), np.arange(q.shape[-1])] *= (1 + lam)[:, None]
        step = np.linalg.solve(jtj + 1e-300, jtr[..., None])[..., 0]
        step = np.where(np.isfinite(step), step, 0.0)
        psi_n = psi if fix_psi else psi + step[:, 0]
        if halfwidth is not None:
            psi_n = np.clip(psi_n, psi0 - halfwidth, psi0 + halfwidth)
        r2_n = np.clip(r2 + step[:, -1], *r2_bounds)
        e_n, w_n, f_n, m_n, r_n, cost_n = _ref_evaluate(s, te, c, psi_n, r2_n)
        ok = cost_n < cost
        psi, r2, cost = np.where(ok, psi_n, psi), np.where(ok, r2_n, r2), np.where(ok, cost_n, cost)
        w, f = np.where(ok, w_n, w), np.where(ok, f_n, f)
        e, m, r = (np.where(ok[:, None], a, b) for a, b in ((e_n, e), (m_n, m), (r_n, r)))
        lam = np.where(ok, lam * 0.3, lam * 10.0)
    return {"fieldmap_hz": psi, "r2star_hz": r2, "water": w, "fat": f, "residual": cost}


def test_linear_amplitudes_equal_reference():
    for te in (TE_S, NONUNIFORM_TE_S):
        c = WaterFatModel(te, 3.0).fat_signal
        s, psi, r2 = _voxels(te)
        w, f, cost = nlls.linear_amplitudes(s, te, c, psi, r2, chunk_voxels=1000)
        _, w_ref, f_ref, _, _, cost_ref = _ref_evaluate(s, te, c, psi, r2)
        np.testing.assert_allclose(w, w_ref, rtol=0, atol=1e-10)
        np.testing.assert_allclose(f, f_ref, rtol=0, atol=1e-10)
        np.testing.assert_allclose(cost, cost_ref, rtol=1e-8, atol=1e-14)


def test_fit_complex_equals_reference():
    for te in (TE_S, NONUNIFORM_TE_S):
        c = WaterFatModel(te, 3.0).fat_signal
        s, psi0, r20 = _voxels(te, seed=1)
        for kw in (dict(psi_halfwidth_hz=20.0), dict(fix_psi=True)):
            got = nlls.fit_complex(s, te, c, psi0, r20, r2star_bounds_hz=(0.0, 800.0), chunk_voxels=700, **kw)
            ref = _ref_fit(s, te, c, psi0, r20, kw.get("fix_psi", False), kw.get("psi_halfwidth_hz"),
                           (0.0, 800.0), 8)
            np.testing.assert_allclose(got["fieldmap_hz"], ref["fieldmap_hz"], rtol=0, atol=1e-3)
            np.testing.assert_allclose(got["r2star_hz"], ref["r2star_hz"], rtol=0, atol=1e-2)
            np.testing.assert_allclose(got["water"], ref["water"], rtol=0, atol=1e-5)
            np.testing.assert_allclose(got["fat"], ref["fat"], rtol=0, atol=1e-5)
            np.testing.assert_allclose(got["residual"], ref["residual"], rtol=1e-5, atol=1e-12)


def _ref_neighbour_mean(psi, grid, axis_weight):
    wsum, dsum = np.zeros_like(psi), np.zeros_like(psi)
    for axis in range(3):
        if psi.shape[axis] < 2 or axis_weight[axis] <= 0:
            continue
        for shift in (1, -1):
            d = grid.difference(np.roll(psi, shift, axis=axis), psi)
            valid = np.ones(psi.shape, bool)
            sl = [slice(None)] * 3
            sl[axis] = slice(0, 1) if shift == 1 else slice(-1, None)
            valid[tuple(sl)] = False
            wsum += np.where(valid, axis_weight[axis], 0.0)
            dsum += np.where(valid, axis_weight[axis] * d, 0.0)
    return wsum, psi + dsum / np.maximum(wsum, 1e-30)


def _ref_icm(level, labels, grid, n_iter, signal_index):
    """Reference checkerboard ICM visiting every voxel in every half-sweep."""
    g = grid.values_hz.astype(np.float32)
    shape = labels.shape
    parity = (np.indices(shape).sum(axis=0) % 2).ravel()
    flat = labels.ravel().copy()
    row = np.full(flat.size, -1)
    row[signal_index] = np.arange(signal_index.size)
    for _ in range(n_iter):
        changed = 0
        for par in (0, 1):
            wsum, mean = (a.ravel() for a in _ref_neighbour_mean(grid.values_hz[flat].reshape(shape), grid,
                                                                  level.axis_weight))
            vox = np.flatnonzero((parity == par) & (row >= 0))
            d = g[None, :] - mean[vox, None].astype(np.float32)
            if grid.circular:
                d -= np.float32(grid.period_hz) * np.rint(d / np.float32(grid.period_hz))
            new = (d * d * wsum[vox, None].astype(np.float32) + level.data[row[vox]]).argmin(axis=1)
            nod = np.flatnonzero((parity == par) & (row < 0))
            m = mean[nod]
            if grid.circular:
                m = grid.difference(m, g[0]) % grid.period_hz + g[0]
            lab = np.clip(np.round((m - g[0]) / grid.step_hz).astype(int), 0, g.size - 1)
            if grid.circular:
                lab %= g.size
            changed += int((new != flat[vox]).sum() + (lab != flat[nod]).sum())
            flat[vox], flat[nod] = new, lab
        if changed == 0:
            break
    return flat.reshape(shape)


def test_icm_equals_reference():
    rng = np.random.default_rng(3)
    for te in (TE_S, NONUNIFORM_TE_S):
        grid = make_field_grid(te)
        shape = (23, 18, 5)
        n = int(np.prod(shape))
        signal_index = np.flatnonzero(rng.random(n) < 0.7)
        data = rng.random((signal_index.size, grid.values_hz.size)).astype(np.float32) * 50
        level = fieldmap.Level(shape, (1, 1, 1), data, np.array([1.0, 1.0, 0.3]))
        labels = rng.integers(0, grid.values_hz.size, shape)
        got = fieldmap.icm(level, labels, grid, n_iter=6, signal_index=signal_index, chunk_voxels=97)
        ref = _ref_icm(level, labels, grid, 6, signal_index)
        np.testing.assert_array_equal(got, ref)


def test_normalise_rows_equals_reference():
    rng = np.random.default_rng(4)
    data = rng.random((1000, 37)).astype(np.float32) + rng.random((1000, 1)).astype(np.float32)
    shift = rng.integers(0, 37, 1000)
    norm = data - data.min(axis=1, keepdims=True)
    np.testing.assert_array_equal(fieldmap._normalise_rows(data, chunk_rows=64), norm)
    ref = np.stack([np.roll(row, -k) for row, k in zip(norm, shift, strict=True)])
    np.testing.assert_array_equal(fieldmap._normalise_rows(data, shift, chunk_rows=64), ref)


def _two_minima_curves(grid, true_labels, jump, alias_penalty):
    """Residual curves with a minimum at the true label and an alias minimum one fat jump away."""
    lab = np.arange(grid.values_hz.size)
    n_lab = lab.size

    def dist(a, b):
        d = a - b
        return (d + n_lab // 2) % n_lab - n_lab // 2 if grid.circular else d

    t = true_labels.ravel()[:, None]
    near = dist(lab[None, :], t).astype(float) ** 2
    alias = dist(lab[None, :], t + jump).astype(float) ** 2 + alias_penalty[:, None]
    return np.minimum(near, alias).astype(np.float32)


def test_region_alias_moves_restore_a_swapped_block():
    """A block left on the alias minimum (the coarse-block swap of real case 13) is moved back exactly,
    the true labelling is left alone, and a block whose data really prefer the alias stays there."""
    for te in (np.array([1.22, 2.2, 3.18, 4.16]) * 1e-3, NONUNIFORM_TE_S):  # circular and non-circular grids
        grid = make_field_grid(te)
        n_lab = grid.values_hz.size
        jump = int(round(434.0 / grid.step_hz))
        shape = (30, 26, 3)
        x = np.indices(shape)[0]
        truth = (n_lab // 3 + (x * 4) // shape[0]).astype(int)  # smooth ramp of a few labels
        n = truth.size
        block = np.zeros(shape, bool)
        block[8:15, 9:18, 0:2] = True
        weight = np.array([1.0, 1.0, 0.1])
        edges = fieldmap.grid_edges(shape, weight * 1e-3)
        swapped = np.where(block, truth + jump, truth)
        if not grid.circular:
            assert swapped.max() < n_lab
        swapped %= n_lab
        penalty = np.full(n, 0.5)  # the alias fits each voxel slightly worse (real data: ~0.005 per voxel)
        data = _two_minima_curves(grid, truth, jump, penalty)
        signal_index = np.arange(n)
        got = fieldmap.region_alias_moves(data, swapped, grid, weight * 1e-3, jump, signal_index=signal_index)
        np.testing.assert_array_equal(got, truth)
        # single-voxel moves cannot do it: after ICM the block is still swapped (each voxel would break its edges)
        level = fieldmap.Level(shape, (1, 1, 1), data, weight * 1e-3)
        relaxed = fieldmap.icm(level, swapped, grid, n_iter=6)
        off = np.abs(relaxed - truth)
        off = np.minimum(off, n_lab - off) if grid.circular else off
        assert np.mean(off[block] > jump // 2) > 0.75  # ICM only erodes its corners
        # the optimum is a fixed point
        np.testing.assert_array_equal(fieldmap.region_alias_moves(data, truth, grid, weight * 1e-3, jump), truth)
        # data that prefer the alias inside the block by more than its boundary costs: the block stays
        strong = np.where(block.ravel(), -200.0, 50.0)  # and the surroundings clearly prefer their minimum
        data_b = _two_minima_curves(grid, truth, jump, strong)
        data_b -= data_b.min(axis=1, keepdims=True)
        kept = fieldmap.region_alias_moves(data_b, swapped, grid, weight * 1e-3, jump)
        np.testing.assert_array_equal(kept, swapped)
        assert fieldmap.energy(data, got.ravel(), grid, edges) < fieldmap.energy(data, swapped.ravel(), grid, edges)


def test_circular_difference_is_the_half_open_wrap():
    # (a - b) wrapped into [-P/2, P/2): exactly half a period maps to -P/2 from either side (the field-map
    # search breaks its ties this way), and any difference lands within the interval, one alias away
    grid = make_field_grid(1.3e-3 + 0.8e-3 * np.arange(6))
    p = grid.period_hz
    np.testing.assert_array_equal(grid.difference(np.array([0.5 * p, -0.5 * p, 1.5 * p]), 0.0), -0.5 * p)
    d = np.random.default_rng(0).uniform(-5 * p, 5 * p, 10000)
    w = grid.difference(d, 0.0)
    assert np.all((w >= -0.5 * p) & (w < 0.5 * p))
    np.testing.assert_allclose((d - w) / p, np.round((d - w) / p), atol=1e-9)


def test_levels_pool_the_data_term_over_blocks():
    # each coarse level's data term is the sum of the finest voxels' curves in its block
    rng = np.random.default_rng(0)
    shape = (40, 36, 20)
    signal_index = np.flatnonzero(rng.random(shape).ravel() < 0.6)
    data = rng.random((signal_index.size, 7)).astype(np.float32)
    levels = fieldmap.build_levels(shape, signal_index, data, np.ones(3))
    coords = np.stack(np.unravel_index(signal_index, shape), axis=1)
    assert [lev.block for lev in levels] == fieldmap.level_blocks(shape)
    for lev in levels[1:]:
        idx = np.ravel_multi_index(tuple((coords // np.asarray(lev.block)).T), lev.shape)
        expected = np.zeros((int(np.prod(lev.shape)), 7))
        np.add.at(expected, idx, data.astype(float))
        np.testing.assert_allclose(lev.data, expected, rtol=1e-5)


def test_circular_grid_has_no_half_period_ties():
    # an odd label count: no two labels are exactly half a period apart, so no wrapped difference between
    # labels sits on the wrap boundary, where its sign (and the field-map search) would hang on a tie rule
    for te in (TE_S, 2.87e-3 + 3.2e-3 * np.arange(5), 1.3e-3 + 0.8e-3 * np.arange(6)):
        for kwargs in ({}, {"step_hz": 0.5}, {"max_points": 64}):
            grid = make_field_grid(te, **kwargs)
            assert grid.circular and grid.values_hz.size % 2 == 1
            assert grid.values_hz.size <= kwargs.get("max_points", 200)
            steps = (grid.values_hz[:, None] - grid.values_hz[None, :]) / grid.period_hz
            assert np.min(np.abs(np.abs(steps) - 0.5)) > 1e-6


def test_best_r2star_index_equals_reference():
    # the R2* start: at each voxel's own field-map grid point, the R2* grid value of least residual,
    # here by brute force with the least-squares amplitudes at every R2* of the grid
    from osteomri.models.waterfat.varpro import best_r2star_index

    for te in (TE_S, NONUNIFORM_TE_S):
        model = WaterFatModel(te, 3.0)
        s, _, _ = _voxels(te, n=2000, seed=5)
        psi_index = np.random.default_rng(6).integers(0, model.grid.values_hz.size, s.shape[0])
        cost = np.stack([nlls.linear_amplitudes(s, te, model.fat_signal, model.grid.values_hz[psi_index],
                                                np.full(s.shape[0], r))[2] for r in model.r2_grid], axis=1)
        got = best_r2star_index(s, model._weights_cache(), model.r2_grid.size, psi_index)
        np.testing.assert_array_equal(got, cost.argmin(axis=1))


def test_weighted_local_linear_is_exact_for_planes_and_local_on_request():
    from osteomri.models.waterfat.model import _weighted_local_linear

    rng = np.random.default_rng(7)
    shape = (20, 17, 6)
    x, y, z = np.indices(shape).astype(float)
    plane = 3.0 * x - 2.0 * y + 5.0 * z + 7.0
    weight = rng.uniform(0.1, 1.0, shape)  # every window full rank
    np.testing.assert_allclose(_weighted_local_linear(plane, weight, 3), plane, atol=1e-6)
    # a noisy field: evaluating only some voxels gives the same values there and leaves the rest alone
    psi = plane + rng.normal(0, 5, shape)
    at = np.flatnonzero(rng.random(psi.size) < 0.3)
    full = _weighted_local_linear(psi, weight, 3)
    part = _weighted_local_linear(psi, weight, 3, at=at)
    np.testing.assert_allclose(part.ravel()[at], full.ravel()[at], rtol=1e-12, atol=1e-9)
    rest = np.setdiff1d(np.arange(psi.size), at)
    np.testing.assert_array_equal(part.ravel()[rest], psi.ravel()[rest])
    # smoothing: the local fit is closer to the plane than the noisy field in the interior
    inner = (slice(1, -1),) * 3
    assert np.abs(full - plane)[inner].mean() < 0.5 * np.abs(psi - plane)[inner].mean()
    # a voxel whose whole window has no weight keeps its value
    w0 = weight.copy()
    w0[:4, :4, :] = 0.0
    np.testing.assert_array_equal(_weighted_local_linear(psi, w0, 3)[:2, :2, :], psi[:2, :2, :])


def test_weighted_local_linear_smooths_a_wrapped_field_around_each_centre():
    # a steep plane known only modulo the period (steps of a whole period between some neighbours): with
    # the period the smoothing is exact modulo the period; without it, it averages across the steps
    from osteomri.models.waterfat.model import _weighted_local_linear

    period = 312.5
    x, y, z = np.indices((24, 20, 4)).astype(float)
    plane = 60.0 * x - 45.0 * y + 20.0 * z
    wrapped = plane - period * np.floor(plane / period + 0.5)
    weight = np.random.default_rng(8).uniform(0.1, 1.0, plane.shape)
    out = _weighted_local_linear(wrapped, weight, 3, period_hz=period)
    off = (out - plane) / period
    np.testing.assert_allclose(off, np.round(off), atol=1e-6)
    naive = _weighted_local_linear(wrapped, weight, 3)
    assert np.abs(((naive - plane) / period) - np.round((naive - plane) / period)).max() > 0.1
