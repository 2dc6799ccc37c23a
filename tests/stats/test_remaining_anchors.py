"""The remaining expected_values.json anchors: Venkatraman, local maxima, full best-threshold row,
bootstrap of the best cut-off, Bartlett's test and the 1986 paper's CIs of the limits of agreement."""

import numpy as np
import pandas as pd
import pytest

from osteomri.errors import InputError
from osteomri.stats import (
    bartlett_test,
    bland_altman,
    ci_best_coords,
    local_maxima,
    roc_analysis,
    venkatraman_test,
    venkatraman_test_unpaired,
)

pytestmark = pytest.mark.shared_data


def test_venkatraman_paired(asah, expected):
    e = expected["pROC_aSAH"]["venkatraman"]["s100b_vs_wfns_paired"]
    r = venkatraman_test(asah["outcome"], asah["s100b"], asah["wfns"], n_permutations=2000, random_state=42)
    assert r.statistic == e["E"]  # deterministic integer
    assert abs(r.p_value - e["p_seed42_boot2000"]) < 0.03  # permutation p (seeded R): loose check only
    again = venkatraman_test(asah["outcome"], asah["s100b"], asah["wfns"], n_permutations=300, random_state=7)
    same = venkatraman_test(asah["outcome"], asah["s100b"], asah["wfns"], n_permutations=300, random_state=7)
    assert again.p_value == same.p_value
    with pytest.raises(InputError, match="n_permutations"):
        venkatraman_test(asah["outcome"], asah["s100b"], asah["wfns"], n_permutations=0)


def test_venkatraman_identical_markers_not_significant(asah):
    r = venkatraman_test(asah["outcome"], asah["s100b"], asah["s100b"], n_permutations=200, random_state=0)
    assert r.statistic == 0 and r.p_value == 1.0


def test_venkatraman_unpaired(asah, expected):
    e = expected["pROC_aSAH"]["venkatraman"]["s100b_vs_wfns_unpaired"]
    r = venkatraman_test_unpaired(asah["outcome"], asah["s100b"], asah["outcome"], asah["wfns"],
                                  n_permutations=2000, random_state=42)
    assert r.statistic == pytest.approx(e["E"], rel=1e-9)
    assert abs(r.p_value - e["p_seed42_boot2000"]) < 0.03  # permutation p (seeded R): loose check only
    assert not r.paired and r.n_cases == 2 * 41
    # E is symmetric in the two samples and invariant to monotone transforms of either marker
    swapped = venkatraman_test_unpaired(asah["outcome"], asah["wfns"], asah["outcome"], asah["s100b"],
                                        n_permutations=1, random_state=0)
    logged = venkatraman_test_unpaired(asah["outcome"], np.log(asah["s100b"]), asah["outcome"], asah["wfns"],
                                       n_permutations=1, random_state=0)
    assert swapped.statistic == pytest.approx(r.statistic, rel=1e-12)
    assert logged.statistic == pytest.approx(r.statistic, rel=1e-12)
    with pytest.raises(InputError, match="n_permutations"):
        venkatraman_test_unpaired(asah["outcome"], asah["s100b"], asah["outcome"], asah["wfns"], n_permutations=0)


def test_venkatraman_unpaired_identical_samples_not_significant(asah):
    r = venkatraman_test_unpaired(asah["outcome"], asah["s100b"], asah["outcome"], asah["s100b"],
                                  n_permutations=200, random_state=0)
    assert r.statistic == 0 and r.p_value == 1.0


def test_venkatraman_unpaired_separates_different_curves_of_unequal_samples():
    """Independent samples of different sizes: equal binormal curves are not rejected, crossing ones are."""
    rng = np.random.default_rng(3)

    def sample(n_controls, n_cases, shift_cases, sd_cases):
        x = np.r_[rng.normal(0, 1, n_controls), rng.normal(shift_cases, sd_cases, n_cases)]
        return np.r_[np.zeros(n_controls), np.ones(n_cases)], x

    ya, xa = sample(70, 50, 1.0, 1.0)
    yb, xb = sample(120, 40, 1.0, 1.0)
    same = venkatraman_test_unpaired(ya, xa, yb, np.exp(xb), n_permutations=500, random_state=1)
    assert same.p_value > 0.05
    yc, xc = sample(150, 100, 0.5, 4.0)  # a very different (crossing) curve
    diff = venkatraman_test_unpaired(ya, xa, yc, xc, n_permutations=500, random_state=1)
    assert diff.p_value < 0.01 and diff.statistic > same.statistic


def test_local_maxima_count(asah, expected):
    r = roc_analysis(asah["outcome"], asah["s100b"])
    lm = local_maxima(r)
    assert len(lm) == expected["pROC_aSAH"]["coords_best"]["s100b_local_maximas_count"]
    # the Youden-optimal threshold is always a corner
    assert r.cutoff in lm["threshold"].to_numpy()


