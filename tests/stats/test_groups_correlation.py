"""ANOVA, Welch, Tukey, Kruskal–Wallis, chi-square, Fisher and correlations against base R (expected_values.json)."""

import numpy as np
import pandas as pd
import pytest

from osteomri.errors import InputError
from osteomri.stats import (
    MissingDataWarning,
    chi_square_test,
    correlation,
    fisher_exact_test,
    group_comparison,
    kruskal_wallis,
    qct_category,
    tukey_hsd,
    welch_anova,
    who_category,
)

REL = 1e-9


def approx(expected):
    """Relative 1e-9 only: pytest.approx's default absolute 1e-12 would swamp the tiny p-values here."""
    return pytest.approx(expected, rel=REL, abs=0)


@pytest.fixture
def plants(stats_dir):
    return pd.read_csv(stats_dir / "plantgrowth.csv")


@pytest.fixture
def base_r(expected):
    return expected["misc_base_R"]


@pytest.mark.shared_data
def test_anova_plantgrowth(plants, base_r):
    e = base_r["plantgrowth_anova"]
    res = group_comparison(plants["weight"], plants["group"], method="anova")
    assert res.statistic == approx(e["F"]) and res.p_value == approx(e["p"])
    assert [res.df1, res.df2] == e["df"]
    assert [res.extra["ss_between"], res.extra["ss_within"]] == approx(e["SS"])
    assert [res.extra["ms_between"], res.extra["ms_within"]] == approx(e["MS"])
    assert res.summary["mean"].tolist() == approx(e["group_means"])
    assert res.summary["sd"].tolist() == approx(e["group_sd"])
    ref = pd.DataFrame(e["tukey"])
    post = res.posthoc
    assert post["comparison"].tolist() == ref["comparison"].tolist()
    np.testing.assert_allclose(post["diff"], ref["diff"], rtol=REL)
    # scipy's studentized range is a numerical integral; it agrees with R's ptukey/qtukey to ~5e-11 here
    np.testing.assert_allclose(post["ci_low"], ref["lwr"], rtol=REL)
    np.testing.assert_allclose(post["ci_high"], ref["upr"], rtol=REL)
    np.testing.assert_allclose(post["p_adj"], ref["p_adj"], rtol=REL)


@pytest.mark.shared_data
def test_welch_kruskal_bartlett(plants, base_r):
    e = base_r["plantgrowth_anova"]
    w = welch_anova(plants["weight"], plants["group"])
    assert w.statistic == approx(e["welch"]["F"])
    assert [w.df1, w.df2] == approx(e["welch"]["df"]) and w.p_value == approx(e["welch"]["p"])
    k = kruskal_wallis(plants["weight"], plants["group"])
    assert k.statistic == approx(e["kruskal"]["H"]) and k.df1 == e["kruskal"]["df"]
    assert k.p_value == approx(e["kruskal"]["p"])


@pytest.mark.shared_data
def test_chi_square_and_fisher(asah, base_r):
    e = base_r["asah_gender_outcome_chisq"]
    gender = pd.Categorical(asah["gender"], categories=e["table"]["rows"])
    outcome = pd.Categorical(asah["outcome"], categories=e["table"]["cols"])
    yates = chi_square_test(pd.Series(gender), pd.Series(outcome))
    assert yates.extra["table"].to_numpy().ravel().tolist() == e["table"]["counts"]
    assert yates.method == "chi2_yates" and yates.df1 == e["yates"]["df"]
    assert yates.statistic == approx(e["yates"]["X2"]) and yates.p_value == approx(e["yates"]["p"])
    plain = chi_square_test(pd.Series(gender), pd.Series(outcome), correction=False)
    assert plain.statistic == approx(e["pearson_uncorrected"]["X2"])
    assert plain.p_value == approx(e["pearson_uncorrected"]["p"])
    f = fisher_exact_test(pd.Series(gender), pd.Series(outcome))
    assert f.p_value == approx(e["fisher"]["p"])
    # R finds the conditional MLE and its exact CI with uniroot(tol = eps^0.25): those digits only agree to ~1e-5
    assert f.extra["odds_ratio"] == pytest.approx(e["fisher"]["odds_ratio_cond_mle"], rel=1e-5)
    assert f.extra["ci"] == pytest.approx(e["fisher"]["ci95"], rel=1e-4)
    agresti = base_r["r_docs_agresti_party_gender"]
    res = chi_square_test(np.reshape(agresti["counts_rows_F_M_cols_Dem_Ind_Rep"], (2, 3)))
    assert res.statistic == approx(agresti["X2"]) and res.df1 == agresti["df"]
    assert res.p_value == approx(agresti["p"])


