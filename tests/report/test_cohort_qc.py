"""Cohort QC table (issue #13, item 10): only real flags count as "flagged" — a metric such as the number of
fitted voxels is never a flag for being non-zero; booleans that are conventions are not flags either."""

import numpy as np
import pandas as pd

from osteomri.report.cohort import qc_table
from osteomri.report.qc import cohort_qc_tables, flag_raised, is_flag


def _patients(tmp_path):
    """Six exams as cohort_patients.tsv holds them (written and read back: booleans become text/objects)."""
    df = pd.DataFrame({
        "exam": [f"sub-{i:02d}" for i in range(6)], "n_errors": [0, 0, 0, 0, 0, 1],
        "qc_waterfat_n_fitted_voxels": [301000, 299000, 305000, 298000, 300500, np.nan],
        "qc_waterfat_median_relative_residual": [0.03, 0.031, 0.029, 0.08, 0.03, np.nan],
        "qc_waterfat_swap_suspected": [False, True, False, False, False, None],
        "qc_waterfat_precession_clockwise": [True, True, True, True, True, None],
        "qc_waterfat_magnitude_only": [False] * 5 + [None],
        "qc_screening_withheld": [0, 0, 1, np.nan, 0, np.nan],
    })
    df.to_csv(tmp_path / "cohort_patients.tsv", sep="\t", index=False)
    return pd.read_csv(tmp_path / "cohort_patients.tsv", sep="\t")


def test_only_flags_are_counted(tmp_path):
    flags = qc_table(_patients(tmp_path)).set_index("QC flag")
    assert flags.loc["Water–fat: water–fat swap suspected"].tolist() == [1, 5]
    assert flags.loc["Screening: withheld (implausible marrow values)"].tolist() == [1, 4]
    assert flags.loc["Any stage failed"].tolist() == [1, 6]
    assert len(flags) == 3  # no metric, no convention among the flags
    _, metrics = cohort_qc_tables(_patients(tmp_path))
    metrics = metrics.set_index("QC metric")["Median (range) or count"]
    assert metrics["Water–fat: fitted voxels"] == "300500 (298000–305000)"
    assert metrics["Water–fat: precession convention clockwise"] == "5 of 5 yes"


def test_flag_rules():
    assert is_flag("qc_waterfat_swap_suspected") and is_flag("screening_withheld")
    assert not is_flag("qc_waterfat_n_fitted_voxels") and not is_flag("waterfat_precession_clockwise")
    assert [flag_raised(v) for v in (True, "True", 1, 0, "false", np.nan, None, "ROI outside marrow")] == \
        [True, True, True, False, False, None, None, True]
