"""The expected_values.json leaves no other test asserted, and a guard that every numeric leaf is accounted for.

Audit (mutation of each numeric leaf of the fixture, one at a time): every leaf that is an expected result
makes some test fail when perturbed beyond its tolerance. The leaves below were the ones that did not;
``test_every_numeric_leaf_is_accounted_for`` keeps a new leaf from slipping in unasserted.
"""

import re

import numpy as np
import pandas as pd
import pytest

from osteomri.errors import InputError
from osteomri.stats import MissingDataWarning, bland_altman, ci_thresholds, icc, roc_analysis

pytestmark = pytest.mark.shared_data
REL = 1e-9
LOOSE = 0.03  # README: bootstrap or permutation values from seeded R, about 0.03 absolute


# ----------------------------------------------------------------------------- newly asserted leaves
def test_asah_row_count(asah, expected):
    d = expected["pROC_aSAH"]["dataset"]
    assert len(asah) == d["rows"]
    for marker in ("s100b", "wfns", "ndka"):
        r = roc_analysis(asah["outcome"], asah[marker])
        assert r.n_cases + r.n_controls + r.n_dropped == d["rows"] and r.n_dropped == 0


def test_ci_thresholds_best_s100b(asah, expected):
    """pROC ``ci.thresholds(r.s100b, thresholds="best")``: percentile CI *and* bootstrap median at 0.205."""
    e = expected["pROC_aSAH"]["bootstrap_seeded_R"]["ci_thresholds_best_s100b"]
    best = expected["pROC_aSAH"]["coords_best"]["s100b_youden"]["value"]
    ci = ci_thresholds(asah["outcome"], asah["s100b"], n_bootstrap=2000, random_state=42)
    assert ci["threshold"].tolist() == pytest.approx([e["threshold"]] * 2, rel=REL)
    ci = ci.set_index("quantity")
    for q in ("specificity", "sensitivity"):
        ours = ci.loc[q, ["ci_low", "median", "ci_high"]].to_numpy(float)
        assert np.abs(ours - np.asarray(e[q], dtype=float)).max() < LOOSE, q  # seeded-R bootstrap
        assert ci.loc[q, "estimate"] == pytest.approx(best[q], rel=REL)  # full-sample Se/Sp at the cut-off
    # the same replicates as roc_analysis(se_sp_ci="bootstrap") with the same seed (no AUC bootstrap first)
    r = roc_analysis(asah["outcome"], asah["s100b"], se_sp_ci="bootstrap", n_bootstrap=2000, random_state=42)
    assert tuple(ci.loc["sensitivity", ["ci_low", "ci_high"]]) == r.sensitivity_ci
    assert tuple(ci.loc["specificity", ["ci_low", "ci_high"]]) == r.specificity_ci


def test_ci_thresholds_fixed_thresholds_and_direction(asah, expected):
    best = expected["pROC_aSAH"]["coords_best"]
    curve = roc_analysis(asah["outcome"], asah["s100b"]).curve
    t = [best["s100b_partial_se_0.9_0.99_best_threshold"]["value"], best["s100b_youden"]["value"]["threshold"],
         best["s100b_partial_sp_0.9_0.99_best_threshold"]["value"]]
    ci = ci_thresholds(asah["outcome"], asah["s100b"], t, n_bootstrap=300, random_state=0)
    assert ci["threshold"].tolist() == np.repeat(t, 2).tolist()
    for _, row in ci.iterrows():  # estimates are the curve's Se/Sp at that threshold; CI brackets the median
        at = curve[np.isclose(curve["threshold"], row["threshold"], rtol=1e-12, atol=0)]
        assert len(at) == 1 and row["estimate"] == pytest.approx(at[row["quantity"]].iloc[0], rel=REL)
        assert row["ci_low"] <= row["median"] <= row["ci_high"]
    flipped = ci_thresholds(asah["outcome"], -asah["s100b"], [-x for x in t], n_bootstrap=300, random_state=0)
    assert flipped.attrs["direction"] == ">"
    np.testing.assert_array_equal(flipped[["estimate", "ci_low", "median", "ci_high"]],
                                  ci[["estimate", "ci_low", "median", "ci_high"]])
    again = ci_thresholds(asah["outcome"], asah["s100b"], t, n_bootstrap=300, random_state=0)
    pd.testing.assert_frame_equal(again, ci)


