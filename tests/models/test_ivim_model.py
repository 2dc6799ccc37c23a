"""IVIM model: OSIPI TF2.4 generic signals, noiseless recovery, bounds, averaging, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from osteomri.errors import InputError
from osteomri.ivim import IvimModel
from osteomri.models.ivim import DEFAULT_BOUNDS, MAP_NAMES, ivim_signal, make_bounds
from osteomri.models.registry import map_spec

B18 = np.array([0, 1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 250, 350, 400, 550, 700, 850, 1000.0])
# the bounds the OSIPI collection fits its generic signals with (test_ivim_fit_saved)
OSIPI_BOUNDS = {"s0": (0.7, 1.3), "f": (0.0, 1.0), "dstar_mm2_s": (0.005, 0.2), "d_mm2_s": (0.0, 0.005)}
ABSURD = {"s0": (1.1, 1.3), "f": (0.2, 0.3), "dstar_mm2_s": (0.01, 0.02), "d_mm2_s": (0.8e-3, 1.2e-3)}
METHODS = ("segmented", "full", "bayesian")


def _generic(shared_data):
    data = json.loads((shared_data("ivim_osipi_tf24") / "generic.json").read_text())
    b = np.array(data.pop("config")["bvalues"], dtype=float)
    names = list(data)
    signal = np.array([np.array(data[k]["data"]) / data[k]["data"][0] for k in names])
    truth = {k: (data[k]["f"], data[k]["D"], data[k]["Dp"]) for k in names}
    return b, names, signal, truth


def _close(est: float, true: float, atol: float, rtol: float = 0.1) -> bool:
    return abs(est - true) <= atol + rtol * abs(true)


@pytest.mark.shared_data
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("bounds", ["osipi", "default"])
def test_osipi_generic_tissues_within_collection_tolerances(shared_data, method, bounds):
    b, names, signal, truth = _generic(shared_data)
    assert b.size == 18 and len(names) == 14
    fit = IvimModel(b, method, bounds=OSIPI_BOUNDS if bounds == "osipi" else None).fit(signal)
    failures = []
    for i, name in enumerate(names):
        f, d, dstar = truth[name]
        ok = _close(fit.f[i], f, 0.2)
        if f < 0.8:
            ok &= _close(fit.d_mm2_s[i], d, 5e-4)
        if f > 0.03:
            ok &= _close(fit.dstar_mm2_s[i], dstar, 0.1)
        if not ok:
            failures.append((name, fit.f[i], fit.d_mm2_s[i], fit.dstar_mm2_s[i], truth[name]))
    assert not failures, failures


@pytest.mark.shared_data
@pytest.mark.parametrize("method", ["full", "bayesian"])
def test_osipi_generic_tissues_much_tighter_than_collection(shared_data, method):
    """The data carry noise SD 5e-4 (SNR 2000): the bi-exponential fit must land far inside OSIPI's tolerances."""
    b, names, signal, truth = _generic(shared_data)
    fit = IvimModel(b, method, bounds=OSIPI_BOUNDS).fit(signal)
    for i, name in enumerate(names):
        f, d, dstar = truth[name]
        assert abs(fit.f[i] - f) < 0.01, name
        assert abs(fit.d_mm2_s[i] - d) < 0.02e-3, name
        assert abs(fit.dstar_mm2_s[i] - dstar) < 0.1 * dstar, name


def _osipi_truth_table():
    # ground truth of the generic tissues (README of the shared data; S0 = 1): (f, D, D*)
    return np.array([
        (0.15, 2.4e-3, 0.08), (0.07, 1.5e-3, 0.07), (0.10, 1.37e-3, 0.0263), (0.11, 1.5e-3, 0.1),
        (0.32, 1.67e-3, 0.03), (0.30, 1.5e-3, 0.012), (0.15, 1.3e-3, 0.01), (0.097, 2.12e-3, 0.02),
        (0.158, 2.09e-3, 0.019), (0.20, 1.3e-3, 0.03), (0.178, 0.41e-3, 0.0289), (0.145, 0.43e-3, 0.05),
        (0.69, 1.31e-3, 0.029), (0.07, 3.0e-3, 0.01),
    ])


