"""UTE models against known truth: Rician moments, bi-/tri-component T2*, image ratios, two-pool UTE-MT, VFA T1."""

import numpy as np
import pytest
from scipy.integrate import quad

from osteomri.errors import InputError
from osteomri.models.ute import (
    UteMtModel,
    UteT2starModel,
    UteVfaT1Model,
    cw_power_equivalent,
    load_protocol,
    porosity_index,
    super_lorentzian,
    suppression_ratio,
    two_pool_signal,
)
from osteomri.models.ute.signal import fat_modulation, rician_mean

TE_S = np.array([0.032, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0, 1.4, 1.8, 2.2, 2.8, 3.4, 4.4]) * 1e-3
MT_OFFSETS = np.tile([2000.0, 5000.0, 10000.0, 15000.0, 20000.0], 3)
MT_FLIPS = np.repeat([500.0, 1000.0, 1500.0], 5)
TIBIA = {"mmf": 0.545, "t2b_s": 15.4e-6, "kw": 9.5, "t2a_s": 0.5e-3, "r1a": 8.9}  # Ma et al. 2018, in vivo


def _noisy(signal, sigma, rng):
    return np.abs(signal + sigma * (rng.standard_normal(signal.shape) + 1j * rng.standard_normal(signal.shape)))


def _bi_population(n, rng):
    fs, t2s, t2l = rng.uniform(0.6, 0.9, n), rng.uniform(0.2, 0.5, n), rng.uniform(1.0, 6.0, n)
    te = TE_S[None, :] * 1e3
    s = fs[:, None] * np.exp(-te / t2s[:, None]) + (1 - fs[:, None]) * np.exp(-te / t2l[:, None])
    return s, fs, t2s, t2l


# -- Rician expected magnitude ----------------------------------------------------------------------------
def test_rician_mean_matches_monte_carlo_and_its_derivative():
    rng = np.random.default_rng(0)
    nu = np.array([0.0, 0.5, 1.0, 2.0, 5.0, 11.9, 12.1, 40.0])
    draws = np.abs(nu[:, None] + rng.standard_normal((8, 400_000)) + 1j * rng.standard_normal((8, 400_000)))
    mean, deriv = rician_mean(nu, 1.0)
    assert mean == pytest.approx(draws.mean(axis=1), rel=3e-3, abs=3e-3)
    h = 1e-5
    numeric = (rician_mean(nu[1:] + h, 1.0)[0] - rician_mean(nu[1:] - h, 1.0)[0]) / (2 * h)
    assert deriv[1:] == pytest.approx(numeric, abs=2e-4)
    assert deriv[0] == 0.0
    assert mean[0] == pytest.approx(np.sqrt(np.pi / 2), rel=1e-6)  # Rayleigh mean at nu = 0


# -- bi-component T2* ---------------------------------------------------------------------------------
@pytest.mark.parametrize("snr", [100, 50])
def test_bicomponent_fraction_short_population_truth(snr):
    rng = np.random.default_rng(snr)
    s, fs, t2s, t2l = _bi_population(3000, rng)
    fit = UteT2starModel(TE_S).fit(_noisy(s, 1.0 / snr, rng))
    m, sd = fit.maps(), fit.sd
    err = m["fraction_short"] - fs
    assert np.isfinite(err).all()
    tol = 0.03 if snr == 100 else 0.05
    assert abs(np.median(err)) < tol and np.median(np.abs(err)) < tol
    identifiable = t2l / t2s > 4  # Seifert 2015: f_s is identifiable only there
    z = err[identifiable] / sd["fraction_short_sd"][identifiable]
    assert 0.7 < np.std(z) <= 1.3  # spread within 1.3x the Cramer-Rao bound, and the bound not inflated
    assert np.median(m["t2star_short_ms"] / t2s) == pytest.approx(1.0, abs=0.05)
    assert np.median(m["t2star_long_ms"] / t2l) == pytest.approx(1.0, abs=0.05)
    assert fit.qc["noise_sd"] == pytest.approx(1.0 / snr, rel=0.1)  # estimated from the residuals


def test_rician_model_removes_noise_floor_bias():
    rng = np.random.default_rng(3)
    n = 2000
    t2 = np.full(n, 1.0)  # ms: the late echoes sink into the noise floor at SNR 20
    s = np.exp(-TE_S[None, :] * 1e3 / t2[:, None])
    data = _noisy(s, 0.05, rng)
    plain = UteT2starModel(TE_S, components=1, rician=False, noise_sd=0.05).fit(data).maps()["t2star_ms"]
    rice = UteT2starModel(TE_S, components=1, noise_sd=0.05).fit(data).maps()["t2star_ms"]
    assert abs(np.median(rice) - 1.0) < 0.02
    assert np.median(plain) - 1.0 > 3 * abs(np.median(rice) - 1.0)  # the floor lengthens a Gaussian fit's T2*


