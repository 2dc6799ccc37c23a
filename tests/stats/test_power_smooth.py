"""Obuchowski covariance, power/sample size of ROC tests and smoothed ROC curves against pROC (aSAH)."""

import numpy as np
import pytest
from scipy.stats import norm

from osteomri.errors import InputError
from osteomri.stats import (
    binormal_auc_variance,
    cov_obuchowski,
    power_roc_test,
    power_roc_test_paired,
    power_roc_test_params,
    power_roc_test_roc,
    smooth_roc,
    var_obuchowski,
    var_theta_obuchowski,
)

pytestmark = pytest.mark.shared_data


def test_cov_obuchowski(asah, expected):
    e = expected["pROC_aSAH"]["cov_obuchowski"]
    pairs = [k for k in e if k != "prov"]
    assert pairs == ["wfns_ndka", "ndka_s100b", "s100b_wfns"]
    for pair in pairs:
        a, b = pair.split("_")
        # pROC's test values are printed with 7 significant digits: equal after rounding to them
        ours = cov_obuchowski(asah["outcome"], asah[a], asah[b])
        assert ours == pytest.approx(e[pair], rel=1e-6), pair
        digits = len(np.format_float_scientific(abs(e[pair]), unique=True).split("e")[0].replace(".", ""))
        assert digits == 7 and float(f"{ours:.{digits}g}") == e[pair], pair


def test_var_obuchowski_reduces_to_theta_formula():
    # binormal B = 1 full area: eq. 4 of Obuchowski & McClish 1997 equals the 1/(32 pi) closed form
    for theta, kappa in [(0.6, 1.0), (0.8, 72 / 41), (0.95, 0.5)]:
        a = np.sqrt(2) * norm.ppf(theta)
        closed = np.exp(-a**2 / 2) / (32 * np.pi) * ((5 * a**2 + 8) + (a**2 + 8) / kappa)
        assert binormal_auc_variance(a, 1.0, kappa) == pytest.approx(closed, rel=1e-12)
        assert var_theta_obuchowski(theta, kappa) == pytest.approx(closed, rel=1e-2)  # printed 0.0099, 1.414


def test_var_obuchowski_observed(asah):
    v = var_obuchowski(asah["outcome"], asah["s100b"])
    assert 0 < v < 0.01


def test_power_one_roc(asah, expected):
    e = expected["pROC_aSAH"]["power_roc_test"]
    tol = e["tolerance"]
    y, x = asah["outcome"], asah["s100b"]
    assert power_roc_test_roc(y, x).power == pytest.approx(e["s100b_observed"]["power"], rel=tol)
    assert power_roc_test(auc=0.73, ncases=41, ncontrols=72).power == pytest.approx(e["auc0.73_n41_72"]["power"],
                                                                                     rel=tol)
    r = power_roc_test_roc(y, x, power=0.95, kappa=1.7)
    ref = e["auc_s100b_power0.95_kappa1.7"]
    assert (r.ncases, r.ncontrols) == pytest.approx((ref["ncases"], ref["ncontrols"]), rel=tol)
    r = power_roc_test(auc=0.73, ncases=41, ncontrols=72, power=0.95, sig_level=None)
    assert r.sig_level == pytest.approx(e["n41_72_auc0.73_power0.95"]["sig_level"], rel=tol)
    # pROC solves for the AUC with uniroot's default tolerance; the exact root differs by ~6e-6
    r = power_roc_test(ncases=41, ncontrols=72, power=0.95, root_tol=np.finfo(float).eps ** 0.25)
    assert r.auc == pytest.approx(e["n41_72_power0.95"]["auc"], rel=tol)
    exact = power_roc_test(ncases=41, ncontrols=72, power=0.95)
    assert abs(exact.auc - r.auc) < 1e-5
    assert power_roc_test(auc=exact.auc, ncases=41, ncontrols=72).power == pytest.approx(0.95, rel=1e-12)
    r = power_roc_test_roc(y, x, power=0.9)
    ref = e["s100b_power0.9"]
    assert (r.ncases, r.ncontrols) == pytest.approx((ref["ncases"], ref["ncontrols"]), rel=tol)
    assert r.solved == "ncases"


