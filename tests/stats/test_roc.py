"""ROC/DeLong against pROC's own test values on the aSAH data (expected_values.json: pROC_aSAH)."""

import numpy as np
import pandas as pd
import pytest

from osteomri.errors import InputError
from osteomri.stats import (
    MissingDataWarning,
    delong_test,
    delong_test_unpaired,
    partial_auc,
    proportion_ci,
    roc_analysis,
)

pytestmark = pytest.mark.shared_data
REL = 1e-9
MARKERS = ("s100b", "wfns", "ndka")


def close(a, b, rel=REL):
    return a == pytest.approx(b, rel=rel, abs=1e-15)


@pytest.mark.parametrize("marker", MARKERS)
def test_auc_variance_and_delong_ci(asah, expected, marker):
    e = expected["pROC_aSAH"]
    r = roc_analysis(asah["outcome"], asah[marker])
    assert r.positive == "Poor" and r.direction == "<"
    assert (r.n_cases, r.n_controls) == (e["dataset"]["cases_Poor"], e["dataset"]["controls_Good"])
    assert close(r.auc, e["auc"][marker]["value"])
    assert close(r.auc_var, e["var_delong"][marker])
    lo, mid, hi = e["ci_auc_delong_95"][marker]["value"]
    assert close(r.auc_ci_low, lo) and close(r.auc, mid) and close(r.auc_ci_high, hi)
    # p-value of H0 AUC = 0.5 is the z test with the DeLong SE
    z = (r.auc - 0.5) / np.sqrt(e["var_delong"][marker])
    from scipy.stats import norm
    assert close(r.p_value, 2 * norm.sf(z))


def test_ci_on_female_subset(asah, expected):
    sub = asah[asah["gender"] == "Female"]
    r = roc_analysis(sub["outcome"], sub["ndka"])
    lo, mid, hi = expected["pROC_aSAH"]["ci_auc_delong_95"]["ndka_female_subset"]["value"]
    assert (r.auc_ci_low, r.auc, r.auc_ci_high) == pytest.approx((lo, mid, hi), rel=1e-9)


def test_full_coords_table_matches_proc(asah, stats_dir):
    ref = pd.read_csv(stats_dir / "asah_s100b_coords_expected.csv")
    curve = roc_analysis(asah["outcome"], asah["s100b"]).curve
    assert len(curve) == len(ref) == 51
    np.testing.assert_array_equal(np.isinf(curve["threshold"]), np.isinf(ref["threshold"]))
    for ours, theirs in [("threshold", "threshold"), ("sensitivity", "sensitivity"),
                         ("specificity", "specificity"), ("tp", "tp"), ("fp", "fp"), ("tn", "tn"), ("fn", "fn"),
                         ("ppv", "ppv"), ("npv", "npv"), ("accuracy", "accuracy"), ("lr_pos", "lr_pos"),
                         ("lr_neg", "lr_neg"), ("closest_topleft", "closest.topleft")]:
        np.testing.assert_allclose(curve[ours].to_numpy(float), ref[theirs].to_numpy(float), rtol=1e-9,
                                   equal_nan=True, err_msg=ours)
    np.testing.assert_allclose(curve["youden_j"] + 1, ref["youden"], rtol=1e-9)  # pROC youden = Se + Sp


@pytest.mark.parametrize("marker", MARKERS)
def test_best_thresholds(asah, expected, marker):
    best = expected["pROC_aSAH"]["coords_best"]
    ey = best[f"{marker}_youden"]
    ey = ey.get("value", ey)
    r = roc_analysis(asah["outcome"], asah[marker])
    assert close(r.cutoff, ey["threshold"])
    assert close(r.sensitivity, ey["sensitivity"]) and close(r.specificity, ey["specificity"])
    assert close(r.youden_j + 1, ey["youden"])
    assert (r.tp, r.fp, r.tn, r.fn) == (ey["tp"], ey["fp"], ey["tn"], ey["fn"])
    assert close(r.ppv, ey["ppv"]) and close(r.npv, ey["npv"])
    ec = best[f"{marker}_closest_topleft"]
    rc = roc_analysis(asah["outcome"], asah[marker], best_method="closest.topleft")
    assert close(rc.cutoff, ec["threshold"])
    assert close(rc.sensitivity, ec["sensitivity"]) and close(rc.specificity, ec["specificity"])