def test_tricomponent_with_fat_noise_free():
    te = np.linspace(0.05, 6.0, 24) * 1e-3
    cfat = fat_modulation(te * 1e3, 3.0, "ren_marrow")
    amps = np.array([[0.5, 0.2, 0.3], [0.3, 0.4, 0.3]])
    t2 = np.array([[0.3, 2.5, 8.0], [0.4, 3.5, 12.0]])
    e = np.exp(-te[None, :, None] * 1e3 / t2[:, None, :])
    z = amps[:, None, 0] * e[..., 0] + amps[:, None, 1] * e[..., 1] + amps[:, None, 2] * e[..., 2] * cfat
    fit = UteT2starModel(te, components=3, field_strength_t=3.0, noise_sd=0.0).fit(np.abs(z))
    m = fit.maps()
    assert m["fraction_fat"] == pytest.approx(amps[:, 2] / amps.sum(1), abs=0.01)
    assert m["fraction_short"] == pytest.approx(amps[:, 0] / amps.sum(1), abs=0.01)
    assert m["t2star_short_ms"] == pytest.approx(t2[:, 0], rel=0.03)
    assert fit.predict() == pytest.approx(np.abs(z), abs=1e-4)


def test_t2star_contract_mask_nan_float32_parameters_roundtrip():
    rng = np.random.default_rng(5)
    s, *_ = _bi_population(12, rng)
    vol = np.zeros((4, 4, 1, TE_S.size))
    vol[:3, :, 0] = s.reshape(3, 4, -1)
    model = UteT2starModel(TE_S, noise_sd=0.0)
    fit = model.fit(vol)
    maps = fit.maps()
    assert all(v.dtype == np.float32 and v.shape == (4, 4, 1) for v in maps.values())
    assert fit.mask[:3].all() and not fit.mask[3].any()
    assert all(np.isnan(v[3]).all() for v in maps.values())
    again = UteT2starModel(**model.parameters()).fit(vol).maps()
    assert all(np.array_equal(maps[k], again[k], equal_nan=True) for k in maps)
    assert fit.predict()[:3] == pytest.approx(vol[:3], abs=1e-5)


@pytest.mark.parametrize(("te", "kwargs", "match"), [
    (TE_S[::-1], {}, "increasing"),
    (TE_S[:4], {}, "cannot determine 4 parameters"),
    (TE_S * 1e3, {}, "milliseconds"),
    (TE_S, {"components": 3}, "field_strength_t"),
    (TE_S, {"t2star_short_ms_range": (0.1, 2.0)}, "overlap"),
])
def test_t2star_bad_input(te, kwargs, match):
    with pytest.raises(InputError, match=match):
        UteT2starModel(te, **kwargs)


# -- porosity index and suppression ratio --------------------------------------------------------------
def test_porosity_index_and_suppression_ratio_definitions():
    fs = np.array([0.6, 0.75, 0.9])  # bound-water fraction; more pore water -> higher PI
    short = fs * np.exp(-0.05 / 0.3) + (1 - fs) * np.exp(-0.05 / 3.0)
    long_ = fs * np.exp(-2.2 / 0.3) + (1 - fs) * np.exp(-2.2 / 3.0)
    pi = porosity_index(short, long_)
    assert pi == pytest.approx(long_ / short, rel=1e-6)
    assert np.all(np.diff(pi) < 0)
    sr = suppression_ratio(np.array([2.0, 1.0, 0.0]), np.array([1.0, 1e-6, 0.0]))
    assert sr[0] == pytest.approx(2.0) and np.isnan(sr[1:]).all()  # no ratio where the denominator is noise
    with pytest.raises(InputError, match="shape"):
        porosity_index(np.ones(3), np.ones(4))


# -- UTE-MT ----------------------------------------------------------------------------------------------
def test_super_lorentzian_matches_quadrature_and_is_normalised():
    for x in (0.05, 0.3, 2.0):
        f = lambda c, x=x: np.sqrt(2 / np.pi) / abs(3 * c * c - 1) * np.exp(-2 * x * x / (3 * c * c - 1) ** 2)  # noqa: E731
        ref = quad(f, 0, 1 / np.sqrt(3), limit=200)[0] + quad(f, 1 / np.sqrt(3), 1, limit=200)[0]
        t2 = 15e-6
        assert super_lorentzian(x / (2 * np.pi * t2), t2) == pytest.approx(ref * t2, rel=1e-6)
    w = np.linspace(-3e6, 3e6, 600_001)
    assert np.trapezoid(super_lorentzian(w / (2 * np.pi), 15e-6), w) == pytest.approx(1.0, abs=2e-3)


