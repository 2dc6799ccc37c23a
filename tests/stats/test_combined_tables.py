"""Logistic combination (against R glm + pROC) and the paper tables."""

import numpy as np
import pandas as pd
import pytest

from osteomri.errors import InputError
from osteomri.phantom.cohort import SEED_STUDY_TABLE1, synthetic_clinical_cohort
from osteomri.stats import MissingDataWarning, combined_marker, table1, table2


@pytest.mark.shared_data
@pytest.mark.parametrize(("model", "columns", "single"), [
    ("model1", ["s100b", "ndka"], "s100b"),
    ("model2", ["s100b", "wfns", "age"], "wfns"),
])
def test_combined_marker_matches_glm_and_proc(asah, expected, model, columns, single):
    e = expected["pROC_aSAH"]["combined_logistic"][model]
    res = combined_marker(asah["outcome"], asah[columns], optimism=None)
    ref_coefs = list(e["coef"].values())
    # R's glm stops its IRLS when the relative deviance change is < 1e-8 (4-5 iterations here), short of the
    # exact MLE we compute: its coefficients are ~8e-9 relative from the maximum. The fitted scores order the
    # patients identically, so the AUC, its DeLong CI and the DeLong test agree to rounding (rel 1e-9).
    np.testing.assert_allclose(res.coefficients["coef"], ref_coefs, rtol=1e-7)
    assert res.roc.auc == pytest.approx(e["auc"], rel=1e-9)
    assert (res.roc.auc_ci_low, res.roc.auc_ci_high) == pytest.approx(e["ci_delong_95"], rel=1e-9)
    cmp = res.comparisons.set_index("marker_b").loc[single]
    key = [k for k in e if k.startswith("delong_vs")][0]
    assert cmp["statistic"] == pytest.approx(e[key]["Z"], rel=1e-9)
    assert cmp["p_value"] == pytest.approx(e[key]["p"], rel=1e-9)


@pytest.mark.shared_data
def test_optimism_correction_lowers_the_auc(asah):
    boot = combined_marker(asah["outcome"], asah[["s100b", "ndka", "age"]], n_bootstrap=100, random_state=0)
    cv = combined_marker(asah["outcome"], asah[["s100b", "ndka", "age"]], optimism="cv", random_state=0)
    assert boot.optimism > 0 and boot.auc_corrected < boot.auc_apparent
    assert cv.auc_corrected < cv.auc_apparent
    again = combined_marker(asah["outcome"], asah[["s100b", "ndka", "age"]], n_bootstrap=100, random_state=0)
    assert again.auc_corrected == boot.auc_corrected


def test_combined_pure_noise_has_corrected_auc_near_half():
    rng = np.random.default_rng(5)
    y = rng.random(200) < 0.5
    noise = pd.DataFrame(rng.normal(size=(200, 5)), columns=list("abcde"))
    res = combined_marker(y, noise, n_bootstrap=100, random_state=1)
    assert res.auc_apparent > 0.55  # in-sample fit is optimistic
    assert abs(res.auc_corrected - 0.5) < abs(res.auc_apparent - 0.5)


def test_combined_bad_input():
    x = pd.DataFrame({"a": [1.0, 2, 3, 4, 5, 6], "b": [2.0, 4, 6, 8, 10, 12]})
    with pytest.raises(InputError, match="collinear"):
        combined_marker([0, 1, 0, 1, 0, 1], x)
    with pytest.raises(InputError, match="marker 'c' is constant"):
        combined_marker([0, 1, 0, 1, 0, 1], x.assign(c=1.0)[["a", "c"]])


@pytest.fixture(scope="module")
def cohort():
    return synthetic_clinical_cohort(random_state=11, match_moments=True)


def test_table1_layout_and_values(cohort):
    t = table1(cohort, "who_group", ["sex", "age", "bmi", "bmd_mg_cm3", "pdff_percent", "r2star_hz"])
    assert list(t.columns[1:4]) == ["normal (n=30)", "osteopenia (n=41)", "osteoporosis (n=49)"]
    row = t.set_index("variable").loc["pdff_percent"]
    spec = SEED_STUDY_TABLE1
    assert row["normal (n=30)"] == f"{spec['normal']['pdff_percent'][0]:.2f} ± {spec['normal']['pdff_percent'][1]:.2f}"
    # the ANOVA F follows from the published means and SDs alone (moments matched exactly)
    n = np.array([s["n"] for s in spec.values()])
    m = np.array([s["pdff_percent"][0] for s in spec.values()])
    sd = np.array([s["pdff_percent"][1] for s in spec.values()])
    gm = (n * m).sum() / n.sum()
    f = ((n * (m - gm) ** 2).sum() / 2) / (((n - 1) * sd**2).sum() / (n.sum() - 3))
    assert row["statistic"] == pytest.approx(f, rel=1e-9) and row["test"] == "ANOVA F" and row["p"] == "<0.001"
    sex = t.iloc[0]
    assert sex["variable"] == "sex (F/M)" and sex["test"].startswith("chi-square")
    assert sum(int(x) for col in t.columns[1:4] for x in sex[col].split("/")) == 120
    assert set(t.attrs["posthoc"]["variable"]) == {"age", "bmi", "bmd_mg_cm3", "pdff_percent", "r2star_hz"}


def test_table1_bad_input(cohort):
    with pytest.raises(InputError, match=r"unknown column\(s\) \['ff'\]"):
        table1(cohort, "who_group", ["ff"])
    with pytest.raises(InputError, match="at least 2 groups"):
        table1(cohort[cohort["who_group"] == "normal"], "who_group", ["age"])


def test_table2(cohort):
    df = cohort.assign(osteoporosis=(cohort["who_group"] == "osteoporosis"))
    res = table2(df, "osteoporosis", ["pdff_percent", "r2star_hz"], n_bootstrap=50, random_state=0)
    t = res.table
    assert res.combined is not None and res.combined.roc.auc == pytest.approx(t.loc[2, "auc"], abs=1e-3)
    assert t["marker"].tolist() == ["pdff_percent", "r2star_hz", "pdff_percent + r2star_hz"]
    assert t.loc[0, "direction"] == "<" and t.loc[1, "direction"] == ">"  # more fat, lower R2* in osteoporosis
    assert (t["auc"] > 0.7).all() and t.loc[2, "auc"] >= t.loc[:1, "auc"].max() - 0.01
    assert abs(t.loc[2, "auc_corrected"] - t.loc[2, "auc"]) < 0.05  # two predictors, 120 patients: little optimism
    assert t.loc[0, "auc_95ci"].startswith(f"{t.loc[0, 'auc']:.3f} (")
    assert (t["youden_j"] == t["sensitivity"] + t["specificity"] - 1).all()
    cmp = res.comparisons
    assert len(cmp) == 3 and {"marker_a", "marker_b", "p_value"} <= set(cmp.columns)
    gap = df.copy()
    gap.loc[[0, 1], "pdff_percent"] = np.nan
    with pytest.warns(MissingDataWarning, match="dropped 2"):
        t2 = table2(gap, "osteoporosis", ["pdff_percent", "r2star_hz"], combined=False)
    assert t2.n_dropped == 2 and (t2.table["n_cases"] + t2.table["n_controls"] == 118).all()
    assert t2.combined is None
    with pytest.raises(InputError, match="missing"):
        table2(gap, "osteoporosis", ["pdff_percent"], nan_policy="raise")
    with pytest.raises(InputError, match="single class"):
        table2(df[df["osteoporosis"]], "osteoporosis", ["pdff_percent"])