def test_best_threshold_within_partial_range(asah, expected):
    best = expected["pROC_aSAH"]["coords_best"]
    sp = roc_analysis(asah["outcome"], asah["s100b"], best_within=("specificity", (0.9, 0.99)))
    se = roc_analysis(asah["outcome"], asah["s100b"], best_within=("sensitivity", (0.9, 0.99)))
    assert close(sp.cutoff, best["s100b_partial_sp_0.9_0.99_best_threshold"]["value"])
    assert close(se.cutoff, best["s100b_partial_se_0.9_0.99_best_threshold"]["value"])
    assert 0.9 <= sp.specificity <= 0.99 and 0.9 <= se.sensitivity <= 0.99


def test_s100b_youden_row_and_likelihood_ratios(asah, expected, stats_dir):
    e = expected["pROC_aSAH"]["coords_best"]["s100b_youden"]["value"]
    r = roc_analysis(asah["outcome"], asah["s100b"])
    # the likelihood ratios of pROC's row at the best threshold (helper-coords-expected.R, as the JSON's prov says)
    ref = pd.read_csv(stats_dir / "asah_s100b_coords_expected.csv")
    ref_row = ref[np.isclose(ref["threshold"], e["threshold"], rtol=1e-12, atol=0)]
    assert len(ref_row) == 1
    assert close(r.lr_pos, ref_row["lr_pos"].iloc[0]) and close(r.lr_neg, ref_row["lr_neg"].iloc[0])
    assert close(r.lr_pos, r.sensitivity / (1 - e["specificity"]))
    # PPV at the sample prevalence equals the count-based PPV
    ppv, npv = r.predictive_values(r.n_cases / (r.n_cases + r.n_controls))
    assert close(ppv, e["ppv"]) and close(npv, e["npv"])


def test_clopper_pearson_ci_at_cutoff(asah, expected):
    e = expected["pROC_aSAH"]["sens_spec_ci_at_youden_s100b"]
    r = roc_analysis(asah["outcome"], asah["s100b"])
    assert (r.tp, r.fn, r.tn, r.fp) == (e["tp"], e["fn"], e["tn"], e["fp"])
    assert r.sensitivity_ci == pytest.approx(e["sensitivity_clopper_pearson_95"], rel=REL)
    assert r.specificity_ci == pytest.approx(e["specificity_clopper_pearson_95"], rel=REL)


def test_wilson_interval_textbook():
    # Newcombe 1998 (Stat Med 17:857) Table I: 81/263 -> Wilson 0.2553 to 0.3662
    lo, hi = proportion_ci(81, 263, method="wilson")
    assert (round(lo, 4), round(hi, 4)) == (0.2553, 0.3662)


@pytest.mark.parametrize(("a", "b"), [("wfns", "s100b"), ("wfns", "ndka"), ("ndka", "s100b")])
def test_paired_delong(asah, expected, a, b):
    e = expected["pROC_aSAH"]["roc_test_delong_paired"][f"{a}_vs_{b}"]
    t = delong_test(asah["outcome"], asah[a], asah[b])
    assert close(t.z, e["Z"]) and close(t.p_value, e["p"])
    assert (t.diff_ci_low, t.diff_ci_high) == pytest.approx(e["ci95_diff"], rel=REL)
    if "p_greater" in e:
        assert close(t.p_greater, e["p_greater"]) and close(t.p_less, e["p_less"])
    # reversed order flips the sign, same p
    t2 = delong_test(asah["outcome"], asah[b], asah[a])
    assert close(t2.z, -e["Z"]) and close(t2.p_value, e["p"])


def test_delong_covariances(asah, expected):
    cov = expected["pROC_aSAH"]["cov_delong"]
    for pair, value in cov.items() if isinstance(cov, dict) else []:
        if pair == "prov":
            continue
        a, b = pair.split("_")
        assert close(delong_test(asah["outcome"], asah[a], asah[b]).covariance, value)