def test_s100b_youden_full_row(asah, expected):
    e = expected["pROC_aSAH"]["coords_best"]["s100b_youden"]["value"]
    r = roc_analysis(asah["outcome"], asah["s100b"])
    row = r.curve.iloc[int(np.flatnonzero(r.curve["threshold"] == r.cutoff)[0])]
    se, sp, tp, fp, tn, fn = (row[k] for k in ("sensitivity", "specificity", "tp", "fp", "tn", "fn"))
    derived = {
        "threshold": r.cutoff, "specificity": sp, "sensitivity": se, "accuracy": row["accuracy"],
        "tn": tn, "tp": tp, "fn": fn, "fp": fp, "npv": row["npv"], "ppv": row["ppv"],
        "fdr": fp / (tp + fp), "fpr": 1 - sp, "tpr": se, "tnr": sp, "fnr": 1 - se,
        "1-specificity": 1 - sp, "1-sensitivity": 1 - se, "1-accuracy": 1 - row["accuracy"],
        "1-npv": 1 - row["npv"], "1-ppv": 1 - row["ppv"], "precision": row["ppv"], "recall": se,
        "youden": r.youden_j + 1, "closest.topleft": row["closest_topleft"],
    }
    assert set(derived) == set(e)
    for key, value in e.items():
        assert derived[key] == pytest.approx(value, rel=1e-9), key


def test_bootstrap_ci_of_best_coords(asah, expected):
    e = expected["pROC_aSAH"]["bootstrap_seeded_R"]["ci_coords_best_s100b"]
    ci = ci_best_coords(asah["outcome"], asah["s100b"], n_bootstrap=2000, random_state=42).set_index("quantity")
    for q in ("threshold", "specificity", "sensitivity"):
        ours = ci.loc[q, ["ci_low", "median", "ci_high"]].to_numpy(float)
        assert np.abs(ours - np.asarray(e[q])).max() < 0.03, q  # seeded-R bootstrap: loose tolerance
    best = expected["pROC_aSAH"]["coords_best"]["s100b_youden"]["value"]
    assert ci.loc["threshold", "estimate"] == pytest.approx(best["threshold"], rel=1e-9)
    with pytest.raises(InputError, match="n_bootstrap"):
        ci_best_coords(asah["outcome"], asah["s100b"], n_bootstrap=10)


def test_bartlett_plantgrowth(stats_dir, expected):
    e = expected["misc_base_R"]["plantgrowth_anova"]["bartlett"]
    plants = pd.read_csv(stats_dir / "plantgrowth.csv")
    b = bartlett_test(plants["weight"], plants["group"])
    assert b.statistic == pytest.approx(e["K2"], rel=1e-9) and b.p_value == pytest.approx(e["p"], rel=1e-9)
    assert b.df1 == 2
    from scipy.stats import bartlett

    groups = [g.to_numpy() for _, g in plants.groupby("group")["weight"]]
    assert b.statistic == pytest.approx(bartlett(*groups).statistic, rel=1e-12)


def test_bland_altman_1986_published_loa_cis(stats_dir, expected):
    """The paper's CIs of the limits: LoA ± t·SE from the rounded printed inputs (-79.7/75.5, t 2.12, SE 16.3)."""
    e = expected["bland_altman"]["pefr_1986"]
    pefr = pd.read_csv(stats_dir / "bland_altman_1986_pefr.csv")
    ba = bland_altman(pefr["wright_1"], pefr["mini_wright_1"], multiplier=2, loa_se_method="1986")
    pu = e["published_ci_unverified"]
    from scipy.stats import t as t_dist

    t, se = round(float(t_dist.ppf(0.975, ba.n - 1)), 2), round(ba.se_loa, 1)
    assert (t, se) == (pu["t"], pu["se_loa"])
    bias_1, sd_1 = round(ba.bias, 1), round(ba.sd_diff, 1)  # the paper's printed -2.1 and 38.8
    lo, hi = round(bias_1 - 2 * sd_1, 1), round(bias_1 + 2 * sd_1, 1)
    assert [round(lo - t * se, 1), round(lo + t * se, 1)] == pu["ci_lower_loa"]
    assert [round(hi - t * se, 1), round(hi + t * se, 1)] == pu["ci_upper_loa"]
    # and the exact CIs round to within 0.2 of the printed ones
    assert np.abs(np.subtract(ba.loa_low_ci, pu["ci_lower_loa"])).max() < 0.2
    assert np.abs(np.subtract(ba.loa_high_ci, pu["ci_upper_loa"])).max() < 0.2