@pytest.mark.parametrize("method", ["full", "bayesian"])
def test_noiseless_bi_exponential_recovers_truth(method):
    t = _osipi_truth_table()
    s0 = np.linspace(0.9, 1.1, len(t)) * 850.0  # any signal scale: s0 comes back in input units
    signal = ivim_signal(B18, s0, t[:, 0], t[:, 1], t[:, 2])
    fit = IvimModel(B18, method, bounds=OSIPI_BOUNDS).fit(signal)
    np.testing.assert_allclose(fit.s0, s0, rtol=1e-6)
    np.testing.assert_allclose(fit.f, t[:, 0], rtol=1e-6)
    np.testing.assert_allclose(fit.d_mm2_s, t[:, 1], rtol=1e-6)
    np.testing.assert_allclose(fit.dstar_mm2_s, t[:, 2], rtol=1e-5)
    assert np.all(fit.residual < 1e-6)


def test_noiseless_segmented_exact_when_perfusion_has_decayed():
    """Marrow (D* 0.05): perfusion is gone by b = 200 (exp(-10)), so the segmented fit is exact to ~1e-4."""
    signal = ivim_signal(B18, 1.0, np.array([0.145, 0.3, 0.05]), np.array([0.43e-3, 0.6e-3, 0.3e-3]),
                         np.array([0.05, 0.08, 0.1]))
    fit = IvimModel(B18, "segmented").fit(signal)
    np.testing.assert_allclose(fit.d_mm2_s, [0.43e-3, 0.6e-3, 0.3e-3], rtol=1e-4)
    np.testing.assert_allclose(fit.f, [0.145, 0.3, 0.05], rtol=2e-3)
    np.testing.assert_allclose(fit.dstar_mm2_s, [0.05, 0.08, 0.1], rtol=2e-2)


def test_defaults_suit_marrow_and_do_not_cap_f():
    bounds = make_bounds()
    assert bounds["f"][1] >= 0.5 and bounds["d_mm2_s"] == DEFAULT_BOUNDS["d_mm2_s"]
    signal = ivim_signal(B18, 1.0, 0.45, 0.5e-3, 0.03)
    for method in METHODS:
        fit = IvimModel(B18, method).fit(signal[None])
        assert fit.f[0] == pytest.approx(0.45, abs=0.01), method


@pytest.mark.parametrize("method", METHODS)
def test_absurd_bounds_respected(method):
    """S0 [1.1, 1.3] (relative to the b = 0 signal), f [0.2, 0.3], D* [0.01, 0.02], D [0.8e-3, 1.2e-3]."""
    rng = np.random.default_rng(3)
    t = _osipi_truth_table()
    clean = ivim_signal(B18, 1.0, t[:, 0], t[:, 1], t[:, 2])
    noisy = ivim_signal(B18, 1.0, 0.145, 0.43e-3, 0.05) + rng.normal(0, 0.02, (40, B18.size))
    signal = np.concatenate([clean, noisy]) * 1000.0
    fit = IvimModel(B18, method, bounds=ABSURD, n_samples=300, n_burn=200).fit(signal)
    s0_rel = fit.s0 / signal[:, 0]
    for name, values in (("s0", s0_rel), ("f", fit.f), ("d_mm2_s", fit.d_mm2_s), ("dstar_mm2_s", fit.dstar_mm2_s)):
        lo, hi = ABSURD[name]
        assert np.all(np.isfinite(values)), name
        assert values.min() >= lo * (1 - 1e-12) and values.max() <= hi * (1 + 1e-12), (name, values.min(), values.max())
    # data normalised by their b = 0 signal, as the OSIPI collection does: s0 itself lies in the bounds
    fit = IvimModel(B18, method, bounds=ABSURD, n_samples=300, n_burn=200).fit(signal / signal[:, :1])
    assert fit.s0.min() >= 1.1 - 1e-12 and fit.s0.max() <= 1.3 + 1e-12


@pytest.mark.parametrize("method", ["segmented", "full"])
def test_bounds_bind_where_truth_lies_outside(method):
    signal = ivim_signal(B18, 1.0, 0.145, 0.43e-3, 0.05)[None]
    fit = IvimModel(B18, method, bounds={"d_mm2_s": (0.5e-3, 1e-3)}).fit(signal)
    assert fit.d_mm2_s[0] == 0.5e-3
    fit = IvimModel(B18, method, bounds={"f": (0.0, 0.1)}).fit(signal)
    assert fit.f[0] == 0.1


