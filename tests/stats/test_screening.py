import numpy as np
import pytest

from osteomri.errors import InputError
from osteomri.stats.screening import PUBLISHED_CUTOFFS, posttest_probability, screen_markers


def test_published_counts_reproduce_the_seed_papers_percentages():
    """Seed study: FF Se 83.70 %, Sp 83.10 %; R2* Se 79.60 %, Sp 81.70 % (printed to 0.1 %)."""
    ff, r2 = PUBLISHED_CUTOFFS["pdff_percent"], PUBLISHED_CUTOFFS["r2star_hz"]
    assert round(ff.sensitivity * 100, 1) == 83.7 and round(ff.specificity * 100, 1) == 83.1
    assert round(r2.sensitivity * 100, 1) == 79.6 and round(r2.specificity * 100, 1) == 81.7
    assert (ff.cutoff, r2.cutoff) == (56.09, 138.31)


def test_posttest_probability_is_bayes_in_odds_form():
    # a test with LR 1 changes nothing; LR+ 4 at 20 % prevalence -> odds 0.25*4 = 1 -> 50 %
    assert posttest_probability(0.3, 1.0) == pytest.approx(0.3)
    assert posttest_probability(0.2, 4.0) == pytest.approx(0.5)
    with pytest.raises(InputError, match="strictly between 0 and 1"):
        posttest_probability(1.0, 2.0)


def test_screen_markers_direction_and_lrs():
    df = screen_markers({"pdff_percent": 60.0, "r2star_hz": 150.0}, pretest_probability=0.4).set_index("marker")
    ff, r2 = PUBLISHED_CUTOFFS["pdff_percent"], PUBLISHED_CUTOFFS["r2star_hz"]
    assert bool(df.loc["pdff_percent", "positive"]) and not bool(df.loc["r2star_hz", "positive"])
    assert df.loc["pdff_percent", "likelihood_ratio"] == pytest.approx(ff.sensitivity / (1 - ff.specificity))
    assert df.loc["r2star_hz", "likelihood_ratio"] == pytest.approx((1 - r2.sensitivity) / r2.specificity)
    assert df.loc["pdff_percent", "posttest_probability"] > 0.4 > df.loc["r2star_hz", "posttest_probability"]
    lo, hi = df.loc["pdff_percent", ["sensitivity_ci_low", "sensitivity_ci_high"]]
    assert lo < ff.sensitivity < hi
    # exactly at the cut-off counts as positive, as the rule says
    assert bool(screen_markers({"pdff_percent": 56.09})["positive"].iloc[0])


def test_screen_markers_bad_input():
    with pytest.raises(InputError, match="no published cut-off for 'vbq'"):
        screen_markers({"vbq": 3.2})
    with pytest.raises(InputError, match="not finite"):
        screen_markers({"pdff_percent": np.nan})
