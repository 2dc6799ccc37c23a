"""``osteomri study``: tables, figures and report from a cohort table, a per-vertebra table or --synthetic."""

import numpy as np
import pandas as pd
import pytest

from osteomri.cli.main import main
from osteomri.phantom.cohort import SEED_STUDY_TABLE1, cohort_level_table, synthetic_clinical_cohort

OUTPUTS = ("table1.csv", "table2.csv", "correlations.csv", "agreement.csv", "report.html")


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    rc = main(["study", "--synthetic", "--seed", "5", "--n-bootstrap", "50", "--out", str(out)])
    assert rc == 0
    return out


def test_synthetic_study_writes_every_table(synthetic_run):
    for name in (*OUTPUTS, "cohort.csv", "auc_comparisons.csv"):
        assert (synthetic_run / name).stat().st_size > 0, name
    t1 = pd.read_csv(synthetic_run / "table1.csv")
    assert list(t1.columns[1:4]) == ["normal (n=30)", "osteopenia (n=41)", "osteoporosis (n=49)"]
    assert t1["variable"].tolist() == ["sex (F/M)", "age", "bmi", "bmd_mg_cm3", "pdff_percent", "r2star_hz"]
    t2 = pd.read_csv(synthetic_run / "table2.csv")
    assert len(t2) == 6 and t2["marker"].str.contains(r"\+").sum() == 2
    assert t2["auc"].between(0.5, 1).all()
    ag = pd.read_csv(synthetic_run / "agreement.csv")
    cohort = pd.read_csv(synthetic_run / "cohort.csv")
    # the bias is reader1 - reader2 = -offset (PDFF +1.0 %, R2* +3.0 Hz by construction), within its CI
    for _, row in ag.iterrows():
        diff = cohort[row["measure_a"]] - cohort[row["measure_b"]]
        assert row["bias"] == pytest.approx(diff.mean(), rel=1e-9)
        assert row["bias_ci_low"] < {"pdff": -1.0, "r2st": -3.0}[row["measure_a"][:4]] < row["bias_ci_high"]
    corr = pd.read_csv(synthetic_run / "correlations.csv")
    pdff = corr[(corr["x"] == "pdff_percent") & (corr["method"] == "pearson")].iloc[0]
    assert pdff["y"] == "bmd_mg_cm3" and pdff["r"] < 0 and pdff["p_value"] < 0.001


@pytest.mark.browser
def test_report_renders_in_chromium(synthetic_run, render_html):
    text = (synthetic_run / "report.html").read_text()
    assert "http://" not in text and "https://" not in text
    dom = render_html(synthetic_run / "report.html")
    # box plots, 2 ROC figures (two outcomes), 2 scatters, 2 Bland-Altman plots
    assert dom.count("<img") == 7
    for words in ("Table 1", "Table 2", "Correlations", "Inter-reader agreement", "Provenance", "DeLong"):
        assert words in dom


def test_cohort_csv_with_published_moments(tmp_path):
    cohort = synthetic_clinical_cohort(random_state=2, match_moments=True, readers=False)
    cohort.drop(columns=["who_group"]).to_csv(tmp_path / "cohort.csv", index=False)
    rc = main(["study", str(tmp_path / "cohort.csv"), "--tscore", "t_score", "--marker", "pdff_percent",
               "--marker", "r2star_hz", "--bmd", "bmd_mg_cm3", "--n-bootstrap", "20", "--out", str(tmp_path / "o")])
    assert rc == 0
    t1 = pd.read_csv(tmp_path / "o" / "table1.csv").set_index("variable")
    for group, spec in SEED_STUDY_TABLE1.items():
        col = f"{group} (n={spec['n']})"
        for var in ("age", "bmi", "bmd_mg_cm3", "pdff_percent", "r2star_hz"):
            assert t1.loc[var, col] == f"{spec[var][0]:.2f} ± {spec[var][1]:.2f}"