@pytest.mark.shared_data
def test_correlations(stats_dir, asah, base_r):
    pefr = pd.read_csv(stats_dir / "bland_altman_1986_pefr.csv")
    e = base_r["pefr_correlation"]
    p = correlation(pefr["wright_1"], pefr["mini_wright_1"])
    assert p.r == approx(e["pearson"]["r"]) and p.t == approx(e["pearson"]["t"])
    assert p.df == e["pearson"]["df"] and p.p_value == approx(e["pearson"]["p"])
    assert (p.ci_low, p.ci_high) == approx(e["pearson"]["ci95_fisher_z"])
    s = correlation(pefr["wright_1"], pefr["mini_wright_1"], method="spearman")
    assert s.r == approx(e["spearman"]["rho"]) and s.statistic_s == approx(e["spearman"]["S"])
    assert (s.ci_low, s.ci_high) == approx(e["spearman"]["ci95_fisher_z_se_1_over_sqrt_n_minus_3"])
    assert s.p_value == approx(e["spearman"]["p_t_approx"])
    a = base_r["asah_s100b_ndka_correlation"]
    p = correlation(asah["s100b"], asah["ndka"])
    assert p.r == approx(a["pearson"]["r"]) and p.p_value == approx(a["pearson"]["p"])
    assert (p.ci_low, p.ci_high) == approx(a["pearson"]["ci95"])
    s = correlation(asah["s100b"], asah["ndka"], method="spearman")  # with ties
    assert s.r == approx(a["spearman"]["rho"]) and s.p_value == approx(a["spearman"]["p"])


def test_correlation_regression_line_and_bad_input():
    x = np.arange(10.0)
    c = correlation(x, 2 * x + 1)
    assert c.r == pytest.approx(1.0) and c.slope == pytest.approx(2.0) and c.intercept == pytest.approx(1.0)
    with pytest.raises(InputError, match="'bmd' is constant"):
        correlation(pd.Series(np.ones(10), name="bmd"), x)
    with pytest.warns(MissingDataWarning, match="dropped 2"):
        assert correlation(np.r_[x, np.nan, 1], np.r_[x**2, 4, np.nan]).n_dropped == 2
    with pytest.raises(InputError, match="method"):
        correlation(x, x**2, method="kendall")


@pytest.mark.shared_data
def test_who_categories(expected):
    for t, label in expected["who_tscore"]["edge_cases_expected"].items():
        assert who_category(float(t)) == label
    s = who_category(pd.Series([0.5, -1.0, -1.05, -2.5, np.nan]))
    assert s.tolist()[:4] == ["normal", "normal", "osteopenia", "osteoporosis"] and pd.isna(s.iloc[4])
    assert list(s.cat.categories) == ["normal", "osteopenia", "osteoporosis"]
    assert who_category(-1.0000000000000002) == "normal"  # -1.0 after a float round trip
    assert qct_category(120.0) == "low_bone_density" and qct_category(120.5) == "normal"
    assert qct_category(80.0) == "low_bone_density" and qct_category(79.9) == "osteoporosis"


def test_group_comparison_dispatch_and_errors():
    rng = np.random.default_rng(1)
    vals = np.r_[rng.normal(0, 1, 20), rng.normal(3, 1, 20)]
    grp = np.repeat(["a", "b"], 20)
    assert group_comparison(vals, grp, method="auto").method == "anova"
    sex = np.where(rng.random(40) < 0.5, "F", "M")
    assert group_comparison(sex, grp, method="auto").method.startswith("chi2")
    small = group_comparison(np.array(["F"] * 4 + ["M"]), np.array(["a", "a", "b", "b", "b"]), method="auto")
    assert small.method == "fisher"
    with pytest.raises(InputError, match="needs a numeric variable"):
        group_comparison(sex, grp, method="anova")
    with pytest.raises(InputError, match="at least 2 groups"):
        group_comparison(vals, np.repeat("a", 40))
    with pytest.raises(InputError, match="2x2"):
        fisher_exact_test(np.array([[1, 2, 3], [4, 5, 6]]))
    t = tukey_hsd(vals, grp)
    assert t["comparison"].tolist() == ["b-a"] and t["p_adj"].iloc[0] < 1e-6
