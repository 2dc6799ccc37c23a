"""The synthetic clinical cohort follows the seed study's Table 1 (group sizes, means, SDs, WHO classes)."""

import numpy as np
import pandas as pd
import pytest

from osteomri.errors import InputError
from osteomri.phantom.cohort import (
    COHORT_VARIABLES,
    SEED_STUDY_TABLE1,
    cohort_level_table,
    synthetic_clinical_cohort,
)
from osteomri.stats import who_category


def test_matched_moments_reproduce_table1_exactly():
    c = synthetic_clinical_cohort(random_state=1, match_moments=True)
    assert len(c) == 120 and c["exam"].is_unique
    for group, spec in SEED_STUDY_TABLE1.items():
        g = c[c["who_group"] == group]
        assert len(g) == spec["n"]
        for var in COHORT_VARIABLES:
            assert g[var].mean() == pytest.approx(spec[var][0], rel=1e-12), (group, var)
            assert g[var].std(ddof=1) == pytest.approx(spec[var][1], rel=1e-12), (group, var)


def test_random_cohort_is_reproducible_and_close_to_targets():
    a = synthetic_clinical_cohort(random_state=7)
    b = synthetic_clinical_cohort(random_state=7)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(synthetic_clinical_cohort(random_state=8))
    big = synthetic_clinical_cohort((2000, 2000, 2000), random_state=3)
    for group, spec in SEED_STUDY_TABLE1.items():
        g = big[big["who_group"] == group]
        for var in COHORT_VARIABLES:
            mean, sd = spec[var]
            assert abs(g[var].mean() - mean) < 4 * sd / np.sqrt(len(g)), (group, var)
            assert g[var].std() == pytest.approx(sd, rel=0.08), (group, var)


def test_t_scores_agree_with_who_groups_and_markers_correlate():
    c = synthetic_clinical_cohort((300, 300, 300), random_state=2)
    assert (who_category(c["t_score"]).astype(str) == c["who_group"].astype(str)).all()
    assert set(c["sex"]) == {"F", "M"}
    # the designed within-group correlation of BMD and PDFF is negative
    for _, g in c.groupby("who_group", observed=True):
        assert np.corrcoef(g["bmd_mg_cm3"], g["pdff_percent"])[0, 1] < -0.2
    assert (c["bmd_mg_cm3"] > 0).all() and c["pdff_percent"].between(0, 100).all()


def test_reader_offsets_are_known():
    c = synthetic_clinical_cohort((2000, 2000, 2000), random_state=4)
    for marker, offset in c.attrs["reader_offsets"].items():
        diff = c[f"{marker}_reader2"] - c[f"{marker}_reader1"]
        sd = c.attrs["reader_sd"][marker]
        assert abs(diff.mean() - offset) < 4 * sd * np.sqrt(2) / np.sqrt(len(c))
        assert diff.std() == pytest.approx(sd * np.sqrt(2), rel=0.05)
    assert not any(col.endswith("reader1") for col in synthetic_clinical_cohort(random_state=0, readers=False))


def test_level_table_means_equal_patient_values():
    c = synthetic_clinical_cohort((5, 5, 5), random_state=0)
    long = cohort_level_table(c, random_state=0)
    assert {"exam", "level", "map", "roi", "n_voxels", "volume_mm3", "mean", "median", "sd"} <= set(long.columns)
    assert len(long) == 15 * 5 * 2
    # the mean over the default level set (L1–L5) is the patient value
    l15 = long[long["level"].isin(["L1", "L2", "L3", "L4", "L5"])].groupby(["exam", "map"])["mean"].mean().unstack()
    np.testing.assert_allclose(l15.loc[c["exam"], "pdff_percent"], c["pdff_percent"], rtol=1e-12)
    np.testing.assert_allclose(l15.loc[c["exam"], "r2star_hz"], c["r2star_hz"], rtol=1e-12)


def test_bad_arguments():
    with pytest.raises(InputError, match="three positive group sizes"):
        synthetic_clinical_cohort((10, 10))
    with pytest.raises(InputError, match="female_fraction"):
        synthetic_clinical_cohort(female_fraction=1.5)
    with pytest.raises(InputError, match=r"unknown column\(s\) \['ff'\]"):
        cohort_level_table(synthetic_clinical_cohort((3, 3, 3), random_state=0), maps=("ff",))
