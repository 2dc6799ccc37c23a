"""Per-patient aggregation of the per-vertebra long table (the input of study statistics)."""

import numpy as np
import pandas as pd
import pytest

from osteomri.phantom.cohort import cohort_level_table, synthetic_clinical_cohort


def test_aggregate_levels_choices_and_errors():
    from osteomri.errors import InputError
    from osteomri.vertebrae import aggregate_levels

    cohort = synthetic_clinical_cohort((3, 3, 3), random_state=0)
    long = cohort_level_table(cohort, random_state=1)
    l3 = aggregate_levels(long, "L3")
    expected = long[long["level"] == "L3"].pivot(index="exam", columns="map", values="mean")
    np.testing.assert_allclose(l3.set_index("exam")["pdff_percent"], expected["pdff_percent"], rtol=1e-12)
    assert (aggregate_levels(long, "L1-L5")["n_levels"] == 5).all()
    with pytest.raises(InputError, match="unknown level choice"):
        aggregate_levels(long, "T12-L2")
    two_rois = pd.concat([long, long.assign(roi="paper")])
    with pytest.raises(InputError, match="several ROI kinds"):
        aggregate_levels(two_rois, "L1-L4")
    assert len(aggregate_levels(two_rois, "L1-L4", roi="paper")) == 9
    with pytest.raises(InputError, match=r"unknown column\(s\) \['mean'\]"):
        aggregate_levels(long.drop(columns="mean"))