def test_repeated_directions_are_averaged_geometrically():
    """Three directions per b with anisotropic D: the geometric mean is the trace, so D = mean diffusivity."""
    b_nominal = np.array([0, 10, 20, 50, 100, 200, 400, 600, 800, 1000.0])
    d_dirs = np.array([0.3e-3, 0.5e-3, 0.7e-3])
    f, dstar = 0.15, 0.05
    b_all, columns = [0.0], [np.ones(1)]
    for b in b_nominal[1:]:
        for j, d in enumerate(d_dirs):
            b_all.append(b + (j - 1) * 0.004 * b)  # scanners write e.g. 996/1000/1004
            columns.append(np.atleast_1d(f * np.exp(-b * dstar) + (1 - f) * np.exp(-b * d)))
    signal = 500.0 * np.concatenate(columns)[None]
    model = IvimModel(b_all, "full")
    np.testing.assert_allclose(model.bvalues_s_mm2, b_nominal, rtol=1e-12, atol=1e-12)
    fit = model.fit(signal)
    assert fit.d_mm2_s[0] == pytest.approx(d_dirs.mean(), rel=2e-3)
    arithmetic = IvimModel(b_all, "full", average="arithmetic").fit(signal)
    assert arithmetic.d_mm2_s[0] < 0.99 * d_dirs.mean()  # the arithmetic mean underestimates D


def test_b0_repeats_and_order_do_not_matter():
    rng = np.random.default_rng(5)
    clean = ivim_signal(B18, 1.0, 0.145, 0.43e-3, 0.05)
    signal = clean + rng.normal(0, 0.01, (20, B18.size))
    ref = IvimModel(B18, "full").fit(signal)
    perm = rng.permutation(B18.size)
    shuffled = IvimModel(B18[perm], "full").fit(signal[:, perm])
    np.testing.assert_allclose(shuffled.f, ref.f, rtol=1e-9)
    np.testing.assert_allclose(shuffled.d_mm2_s, ref.d_mm2_s, rtol=1e-9)
    doubled = IvimModel(np.r_[B18, 0.0], "full").fit(np.c_[signal, signal[:, :1]])  # a second b = 0 image
    np.testing.assert_allclose(doubled.f, ref.f, rtol=1e-9)


def test_masked_zero_nan_voxels_are_nan_and_shape_kept():
    rng = np.random.default_rng(2)
    signal = np.broadcast_to(ivim_signal(B18, 300.0, 0.145, 0.43e-3, 0.05), (4, 3, 2, B18.size)).copy()
    signal += rng.normal(0, 1.0, signal.shape)
    signal[0, 0, 0] = 0.0
    signal[1, 1, 1, 5] = np.nan
    signal[2, 2, 0, 7] = np.inf
    signal[3, 0, 1, 0] = -5.0  # negative reference signal
    mask = np.ones((4, 3, 2), bool)
    mask[3, 2, 1] = False
    for method in METHODS:
        fit = IvimModel(B18, method, n_samples=200, n_burn=100).fit(signal, mask=mask)
        for name, value in fit.maps().items():
            assert value.shape == (4, 3, 2), name
            bad = [(0, 0, 0), (1, 1, 1), (2, 2, 0), (3, 0, 1), (3, 2, 1)]
            assert all(np.isnan(value[i]) for i in bad), (method, name)
            good = np.ones((4, 3, 2), bool)
            for i in bad:
                good[i] = False
            assert np.isfinite(value[good]).all(), (method, name)
    assert IvimModel(B18).fit(np.zeros((5, B18.size))).maps()["f"].shape == (5,)


def test_noise_only_and_negative_voxels_do_not_crash():
    rng = np.random.default_rng(9)
    signal = rng.normal(0, 1.0, (200, B18.size))
    signal[:, 0] = np.abs(signal[:, 0]) + 0.1
    for method in METHODS:
        fit = IvimModel(B18, method, n_samples=100, n_burn=100).fit(signal)
        lo, hi = make_bounds().lower, make_bounds().upper
        for i, v in enumerate((fit.s0 / signal[:, 0], fit.f, fit.d_mm2_s, fit.dstar_mm2_s)):
            assert np.isfinite(v).all() and v.min() >= lo[i] - 1e-12 and v.max() <= hi[i] + 1e-12


