"""ICC against psych::ICC and Shrout & Fleiss (1979); Bland–Altman against the 1986 peak-flow example."""

import numpy as np
import pandas as pd
import pytest

from osteomri.errors import InputError
from osteomri.stats import MissingDataWarning, bland_altman, icc, icc_wide, repeatability

pytestmark = pytest.mark.shared_data
PSYCH_ORDER = ["Single_raters_absolute", "Single_random_raters", "Single_fixed_raters",
               "Average_raters_absolute", "Average_random_raters", "Average_fixed_raters"]
OURS = ["ICC1", "ICC2", "ICC3", "ICC1k", "ICC2k", "ICC3k"]


def _check_psych(result, ref_rows):
    ref = pd.DataFrame(ref_rows).set_index("type").loc[PSYCH_ORDER]
    assert result["type"].tolist() == OURS
    for ours, theirs in [("icc", "ICC"), ("F", "F"), ("df1", "df1"), ("df2", "df2"), ("p_value", "p"),
                         ("ci_low", "lower_95"), ("ci_high", "upper_95")]:
        np.testing.assert_allclose(result[ours].to_numpy(float), ref[theirs].to_numpy(float), rtol=1e-9,
                                   err_msg=ours)


def _shrout_fleiss_long(stats_dir):
    wide = pd.read_csv(stats_dir / "shrout_fleiss_1979.csv")
    return wide.melt(id_vars="target", var_name="judge", value_name="rating")


def test_icc_shrout_fleiss(stats_dir, expected):
    e = expected["icc"]["shrout_fleiss_1979"]
    res = icc(_shrout_fleiss_long(stats_dir), "target", "judge", "rating")
    _check_psych(res, e["psych_ICC"])
    for key, value in e["anova_mean_squares"].items():
        if key != "prov":
            assert res.attrs["mean_squares"][key] == pytest.approx(value, rel=1e-9)
    published = {"ICC(1,1)": "ICC1", "ICC(2,1)": "ICC2", "ICC(3,1)": "ICC3", "ICC(1,4)": "ICC1k",
                 "ICC(2,4)": "ICC2k", "ICC(3,4)": "ICC3k"}
    by_type = res.set_index("type")["icc"]
    for paper, ours in published.items():
        assert round(by_type[ours], 2) == e["published"][paper]


def test_icc_wine(stats_dir, expected):
    e = expected["icc"]["wine_4judges"]
    res = icc(pd.read_csv(stats_dir / "icc_wine_4judges.csv"), "Wine", "Judge", "Scores")
    _check_psych(res, e["psych_ICC"])
    rounded = e["pingouin_test_rounded"]
    assert res["icc"].round(2).tolist() == rounded["ICC"]
    assert res["ci_low"].round(2).tolist() == rounded["ci_low"]
    assert res["ci_high"].round(2).tolist() == rounded["ci_high"]


def test_icc_invariances(stats_dir):
    long = _shrout_fleiss_long(stats_dir)
    base = icc(long, "target", "judge", "rating")
    # a common shift and scale of all ratings changes no ICC; shuffling rows changes nothing
    moved = long.assign(rating=3 * long["rating"] + 10).sample(frac=1, random_state=0)
    np.testing.assert_allclose(icc(moved, "target", "judge", "rating")["icc"], base["icc"], rtol=1e-12)
    # a constant offset of one judge leaves ICC3 (consistency) unchanged but lowers ICC2 (absolute agreement)
    wide = long.pivot(index="target", columns="judge", values="rating")
    shifted = wide.assign(J1=wide["J1"] + 5)
    res = icc_wide(shifted).set_index("type")["icc"]
    assert res["ICC3"] == pytest.approx(base.set_index("type")["icc"]["ICC3"], rel=1e-12)
    assert res["ICC2"] < base.set_index("type")["icc"]["ICC2"]


def test_icc_bad_input(stats_dir):
    long = _shrout_fleiss_long(stats_dir)
    with pytest.raises(InputError, match=r"unknown column\(s\) \['reader'\]"):
        icc(long, "target", "reader", "rating")
    with pytest.raises(InputError, match="duplicated target/rater"):
        icc(pd.concat([long, long.iloc[:1]]), "target", "judge", "rating")
    gap = long.copy()
    gap.loc[0, "rating"] = np.nan
    with pytest.warns(MissingDataWarning, match="dropped 1"):
        res = icc(gap, "target", "judge", "rating")
    assert res.attrs["n_dropped"] == 1 and res["n_targets"].iloc[0] == 5
    with pytest.raises(InputError, match="missing"):
        icc(gap, "target", "judge", "rating", nan_policy="raise")
    with pytest.raises(InputError, match="constant"):
        icc(long.assign(rating=1.0), "target", "judge", "rating")


@pytest.fixture
def pefr(stats_dir):
    return pd.read_csv(stats_dir / "bland_altman_1986_pefr.csv")


