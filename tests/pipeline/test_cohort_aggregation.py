"""A patient whose per-vertebra table cannot be aggregated is recorded in errors.tsv, never dropped silently
(issue 12)."""

from __future__ import annotations

import pandas as pd

from osteomri.io.provenance import write_json_atomic, write_table_atomic
from osteomri.pipeline.cohort import ExamOutcome, finish_cohort
from osteomri.pipeline.spec import ExamSpec


def _exam(out, exam_id, table):
    folder = out / exam_id
    write_json_atomic(folder / f"{exam_id}_exam.json", {"exam_id": exam_id, "ok": True, "errors": [], "qc": {}})
    write_table_atomic(table, folder / f"{exam_id}_vertebrae.tsv")


def test_a_malformed_vertebrae_table_is_an_error_not_a_missing_marker(tmp_path):
    good = pd.DataFrame({"exam": "sub-01", "level": ["L1", "L2", "L3", "L4"], "map": "pdff_percent",
                         "roi": "paper", "n_voxels": 50, "mean": [40.0, 42.0, 44.0, 46.0]})
    _exam(tmp_path, "sub-01", good)
    _exam(tmp_path, "sub-02", good.drop(columns="mean"))  # a table without its statistic
    specs = [ExamSpec("sub-01", clinical={"t_score": -1.0}), ExamSpec("sub-02", clinical={"t_score": -2.7})]
    outcomes = [ExamOutcome("sub-01", "done"), ExamOutcome("sub-02", "done")]
    result = finish_cohort(specs, outcomes, tmp_path, report=False)
    patients = result.patients.set_index("exam")
    assert patients.loc["sub-01", "pdff_percent"] == 43.0 and patients.loc["sub-01", "status"] == "done"
    assert patients.loc["sub-02", "status"] == "failed" and patients.loc["sub-02", "t_score"] == -2.7
    errors = pd.read_csv(tmp_path / "errors.tsv", sep="\t")
    assert errors["exam"].tolist() == ["sub-02"]
    assert "sub-02_vertebrae.tsv" in errors.loc[0, "message"] and errors.loc[0, "stage"] == "cohort_aggregation"
    assert set(result.vertebrae["exam"]) == {"sub-01"}
