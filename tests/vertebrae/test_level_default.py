"""One default level set (issue 13, item 13): the exam screen, the cohort table and the study all average over
L1–L5 (the seed study's levels, whose cut-offs the screen uses), say so, and can be told otherwise."""

from __future__ import annotations

import numpy as np
import pandas as pd

from osteomri.vertebrae.measure import DEFAULT_LEVEL_SET, LEVEL_SETS, aggregate_levels


def _long() -> pd.DataFrame:
    """Two exams whose L5 differs from L1–L4 by +10 (so L1–L4 and L1–L5 means differ by 2)."""
    rows = []
    for exam, base in (("sub-01", 40.0), ("sub-02", 60.0)):
        for level in ("L1", "L2", "L3", "L4", "L5"):
            rows.append({"exam": exam, "level": level, "map": "pdff_percent", "roi": "paper",
                         "mean": base + (10.0 if level == "L5" else 0.0)})
    return pd.DataFrame(rows)


def test_the_default_is_l1_to_l5():
    assert DEFAULT_LEVEL_SET == "L1-L5" and LEVEL_SETS[DEFAULT_LEVEL_SET] == ("L1", "L2", "L3", "L4", "L5")
    agg = aggregate_levels(_long()).set_index("exam")
    np.testing.assert_allclose(agg["pdff_percent"], [42.0, 62.0])
    assert (agg["n_levels"] == 5).all()
    np.testing.assert_allclose(aggregate_levels(_long(), "L1-L4").set_index("exam")["pdff_percent"], [40.0, 60.0])


def test_study_loader_uses_the_same_default(tmp_path):
    from osteomri.pipeline.study import load_cohort

    _long().to_csv(tmp_path / "cohort_vertebrae.tsv", sep="\t", index=False)
    df = load_cohort(tmp_path / "cohort_vertebrae.tsv").set_index("exam")
    np.testing.assert_allclose(df["pdff_percent"], [42.0, 62.0])
    np.testing.assert_allclose(load_cohort(tmp_path / "cohort_vertebrae.tsv", levels="L1-L4")
                               .set_index("exam")["pdff_percent"], [40.0, 60.0])


def test_cohort_patient_row_averages_and_names_the_default_levels():
    from osteomri.pipeline.cohort import ExamOutcome, _patient_row
    from osteomri.pipeline.spec import ExamSpec

    vert = _long()[lambda d: d["exam"] == "sub-01"]
    spec = ExamSpec("sub-01")
    outcome = ExamOutcome(exam_id="sub-01", status="done")
    row, measured = _patient_row(spec, outcome, {"qc": {}}, vert, {})
    assert row["levels"] == "L1-L5" and row["pdff_percent"] == 42.0 and row["n_levels"] == 5
    row4, _ = _patient_row(spec, outcome, {"qc": {}}, vert, {}, levels="L1-L4")
    assert row4["levels"] == "L1-L4" and row4["pdff_percent"] == 40.0
