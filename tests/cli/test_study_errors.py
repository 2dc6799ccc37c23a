"""``osteomri study`` names the cell at fault (issue #13, item 12): the exam and the offending text of a
non-numeric cell, and "no numeric values" for an all-empty marker (not a downstream ANOVA message)."""

import numpy as np
import pytest

from osteomri.cli.main import main
from osteomri.phantom.cohort import cohort_level_table, synthetic_clinical_cohort

COMMON = ["--tscore", "t_score", "--marker", "pdff_percent", "--marker", "r2star_hz", "--n-bootstrap", "20"]


@pytest.fixture(scope="module")
def cohort():
    return synthetic_clinical_cohort((8, 8, 8), random_state=4, readers=False)


def _run(capsys, path, out, *extra):
    rc = main(["study", str(path), *COMMON, *extra, "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    return rc, err


def test_text_in_a_numeric_column_names_exam_and_value(cohort, tmp_path, capsys):
    bad = cohort.astype({"pdff_percent": object})
    bad.loc[3, "pdff_percent"] = "55,2"
    bad.loc[9, "pdff_percent"] = "high"
    bad.to_csv(tmp_path / "c.csv", index=False)
    rc, err = _run(capsys, tmp_path / "c.csv", tmp_path / "o")
    assert rc != 0 and len(err) == 1
    line = err[0]
    assert "'pdff_percent'" in line and "c.csv" in line
    assert f"exam {cohort.loc[3, 'exam']} has '55,2'" in line and f"exam {cohort.loc[9, 'exam']} has 'high'" in line
    valid = f"{cohort.loc[0, 'pdff_percent']}"[:6]
    assert valid not in line  # the valid values are not what is wrong
    assert not (tmp_path / "o").exists()


def test_all_empty_marker_says_so(cohort, tmp_path, capsys):
    cohort.assign(r2star_hz=np.nan).to_csv(tmp_path / "c.csv", index=False)
    rc, err = _run(capsys, tmp_path / "c.csv", tmp_path / "o")
    assert rc != 0 and len(err) == 1
    assert "column 'r2star_hz'" in err[0] and "has no numeric values" in err[0]
    assert "ANOVA" not in err[0]


def test_text_in_the_per_vertebra_mean_names_exam_level_and_map(cohort, tmp_path, capsys):
    long = cohort_level_table(cohort, random_state=0).astype({"mean": object})
    long.loc[5, "mean"] = "12.3.4"
    long.to_csv(tmp_path / "v.tsv", sep="\t", index=False)
    cohort[["exam", "t_score"]].to_csv(tmp_path / "clin.csv", index=False)
    rc, err = _run(capsys, tmp_path / "v.tsv", tmp_path / "o", "--clinical", str(tmp_path / "clin.csv"))
    row = long.loc[5]
    assert rc != 0 and len(err) == 1
    assert f"exam {row['exam']} level {row['level']} map {row['map']} has '12.3.4'" in err[0]
    assert "v.tsv" in err[0]


def test_without_id_column_the_data_row_is_named(tmp_path, capsys):
    df = synthetic_clinical_cohort((8, 8, 8), random_state=1, readers=False).drop(columns=["exam"])
    df = df.astype({"t_score": object})
    df.loc[6, "t_score"] = "-2,7"
    df.to_csv(tmp_path / "c.csv", index=False)
    rc, err = _run(capsys, tmp_path / "c.csv", tmp_path / "o")
    assert rc != 0 and "column 't_score'" in err[0] and "row 7 has '-2,7'" in err[0]