def test_identical_curves(asah, expected):
    e = expected["pROC_aSAH"]["roc_test_delong_paired"]["identical_curves"]
    t = delong_test(asah["outcome"], asah["s100b"], asah["s100b"])
    assert t.z == e["Z"] and t.p_value == e["p"]


@pytest.mark.parametrize(("a", "b"), [("wfns", "s100b"), ("wfns", "ndka"), ("ndka", "s100b")])
def test_unpaired_delong(asah, expected, a, b):
    e = expected["pROC_aSAH"]["roc_test_delong_unpaired"][f"{a}_vs_{b}"]
    t = delong_test_unpaired(asah["outcome"], asah[a], asah["outcome"], asah[b])
    assert close(t.z, e["D"]) and close(t.df, e["df"]) and close(t.p_value, e["p"])
    if "p_greater" in e:
        assert close(t.p_greater, e["p_greater"]) and close(t.p_less, e["p_less"])


def test_partial_auc(asah, expected):
    e = expected["pROC_aSAH"]["partial_auc"]
    rocs = {m: roc_analysis(asah["outcome"], asah[m]) for m in MARKERS}
    n_checked = 0
    for key, value in e.items():
        parts = key.split("_")
        if parts[0] not in rocs or not isinstance(value, float):
            continue
        focus = {"sp": "specificity", "se": "sensitivity"}[parts[1]]
        bounds = (float(parts[2]), float(parts[3]))
        correct = key.endswith("mcclish")
        assert close(partial_auc(rocs[parts[0]], focus=focus, bounds=bounds, correct=correct), value), key
        n_checked += 1
    assert n_checked == 15
    with pytest.warns(UserWarning, match="McClish"):
        assert np.isnan(partial_auc(rocs["ndka"], focus="sensitivity", bounds=(1, 0.9), correct=True))
    assert round(partial_auc(rocs["s100b"], bounds=(0.99, 0.9)), 5) == e["s100b_sp_0.99_0.9"]["value_rounded"]
    assert round(partial_auc(rocs["s100b"], focus="sensitivity", bounds=(0.99, 0.9)), 5) == \
        e["s100b_se_0.99_0.9"]["value_rounded"]


def test_sklearn_crosscheck(asah):
    from sklearn.metrics import roc_auc_score

    y = (asah["outcome"] == "Poor").to_numpy()
    r = roc_analysis(y, asah["s100b"])
    assert close(r.auc, roc_auc_score(y, asah["s100b"]))
    assert close(partial_auc(r, bounds=(1, 0.9), correct=True), roc_auc_score(y, asah["s100b"], max_fpr=0.1))


def test_stratified_bootstrap_matches_proc_loosely(asah, expected):
    e = expected["pROC_aSAH"]["bootstrap_seeded_R"]
    r = roc_analysis(asah["outcome"], asah["s100b"], ci_method="bootstrap", se_sp_ci="bootstrap",
                     n_bootstrap=2000, random_state=42)
    assert abs(r.auc_ci_low - e["ci_auc_s100b"][0]) < 0.03 and abs(r.auc_ci_high - e["ci_auc_s100b"][1]) < 0.03
    cb = e["ci_thresholds_best_s100b"]
    assert close(r.cutoff, cb["threshold"])
    assert np.abs(np.subtract(r.sensitivity_ci, cb["sensitivity"][::2])).max() < 0.03
    assert np.abs(np.subtract(r.specificity_ci, cb["specificity"][::2])).max() < 0.03
    again = roc_analysis(asah["outcome"], asah["s100b"], ci_method="bootstrap", n_bootstrap=200, random_state=1)
    same = roc_analysis(asah["outcome"], asah["s100b"], ci_method="bootstrap", n_bootstrap=200, random_state=1)
    assert again.auc_ci_low == same.auc_ci_low  # random_state makes it reproducible