@pytest.mark.parametrize("method", ["delong", "obuchowski"])
def test_power_two_rocs(asah, expected, method):
    e = expected["pROC_aSAH"]["power_roc_test"]
    tol = e["tolerance"]
    y = asah["outcome"]
    r = power_roc_test_paired(y, asah["ndka"], asah["wfns"], method=method)
    assert r.power == pytest.approx(e[f"ndka_vs_wfns_{method}"]["power"], rel=tol)
    n = power_roc_test_paired(y, asah["ndka"], asah["wfns"], method=method, power=0.9)
    ref = e[f"ndka_vs_wfns_power0.9_{method}"]
    assert (n.ncases, n.ncontrols) == pytest.approx((ref["ncases"], ref["ncontrols"]), rel=tol)
    back = power_roc_test_paired(y, asah["ndka"], asah["wfns"], method=method, ncases=n.ncases,
                                 ncontrols=n.ncontrols)
    assert back.power == pytest.approx(0.9, rel=1e-12)


def test_power_obuchowski_mcclish_example2(expected):
    e = expected["pROC_aSAH"]["power_roc_test"]["obuchowski_mcclish_1997_example2_binormal"]
    p = e["params"]
    args = (p["A1"], p["B1"], p["A2"], p["B2"], p["rn"], p["ra"], p["delta"])
    kw = {"fpr1": (p["FPR11"], p["FPR12"]), "fpr2": (p["FPR21"], p["FPR22"])}
    r = power_roc_test_params(*args, **kw, power=0.8)
    assert r.ncases == pytest.approx(e["power0.8_ncases"], rel=1e-6) and r.ncontrols == r.ncases  # kappa 1
    r = power_roc_test_params(*args, **kw, ncases=107, ncontrols=107)
    assert r.power == pytest.approx(e["ncases107_power"], rel=1e-6)


def test_power_bad_input():
    with pytest.raises(InputError, match="exactly one"):
        power_roc_test(auc=0.7, ncases=10, ncontrols=10, power=0.9)
    with pytest.raises(InputError, match=r"auc must lie in \(0.5, 1\)"):
        power_roc_test(auc=0.4, ncases=10, ncontrols=10)
    with pytest.raises(InputError, match="kappa"):
        power_roc_test(auc=0.7, power=0.9, ncases=None)
    with pytest.raises(InputError, match="sig_level"):
        power_roc_test(auc=0.7, ncases=10, ncontrols=10, sig_level=1.5)


def test_smooth_binormal_and_density(asah, expected):
    e = expected["pROC_aSAH"]["smooth"]
    y = asah["outcome"]
    nd = smooth_roc(y, asah["ndka"])
    assert nd.auc == pytest.approx(e["ndka_binormal_auc"]["value"], rel=1e-9)
    assert round(nd.auc, 4) == e["ndka_binormal_auc"]["rounded"]
    s = smooth_roc(y, asah["s100b"], method="binormal")
    assert s.auc == pytest.approx(e["s100b_binormal_auc"]["value"], rel=1e-9)
    # the 512-point smoothed curve integrates to the binormal area
    c = s.curve
    assert np.trapezoid(c["sensitivity"], c["specificity"]) == pytest.approx(s.auc, abs=1e-5)
    dens = smooth_roc(y, asah["s100b"], method="density")
    assert dens.auc == pytest.approx(e["s100b_density_auc"]["value"], rel=1e-9)
    assert round(dens.auc, 4) == e["s100b_density_auc"]["rounded"]
    assert len(dens.curve) == 513 and dens.bandwidth > 0
    flipped = smooth_roc(y, -asah["s100b"], method="density")
    assert flipped.direction == ">" and flipped.auc == pytest.approx(dens.auc, rel=1e-12)


def test_kernel_density_integrates_to_one():
    from osteomri.stats.smooth import bw_nrd0, kernel_density

    x = np.random.default_rng(0).normal(size=200)
    h = bw_nrd0(x)
    grid = np.linspace(x.min() - 3 * h, x.max() + 3 * h, 512)
    dens = kernel_density(x, h, 512, grid[0], grid[-1])
    assert np.trapezoid(dens, grid) == pytest.approx(1.0, abs=2e-3)


def test_smooth_bad_input(asah):
    with pytest.raises(InputError, match="method"):
        smooth_roc(asah["outcome"], asah["s100b"], method="spline")
    with pytest.raises(InputError, match="cannot be smoothed"):
        smooth_roc([0, 0, 1, 1], [1, 2, 3, 4])