def test_bland_altman_1986(pefr, expected):
    e = expected["bland_altman"]["pefr_1986"]
    c = e["computed"]
    ba = bland_altman(pefr["wright_1"], pefr["mini_wright_1"], multiplier=2, loa_se_method="1986")
    assert ba.n == c["n"]
    assert ba.bias == pytest.approx(c["mean_diff"], rel=1e-9) and ba.sd_diff == pytest.approx(c["sd_diff"], rel=1e-9)
    assert (ba.loa_low, ba.loa_high) == pytest.approx(c["loa_2sd"], rel=1e-9)
    assert ba.t_crit == pytest.approx(c["t_0.975_df16"], rel=1e-9)
    assert ba.se_bias == pytest.approx(c["se_bias"], rel=1e-9)
    assert ba.bias_ci == pytest.approx(c["ci95_bias"], rel=1e-9)
    assert ba.se_loa == pytest.approx(c["se_loa_1986"], rel=1e-9)
    assert ba.loa_low_ci == pytest.approx(c["ci95_lower_loa2sd_1986"], rel=1e-9)
    assert ba.loa_high_ci == pytest.approx(c["ci95_upper_loa2sd_1986"], rel=1e-9)
    assert ba.paired_t == pytest.approx(c["paired_t"], rel=1e-9)
    assert ba.paired_p == pytest.approx(c["paired_p"], rel=1e-9)
    assert ba.pearson_r == pytest.approx(c["pearson_r_first"], rel=1e-9)
    p = e["published"]
    assert round(ba.bias, 1) == p["mean_diff"] and round(ba.sd_diff, 1) == p["sd_diff"]
    assert round(ba.pearson_r, 2) == p["pearson_r"]
    # the paper computed its limits from the rounded mean and SD: -2.1 -/+ 2 x 38.8
    bias_1, sd_1 = round(ba.bias, 1), round(ba.sd_diff, 1)
    assert [round(bias_1 - 2 * sd_1, 1), round(bias_1 + 2 * sd_1, 1)] == p["loa_2sd"]
    assert max(abs(ba.loa_low - p["loa_2sd"][0]), abs(ba.loa_high - p["loa_2sd"][1])) < 0.1
    pu = e["published_ci_unverified"]
    assert round(ba.se_bias, 1) == pu["se_bias"] and round(ba.se_loa, 1) == pu["se_loa"]
    assert [round(v, 1) for v in ba.bias_ci] == pu["ci_bias"]


def test_bland_altman_1999(pefr, expected):
    c = expected["bland_altman"]["pefr_1986"]["computed"]
    ba = bland_altman(pefr["wright_1"], pefr["mini_wright_1"])  # 1.96 SD, 1999 SE
    assert (ba.loa_low, ba.loa_high) == pytest.approx(c["loa_1.96sd"], rel=1e-9)
    assert ba.se_loa == pytest.approx(c["se_loa_1999"], rel=1e-9)
    assert ba.loa_low_ci == pytest.approx(c["ci95_lower_loa1.96_1999"], rel=1e-9)
    assert ba.loa_high_ci == pytest.approx(c["ci95_upper_loa1.96_1999"], rel=1e-9)
    means = bland_altman((pefr["wright_1"] + pefr["wright_2"]) / 2, (pefr["mini_wright_1"] + pefr["mini_wright_2"]) / 2)
    assert means.bias == pytest.approx(c["means_of_pairs_diff"]["mean"], rel=1e-9)
    assert means.sd_diff == pytest.approx(c["means_of_pairs_diff"]["sd"], rel=1e-9)


def test_repeatability(pefr, expected):
    c = expected["bland_altman"]["pefr_1986"]["computed"]
    w = repeatability(pefr["wright_1"], pefr["wright_2"])
    m = repeatability(pefr["mini_wright_1"], pefr["mini_wright_2"])
    assert w["sd_diff"] == pytest.approx(c["repeatability_wright_sd_diff"], rel=1e-9)
    assert m["sd_diff"] == pytest.approx(c["repeatability_mini_sd_diff"], rel=1e-9)
    assert w["repeatability_coefficient"] == pytest.approx(c["repeat_coef_wright_2sd_rms"], rel=1e-9)
    assert m["repeatability_coefficient"] == pytest.approx(c["repeat_coef_mini_2sd_rms"], rel=1e-9)


def test_proportional_bias_detected():
    rng = np.random.default_rng(0)
    truth = rng.uniform(10, 60, 200)
    a = truth + rng.normal(0, 1, 200)
    b = 1.2 * truth + rng.normal(0, 1, 200)  # method b reads 20 % high
    ba = bland_altman(a, b)
    # d = a - b ≈ -0.2 t and mean ≈ 1.1 t, so the slope of d on the mean is about -0.2/1.1
    assert ba.prop_bias_slope == pytest.approx(-0.2 / 1.1, abs=0.01) and ba.prop_bias_p < 1e-10
    assert ba.prop_bias_slope_ci[0] < ba.prop_bias_slope < ba.prop_bias_slope_ci[1]
    unbiased = bland_altman(a, truth + rng.normal(0, 1, 200))
    assert unbiased.prop_bias_slope_ci[0] < 0 < unbiased.prop_bias_slope_ci[1]


def test_bland_altman_bad_input():
    with pytest.warns(MissingDataWarning, match="dropped 1"):
        assert bland_altman([1, 2, 3, np.nan, 5], [1.1, 2.3, 2.9, 4, 5.2]).n_dropped == 1
    with pytest.raises(InputError, match="missing"):
        bland_altman([1, 2, 3, np.nan], [1, 2, 3, 4], nan_policy="raise")
    with pytest.raises(InputError, match="constant"):
        bland_altman([1, 2, 3, 4], [0, 1, 2, 3])
    with pytest.raises(InputError, match="differ in length"):
        bland_altman([1, 2, 3, 4], [0, 1, 2])