def test_direction_and_label_invariances(asah):
    r = roc_analysis(asah["outcome"], asah["s100b"])
    flipped = roc_analysis(asah["outcome"], -asah["s100b"])
    assert flipped.direction == ">" and close(flipped.auc, r.auc) and close(flipped.auc_se, r.auc_se)
    assert close(flipped.cutoff, -r.cutoff)
    assert (flipped.sensitivity, flipped.specificity) == pytest.approx((r.sensitivity, r.specificity))
    forced = roc_analysis(asah["outcome"], asah["s100b"], direction=">")
    assert close(forced.auc, 1 - r.auc)
    numeric = roc_analysis((asah["outcome"] == "Poor").astype(int), asah["s100b"])
    assert numeric.positive == 1 and close(numeric.auc, r.auc)
    reversed_labels = roc_analysis(asah["outcome"], asah["s100b"], positive="Good")
    assert reversed_labels.direction == ">" and close(reversed_labels.auc, r.auc)


def test_delong_variance_matches_quadratic_definition():
    """The O(n log n) placement values equal DeLong's pairwise kernel average (with ties)."""
    rng = np.random.default_rng(3)
    y = rng.random(300) < 0.4
    x = np.round(rng.normal(y * 0.8, 1.0), 1)
    r = roc_analysis(y, x, direction="<")
    xc, xk = x[y], x[~y]
    psi = (xc[:, None] > xk[None, :]) + 0.5 * (xc[:, None] == xk[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    var = v10.var(ddof=1) / xc.size + v01.var(ddof=1) / xk.size
    assert close(r.auc, psi.mean(), 1e-12) and close(r.auc_var, var, 1e-10)


def test_perfect_separation():
    r = roc_analysis([0, 0, 0, 1, 1, 1], [1, 2, 3, 4, 5, 6])
    assert r.auc == 1.0 and r.auc_se == 0.0 and (r.auc_ci_low, r.auc_ci_high) == (1.0, 1.0)
    assert r.cutoff == 3.5 and r.sensitivity == r.specificity == 1.0


# ------------------------------------------------------------------ bad input
def test_single_class_refused():
    with pytest.raises(InputError, match="single class"):
        roc_analysis(["Good"] * 5, [1, 2, 3, 4, 5])


def test_single_class_after_dropping_missing():
    with pytest.raises(InputError, match="single class"), pytest.warns(MissingDataWarning):
        roc_analysis(["Good", "Good", "Poor"], [1.0, 2.0, np.nan])


def test_constant_marker_refused():
    with pytest.raises(InputError, match="marker 'pdff' is constant"):
        roc_analysis([0, 1, 0, 1], pd.Series([3.0] * 4, name="pdff"))


def test_missing_markers_dropped_and_counted_or_refused(asah):
    x = asah["s100b"].copy()
    x.iloc[[0, 5, 50]] = np.nan
    with pytest.warns(MissingDataWarning, match="dropped 3 observation"):
        r = roc_analysis(asah["outcome"], x)
    assert r.n_dropped == 3 and r.n_cases + r.n_controls == len(asah) - 3
    keep = x.notna()
    assert close(r.auc, roc_analysis(asah["outcome"][keep], x[keep]).auc)
    with pytest.raises(InputError, match="3 observation.*missing"):
        roc_analysis(asah["outcome"], x, nan_policy="raise")
    with pytest.raises(InputError, match="nan_policy"):
        roc_analysis(asah["outcome"], x, nan_policy="ignore")


def test_other_bad_inputs():
    with pytest.raises(InputError, match="3 levels"):
        roc_analysis(["a", "b", "c", "a"], [1, 2, 3, 4])
    with pytest.raises(InputError, match="positive level 'x'"):
        roc_analysis(["a", "b"], [1, 2], positive="x")
    with pytest.raises(InputError, match="differ in length"):
        roc_analysis([0, 1, 0], [1, 2])
    with pytest.raises(InputError, match="numeric"):
        roc_analysis([0, 1], ["a", "b"])
    with pytest.raises(InputError, match="direction"):
        roc_analysis([0, 1], [1, 2], direction="up")