def test_ci_thresholds_bad_input(asah):
    y, x = asah["outcome"], asah["s100b"]
    with pytest.raises(InputError, match="n_bootstrap"):
        ci_thresholds(y, x, n_bootstrap=10)
    with pytest.raises(InputError, match="conf_level"):
        ci_thresholds(y, x, conf_level=95)
    with pytest.raises(InputError, match="thresholds must be 'best'"):
        ci_thresholds(y, x, "youden")
    with pytest.raises(InputError, match="non-empty"):
        ci_thresholds(y, x, [])
    with pytest.raises(InputError, match="NaN"):
        ci_thresholds(y, x, [0.2, np.nan])
    with pytest.raises(InputError, match="single class"):
        ci_thresholds(["Good"] * 5, [1, 2, 3, 4, 5])
    gap = x.copy()
    gap.iloc[:2] = np.nan
    with pytest.warns(MissingDataWarning, match="dropped 2"):
        assert ci_thresholds(y, gap, n_bootstrap=100, random_state=0).attrs["n_dropped"] == 2
    with pytest.raises(InputError, match="missing"):
        ci_thresholds(y, gap, nan_policy="raise")


def test_icc_wine_pingouin_rounded_f_and_df(stats_dir, expected):
    rounded = expected["icc"]["wine_4judges"]["pingouin_test_rounded"]
    res = icc(pd.read_csv(stats_dir / "icc_wine_4judges.csv"), "Wine", "Judge", "Scores")
    assert res["F"].round(0).tolist() == [rounded["F"]] * len(res)
    assert res["df1"].tolist() == [rounded["df1"]] * len(res)
    assert res["df2"].tolist() == rounded["df2"]


def test_pefr_1986_n(stats_dir, expected):
    e = expected["bland_altman"]["pefr_1986"]
    pefr = pd.read_csv(stats_dir / "bland_altman_1986_pefr.csv")
    assert len(pefr) == e["n"]
    assert bland_altman(pefr["wright_1"], pefr["mini_wright_1"]).n == e["n"]