def test_cw_power_equivalent_rectangular_and_fermi():
    # a rectangular pulse: w1 = theta / tau, its power averaged over TR: w1^2 tau / TR
    theta, tau, tr = np.deg2rad(1000.0), 8e-3, 0.1
    assert cw_power_equivalent(1000.0, tau, tr, np.ones(11)) == pytest.approx((theta / tau) ** 2 * tau / tr)
    # the Fermi envelope needs a higher peak for the same angle: p2/p1^2 > 1
    assert cw_power_equivalent(1000.0, tau, tr) > cw_power_equivalent(1000.0, tau, tr, np.ones(11))


def test_two_pool_signal_limits():
    s = two_pool_signal(MT_OFFSETS, np.zeros(15), 1.0, 0.5, 10.0, 1e-3, 15e-6, 1.0)
    assert s == pytest.approx(np.ones((1, 15)))  # no saturation -> M0
    w2 = cw_power_equivalent(MT_FLIPS, 8e-3, 0.1)
    no_mt = two_pool_signal(MT_OFFSETS, w2, 1.0, 1e-9, 10.0, 1e-3, 15e-6, 1.0)
    with_mt = two_pool_signal(MT_OFFSETS, w2, 1.0, 0.5, 10.0, 1e-3, 15e-6, 1.0)
    assert np.all(with_mt < no_mt)  # a macromolecular pool adds saturation at every offset
    assert np.all(np.diff(with_mt[0, :5]) > 0)  # less saturation farther off resonance


def _mt_model(**kw):
    return UteMtModel(MT_OFFSETS, MT_FLIPS, 8e-3, 0.1, 10.0, **({"r1_water_hz": TIBIA["r1a"]} | kw))


def test_mt_tibia_monte_carlo_snr100():
    rng = np.random.default_rng(11)
    n = 1500
    model = _mt_model()
    clean = two_pool_signal(MT_OFFSETS, model.w2, 1.0, TIBIA["mmf"], TIBIA["kw"], TIBIA["t2a_s"], TIBIA["t2b_s"],
                            TIBIA["r1a"])
    fit = model.fit(_noisy(np.repeat(clean, n, axis=0), 0.01, rng))
    m, sd = fit.maps(), fit.sd
    crb_mmf = np.median(sd["mmf_percent_sd"])
    rmse = np.sqrt(np.mean((m["mmf_percent"] - 54.5) ** 2))
    assert rmse <= max(2.0, 1.3 * crb_mmf)
    assert abs(np.median(m["t2_macromolecule_us"]) / 15.4 - 1) < 0.10
    for name, truth in (("mmf_percent", 54.5), ("t2_macromolecule_us", 15.4), ("exchange_rate_hz", 9.5)):
        spread = np.std(m[name])
        assert spread <= 1.3 * np.median(sd[f"{name}_sd"]), name
        assert abs(np.median(m[name]) - truth) < 0.5 * spread + 1e-9, name
    assert fit.qc["noise_sd"] == pytest.approx(0.01, rel=0.15)


def test_mt_noise_free_exact_with_m0_and_r1_map():
    model = _mt_model(r1_water_hz=np.array([[8.9, 6.0]]))
    truth = {"mmf": np.array([0.545, 0.35]), "kw": np.array([9.5, 20.0]), "t2a": np.array([0.5e-3, 1.0e-3]),
             "t2b": np.array([15.4e-6, 10e-6])}
    s = two_pool_signal(MT_OFFSETS, model.w2, np.array([3.0, 5.0]), truth["mmf"], truth["kw"], truth["t2a"],
                        truth["t2b"], np.array([8.9, 6.0]))
    fit = model.fit(s.reshape(1, 2, 15), m0=np.array([[3.0, 5.0]]), mask=np.ones((1, 2), bool))
    m = fit.maps()
    assert m["mmf_percent"][0] == pytest.approx(100 * truth["mmf"], abs=0.05)
    assert m["t2_macromolecule_us"][0] == pytest.approx(1e6 * truth["t2b"], rel=1e-3)
    assert fit.predict()[0] == pytest.approx(s, rel=1e-4)