def test_chunking_does_not_change_results_and_reports_progress():
    rng = np.random.default_rng(4)
    signal = ivim_signal(B18, 1.0, 0.145, 0.43e-3, 0.05) + rng.normal(0, 0.01, (1000, B18.size))
    calls = []
    small = IvimModel(B18, "full", chunk_size=77).fit(signal, progress=lambda d, t: calls.append((d, t)))
    big = IvimModel(B18, "full").fit(signal)
    np.testing.assert_allclose(small.f, big.f, rtol=1e-12)
    np.testing.assert_allclose(small.dstar_mm2_s, big.dstar_mm2_s, rtol=1e-12)
    assert calls[-1] == (1000, 1000) and len(calls) == 13


def test_fit_maps_units_predict_and_images():
    signal = ivim_signal(B18, 2.0, 0.2, 0.5e-3, 0.04)[None, None]
    fit = IvimModel(B18).fit(signal)
    assert set(fit.maps()) == {"ivim_s0", "f", "d_mm2_s", "dstar_mm2_s", "ivim_residual"} == set(MAP_NAMES)
    assert all(v.dtype == np.float32 for v in fit.maps().values())
    np.testing.assert_allclose(fit.predict(), signal, rtol=1e-6)
    images = fit.to_images(np.eye(4))
    assert images["d_mm2_s"].meta["Units"] == map_spec("d_mm2_s").units == "mm2/s" and images["f"].data.shape == (1, 1)


def test_bayesian_reports_posterior_sd_and_is_reproducible():
    rng = np.random.default_rng(6)
    signal = ivim_signal(B18, 1.0, 0.145, 0.43e-3, 0.05) + rng.normal(0, 0.01, (100, B18.size))
    a = IvimModel(B18, "bayesian", n_samples=600, n_burn=300, seed=1).fit(signal)
    b = IvimModel(B18, "bayesian", n_samples=600, n_burn=300, seed=1).fit(signal)
    np.testing.assert_array_equal(a.f, b.f)
    assert {"f_sd", "d_mm2_s_sd", "dstar_mm2_s_sd", "ivim_s0_sd"} <= set(a.maps())
    # posterior SD ~ the spread of estimates across noise realisations (CRLB: 0.0076 on f, 1.6e-5 on D)
    assert 0.004 < np.median(a.sd["f_sd"]) < 0.012
    assert 0.01e-3 < np.median(a.sd["d_mm2_s_sd"]) < 0.025e-3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bvalues_s_mm2": [0, 10, -50, 100, 500, 1000]}, "negative b-value -50"),
        ({"bvalues_s_mm2": [0, 10, np.nan, 100, 500, 1000]}, "not finite"),
        ({"bvalues_s_mm2": [0, 100, 500]}, "at least 4 distinct"),
        ({"bvalues_s_mm2": [0, 10, 20, 50, 300]}, "at least 2 distinct b-values >= the threshold 200"),
        ({"bvalues_s_mm2": [300, 400, 500, 1000]}, "below the threshold"),
        ({"bvalues_s_mm2": B18, "method": "nnls"}, "unknown IVIM method 'nnls'"),
        ({"bvalues_s_mm2": B18, "bounds": {"f": (0.5, 0.2)}}, "lower 0.5 must be below upper 0.2"),
        ({"bvalues_s_mm2": B18, "bounds": {"f": (0.0, 1.5)}}, "exceeds 1"),
        ({"bvalues_s_mm2": B18, "bounds": {"d_mm2_s": (-1e-3, 1e-3)}}, "must not be negative"),
        ({"bvalues_s_mm2": B18, "bounds": {"kappa": (0, 1)}}, "unknown IVIM bound 'kappa'"),
        ({"bvalues_s_mm2": B18, "bounds": {"f": 0.3}}, "must be a pair"),
        ({"bvalues_s_mm2": B18, "average": "median"}, "unknown averaging"),
    ],
)
def test_bad_model_input_gives_clear_error(kwargs, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        IvimModel(**kwargs)


def test_bad_signal_input_gives_clear_error():
    model = IvimModel(B18)
    with pytest.raises(InputError, match="17 measurements on its last axis .* but 18 b-values"):
        model.fit(np.ones((3, 17)))
    with pytest.raises(InputError, match="mask shape"):
        model.fit(np.ones((3, 18)), mask=np.ones(4, bool))
    with pytest.raises(InputError, match="complex"):
        model.fit(np.ones((3, 18), complex))