def test_per_vertebra_long_table(tmp_path):
    cohort = synthetic_clinical_cohort((8, 8, 8), random_state=3, readers=False)
    long = cohort_level_table(cohort, random_state=0)
    long.to_csv(tmp_path / "cohort_vertebrae.tsv", sep="\t", index=False)
    cohort[["exam", "t_score", "bmd_mg_cm3", "age", "sex"]].to_csv(tmp_path / "clinical.csv", index=False)
    cohort.to_csv(tmp_path / "wide.csv", index=False)
    common = ["--tscore", "t_score", "--marker", "pdff_percent", "--marker", "r2star_hz", "--bmd", "bmd_mg_cm3",
              "--n-bootstrap", "20"]
    assert main(["study", str(tmp_path / "cohort_vertebrae.tsv"), "--clinical", str(tmp_path / "clinical.csv"),
                 *common, "--out", str(tmp_path / "long")]) == 0
    assert main(["study", str(tmp_path / "wide.csv"), *common, "--out", str(tmp_path / "wide")]) == 0
    # the mean over the default levels (L1-L5) of the per-vertebra table is the patient value: identical tables
    for name in ("table2.csv", "correlations.csv"):
        a, b = pd.read_csv(tmp_path / "long" / name), pd.read_csv(tmp_path / "wide" / name)
        np.testing.assert_allclose(a.select_dtypes("number"), b.select_dtypes("number"), rtol=1e-9)
    assert main(["study", str(tmp_path / "cohort_vertebrae.tsv"), "--clinical", str(tmp_path / "clinical.csv"),
                 "--levels", "L3", *common, "--out", str(tmp_path / "l3")]) == 0
    l3 = pd.read_csv(tmp_path / "l3" / "correlations.csv")
    assert not np.allclose(l3["r"], pd.read_csv(tmp_path / "wide" / "correlations.csv")["r"])


def _run_err(capsys, args):
    rc = main(["study", *args])
    return rc, capsys.readouterr().err


def test_errors(tmp_path, capsys):
    cohort = synthetic_clinical_cohort((6, 6, 6), random_state=1)
    path = tmp_path / "c.csv"
    cohort.to_csv(path, index=False)
    base = [str(path), "--tscore", "t_score", "--out", str(tmp_path / "o"), "--n-bootstrap", "20"]
    rc, err = _run_err(capsys, [*base, "--marker", "ff_percent"])
    assert rc == 2 and "unknown column(s) ['ff_percent']" in err
    rc, err = _run_err(capsys, [str(path), "--marker", "pdff_percent", "--out", str(tmp_path / "o")])
    assert rc == 2 and "--tscore" in err
    rc, err = _run_err(capsys, [*base, "--marker", "pdff_percent", "--reader-columns", "pdff_percent_reader1"])
    assert rc == 2 and "A,B" in err
    cohort.assign(pdff_percent=50.0).to_csv(tmp_path / "const.csv", index=False)
    rc, err = _run_err(capsys, [str(tmp_path / "const.csv"), *base[1:], "--marker", "pdff_percent"])
    assert rc == 2 and "constant" in err
    cohort.assign(t_score=0.5).to_csv(tmp_path / "one.csv", index=False)
    rc, err = _run_err(capsys, [str(tmp_path / "one.csv"), *base[1:], "--marker", "pdff_percent"])
    assert rc == 2 and "at least 2 groups" in err
    gap = cohort.copy()
    gap.loc[[0, 7], "pdff_percent"] = np.nan
    gap.to_csv(tmp_path / "gap.csv", index=False)
    rc, err = _run_err(capsys, [str(tmp_path / "gap.csv"), *base[1:], "--marker", "pdff_percent",
                                "--nan-policy", "raise"])
    assert rc == 2 and "missing" in err
    rc, err = _run_err(capsys, [str(tmp_path / "gap.csv"), *base[1:], "--marker", "pdff_percent"])
    assert rc == 0 and "dropped 2" in err
    assert pd.read_csv(tmp_path / "o" / "table1.csv").set_index("variable").loc["pdff_percent", "n_missing"] == 2
    rc, err = _run_err(capsys, ["--synthetic", str(path), "--out", str(tmp_path / "o")])
    assert rc == 2 and "not both" in err
    rc, err = _run_err(capsys, [str(tmp_path / "nothere.csv"), "--tscore", "t", "--out", str(tmp_path / "o")])
    assert rc == 2 and "not found" in err


def test_scatter_line_is_the_regression_of_the_plotted_y_on_x():
    from osteomri.report.figures_study import scatter_figure
    from osteomri.stats import correlation

    df = synthetic_clinical_cohort((10, 10, 10), random_state=0)
    fig = scatter_figure(df, "bmd_mg_cm3", "pdff_percent", correlation(df["pdff_percent"], df["bmd_mg_cm3"]),
                         group="who_group")
    line = fig.axes[0].lines[0]
    slope, intercept = np.polyfit(df["bmd_mg_cm3"], df["pdff_percent"], 1)
    np.testing.assert_allclose(line.get_ydata(), intercept + slope * line.get_xdata(), rtol=1e-9)
    assert slope < 0  # more marrow fat with lower BMD