def test_mt_observed_r1_converted_jointly():
    """With the observed R1 (the slow eigenvalue of the two-pool relaxation) the fit recovers the same truth,
    at the cost of a larger Cramer-Rao SD of the macromolecular fraction."""
    km = TIBIA["kw"] * TIBIA["mmf"] / (1 - TIBIA["mmf"])
    a = np.array([[TIBIA["r1a"] + km, -TIBIA["kw"]], [-km, 1.0 + TIBIA["kw"]]])
    r1_obs = float(np.linalg.eigvalsh((a + a.T) / 2).min()) if False else float(np.sort(np.linalg.eigvals(a).real)[0])
    free = _mt_model()
    joint = _mt_model(r1_water_hz=None, r1_observed_hz=r1_obs)
    clean = two_pool_signal(MT_OFFSETS, free.w2, 1.0, TIBIA["mmf"], TIBIA["kw"], TIBIA["t2a_s"], TIBIA["t2b_s"],
                            TIBIA["r1a"])
    fit = joint.fit(clean)
    assert fit.maps()["mmf_percent"][0] == pytest.approx(54.5, abs=0.05)
    assert fit.maps()["r1_free_water_hz"][0] == pytest.approx(TIBIA["r1a"], rel=1e-3)
    noisy = UteMtModel(MT_OFFSETS, MT_FLIPS, 8e-3, 0.1, 10.0, r1_observed_hz=r1_obs, noise_sd=0.01).fit(clean)
    given = UteMtModel(MT_OFFSETS, MT_FLIPS, 8e-3, 0.1, 10.0, r1_water_hz=TIBIA["r1a"], noise_sd=0.01).fit(clean)
    assert noisy.sd["mmf_percent_sd"][0] > given.sd["mmf_percent_sd"][0]


@pytest.mark.parametrize(("args", "kwargs", "match"), [
    ((MT_OFFSETS, MT_FLIPS[:-1], 8e-3, 0.1, 10.0), {"r1_water_hz": 8.9}, "one entry per measurement"),
    ((MT_OFFSETS, MT_FLIPS, 8e-3, None, 10.0), {"r1_water_hz": 8.9}, "tr_s"),
    ((MT_OFFSETS, MT_FLIPS, 8e-3, 0.1, 10.0), {}, "exactly one"),
    ((MT_OFFSETS[:4], MT_FLIPS[:4], 8e-3, 0.1, 10.0), {"r1_water_hz": 8.9}, "cannot determine"),
])
def test_mt_bad_input(args, kwargs, match):
    with pytest.raises(InputError, match=match):
        UteMtModel(*args, **kwargs)


def test_mt_data_must_match_protocol():
    with pytest.raises(InputError, match="15"):
        _mt_model().fit(np.ones((3, 14)))


# -- VFA T1 and protocols ------------------------------------------------------------------------------------
def test_vfa_t1_recovers_truth():
    rng = np.random.default_rng(2)
    flips, tr = np.array([3.0, 8.0, 15.0, 25.0]), 0.02
    t1 = rng.uniform(200, 1500, 500)
    a, e = np.deg2rad(flips), np.exp(-tr * 1e3 / t1)[:, None]
    s = 100 * np.sin(a) * (1 - e) / (1 - e * np.cos(a))
    fit = UteVfaT1Model(flips, tr).fit(s)
    assert fit.t1_ms == pytest.approx(t1, rel=1e-4)
    assert fit.predict() == pytest.approx(s, rel=1e-4)
    with pytest.raises(InputError, match="distinct"):
        UteVfaT1Model([10, 10], tr)


def test_protocol_checks(tmp_path):
    p = tmp_path / "mt.json"
    p.write_text('{"kind": "mt", "offsets_hz": [2000], "pulse_flip_deg": [500], "pulse_duration_s": 0.008, '
                 '"tr_s": 0.1, "excitation_flip_deg": 10, "r1_water_hz": 8.9, "typo": 1}')
    with pytest.raises(InputError, match="mt.json: unknown key.*typo"):
        load_protocol(p)
    with pytest.raises(InputError, match="needs echo_times_s"):
        load_protocol({"kind": "t2star"})
    with pytest.raises(InputError, match="kind"):
        load_protocol({"kind": "dixon"})
    proto = {"kind": "mt", "offsets_hz": MT_OFFSETS.tolist(), "pulse_flip_deg": MT_FLIPS.tolist(),
             "pulse_duration_s": 8e-3, "tr_s": 0.1, "excitation_flip_deg": 10.0, "r1_water_hz": 8.9}
    assert UteMtModel.from_protocol(proto).parameters() == _mt_model().parameters()