# ----------------------------------------------------------------------------- completeness guard
# Every numeric leaf of expected_values.json must match one pattern here: either a test that asserts it
# or the reason it is not an expected result (a test input or a tolerance).
ASSERTED = {
    r"pROC_aSAH/dataset/(controls_Good|cases_Poor)": "test_roc::test_auc_variance_and_delong_ci",
    r"pROC_aSAH/dataset/rows": "test_asah_row_count",
    r"pROC_aSAH/(auc/\w+/value|var_delong/\w+|ci_auc_delong_95/(s100b|wfns|ndka)/value/\d)":
        "test_roc::test_auc_variance_and_delong_ci",
    r"pROC_aSAH/ci_auc_delong_95/ndka_female_subset/value/\d": "test_roc::test_ci_on_female_subset",
    r"pROC_aSAH/cov_delong/\w+": "test_roc::test_delong_covariances",
    r"pROC_aSAH/cov_obuchowski/\w+": "test_power_smooth::test_cov_obuchowski",
    r"pROC_aSAH/roc_test_delong_paired/identical_curves/(Z|p)": "test_roc::test_identical_curves",
    r"pROC_aSAH/roc_test_delong_paired/\w+/(Z|p|p_greater|p_less|ci95_diff/\d)": "test_roc::test_paired_delong",
    r"pROC_aSAH/roc_test_delong_unpaired/\w+/(D|df|p|p_greater|p_less)": "test_roc::test_unpaired_delong",
    r"pROC_aSAH/coords_best/s100b_youden/value/.+": "test_remaining_anchors::test_s100b_youden_full_row",
    r"pROC_aSAH/coords_best/(wfns|ndka)_youden/\w+": "test_roc::test_best_thresholds",
    r"pROC_aSAH/coords_best/\w+_closest_topleft/\w+": "test_roc::test_best_thresholds",
    r"pROC_aSAH/coords_best/s100b_partial_(sp|se)_0\.9_0\.99_best_threshold/value":
        "test_roc::test_best_threshold_within_partial_range",
    r"pROC_aSAH/coords_best/s100b_local_maximas_count": "test_remaining_anchors::test_local_maxima_count",
    r"pROC_aSAH/sens_spec_ci_at_youden_s100b/.+": "test_roc::test_clopper_pearson_ci_at_cutoff",
    r"pROC_aSAH/bootstrap_seeded_R/ci_auc_s100b/\d": "test_roc::test_stratified_bootstrap_matches_proc_loosely",
    r"pROC_aSAH/bootstrap_seeded_R/ci_thresholds_best_s100b/.+": "test_ci_thresholds_best_s100b",
    r"pROC_aSAH/bootstrap_seeded_R/ci_coords_best_s100b/.+":
        "test_remaining_anchors::test_bootstrap_ci_of_best_coords",
    r"pROC_aSAH/partial_auc/.+": "test_roc::test_partial_auc",
    r"pROC_aSAH/smooth/.+": "test_power_smooth::test_smooth_binormal_and_density",
    r"pROC_aSAH/power_roc_test/(s100b_observed|auc0\.73_n41_72|auc_s100b_power0\.95_kappa1\.7|"
    r"n41_72_auc0\.73_power0\.95|n41_72_power0\.95|s100b_power0\.9)/\w+": "test_power_smooth::test_power_one_roc",
    r"pROC_aSAH/power_roc_test/ndka_vs_wfns_[\w.]+/\w+": "test_power_smooth::test_power_two_rocs",
    r"pROC_aSAH/power_roc_test/obuchowski_mcclish_1997_example2_binormal/(power0\.8_ncases|ncases107_power)":
        "test_power_smooth::test_power_obuchowski_mcclish_example2",
    r"pROC_aSAH/venkatraman/\w+/(E|p_seed42_boot2000)": "test_remaining_anchors::test_venkatraman_(un)paired",
    r"pROC_aSAH/combined_logistic/model\d/.+": "test_combined_tables::test_combined_marker_matches_glm_and_proc",
    r"icc/\w+/psych_ICC/\d/\w+": "test_agreement::test_icc_shrout_fleiss / test_icc_wine",
    r"icc/shrout_fleiss_1979/(published|anova_mean_squares)/.+": "test_agreement::test_icc_shrout_fleiss",
    r"icc/wine_4judges/pingouin_test_rounded/(ICC|ci_low|ci_high)/\d": "test_agreement::test_icc_wine",
    r"icc/wine_4judges/pingouin_test_rounded/(F|df1|df2/\d)": "test_icc_wine_pingouin_rounded_f_and_df",
    r"bland_altman/pefr_1986/n": "test_pefr_1986_n",
    r"bland_altman/pefr_1986/(computed|published)/.+": "test_agreement::test_bland_altman_1986 / _1999 / "
                                                        "test_repeatability",
    r"bland_altman/pefr_1986/published_ci_unverified/.+":
        "test_agreement::test_bland_altman_1986 / test_remaining_anchors::test_bland_altman_1986_published_loa_cis",
    r"misc_base_R/plantgrowth_anova/bartlett/\w+": "test_remaining_anchors::test_bartlett_plantgrowth",
    r"misc_base_R/plantgrowth_anova/(welch|kruskal)/.+": "test_groups_correlation::test_welch_kruskal_bartlett",
    r"misc_base_R/plantgrowth_anova/.+": "test_groups_correlation::test_anova_plantgrowth",
    r"misc_base_R/(pefr_correlation|asah_s100b_ndka_correlation)/.+": "test_groups_correlation::test_correlations",
    r"misc_base_R/asah_gender_outcome_chisq/.+": "test_groups_correlation::test_chi_square_and_fisher",
    r"misc_base_R/r_docs_agresti_party_gender/(X2|df|p)": "test_groups_correlation::test_chi_square_and_fisher",
}
NOT_RESULTS = {
    r"pROC_aSAH/power_roc_test/obuchowski_mcclish_1997_example2_binormal/params/\w+": "inputs of the power example",
    r"pROC_aSAH/power_roc_test/tolerance": "the tolerance the power tests use",
    r"misc_base_R/r_docs_agresti_party_gender/counts_rows_F_M_cols_Dem_Ind_Rep/\d": "input contingency table",
}


def _numeric_leaves(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _numeric_leaves(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _numeric_leaves(value, (*path, i))
    elif isinstance(node, int | float) and not isinstance(node, bool):
        yield "/".join(map(str, path))


def test_every_numeric_leaf_is_accounted_for(expected):
    leaves = list(_numeric_leaves(expected))
    patterns = [re.compile(p) for p in (*ASSERTED, *NOT_RESULTS)]
    unclaimed = [leaf for leaf in leaves if not any(p.fullmatch(leaf) for p in patterns)]
    assert not unclaimed, f"numeric leaves of expected_values.json no test asserts: {unclaimed}"
    unused = [p.pattern for p in patterns if not any(p.fullmatch(leaf) for leaf in leaves)]
    assert not unused, f"patterns that match no leaf (renamed in the JSON?): {unused}"
