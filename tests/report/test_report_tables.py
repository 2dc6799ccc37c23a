"""Report tables (issue #13, item 11): human headers with units from one place, 3 significant figures in one
notation, a compact screening summary, and no table wider than a 1280 px browser window."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from osteomri.pipeline.spec import ExamResult, StageRecord
from osteomri.report.cohort import cohort_report
from osteomri.report.exam import exam_report, level_table, screening_summary
from osteomri.report.format import label, mean_sd, sig
from osteomri.stats.screening import screen_markers

MAPS = {"pdff_percent": (52.4, 1.13), "r2star_hz": (123.7, 25.3), "d_mm2_s": (0.0003511, 6.2e-05),
        "dstar_mm2_s": (0.03342, 0.01613), "f": (0.1813, 0.029), "t1w_signal": (563.9, 15.2)}


def _raw(cell: str) -> bool:
    """A number printed with more than 4 significant figures (0.001569986...) or in e-notation (6.2e-05)."""
    if re.search(r"\de[-+]?\d", cell):
        return True
    return any(len(tok.replace(".", "").lstrip("0")) > 4 for tok in re.findall(r"\d+\.\d+", cell))


def _vertebrae() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [{"exam": "sub-01", "level": lv, "map": m, "mean": mu * (1 + 0.05 * rng.standard_normal()), "sd": sd}
            for lv in ("L1", "L2", "L3", "L4", "L5") for m, (mu, sd) in MAPS.items()]
    return pd.DataFrame(rows)


def _exam_result() -> ExamResult:
    screen = screen_markers({"pdff_percent": 47.93, "r2star_hz": 131.0})
    screen["levels"] = "L1,L2,L3,L4,L5"
    screen["field_strength_t"] = 3.0
    screen["applicability"] = "protocol matches (3 T)"
    qc = {"waterfat_n_fitted_voxels": 302130, "waterfat_noise_variance_relative": 0.001569986343383789,
          "waterfat_swap_suspected": False, "waterfat_precession_clockwise": True, "screening_withheld": 0}
    stages = [StageRecord("waterfat", "done", "6 echoes at 3 T", 39.1234567),
              StageRecord("screening", "done", "pdff_percent negative; r2star_hz positive", 0.00912)]
    return ExamResult("sub-01", vertebrae=_vertebrae(), scores={"osteoporosis_screen": screen}, qc=qc,
                      stages=stages, clinical={"age": 61.25, "sex": "F"})


def _cells(html: str) -> tuple[list[str], list[str]]:
    headers = [re.sub(r"<[^>]+>", "", h) for h in re.findall(r"<th[^>]*>(.*?)</th>", html, re.S)]
    cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", html, re.S)]
    return headers, cells


def test_labels_and_numbers_come_from_one_formatter():
    assert label("pdff_percent") == "PDFF (%)"
    assert label("r2star_hz") == "R2* (s⁻¹)"
    assert label("d_mm2_s", -3) == "D (10⁻³ mm²/s)"
    assert label("posttest_probability") == "Post-test probability (%)"
    assert sig(0.001569986343383789) == "0.00157" and sig(999.6) == "1000" and sig(52.456) == "52.5"
    assert sig(302130) == "302130"  # counts stay exact
    assert mean_sd(0.3511, 0.062) == "0.351 ± 0.062" and mean_sd(611.2, 15.3) == "611 ± 15"


def test_level_table_has_human_headers_and_one_notation():
    table = level_table(_vertebrae())
    assert list(table.columns) == ["Level", "PDFF (%)", "R2* (s⁻¹)", "D (10⁻³ mm²/s)", "D* (mm²/s)", "f",
                                   "T1w signal (a.u.)"]
    d = table["D (10⁻³ mm²/s)"]
    assert all(re.fullmatch(r"0\.\d{3} ± 0\.\d{3}", v) for v in d), d.tolist()
    for column in table.columns[1:]:
        for value in table[column]:
            mean, sd = value.split(" ± ")
            assert len(mean.replace(".", "").replace("−", "").lstrip("0")) == 3, value  # 3 significant figures
            assert len(mean.split(".")[-1]) == len(sd.split(".")[-1]) or "." not in mean, value


def test_screening_summary_is_compact_with_the_source_as_a_footnote():
    screen = _exam_result().scores["osteoporosis_screen"]
    table, notes = screening_summary(screen)
    assert list(table.columns) == ["Marker", "Value", "Cut-off", "Result", "LR", "Post-test probability (%)"]
    assert table["Marker"].tolist() == ["PDFF (%)", "R2* (s⁻¹)"]
    assert table["Result"].tolist() == ["negative", "positive"]
    # the LR and post-test probability printed are the screening's own, to 3 significant figures
    np.testing.assert_allclose(table["LR"].astype(float), screen["likelihood_ratio"], rtol=5e-3)
    np.testing.assert_allclose(table["Post-test probability (%)"].astype(float),
                               100 * screen["posttest_probability"], rtol=5e-3)
    assert any(n.startswith("Source: Lumbar FF and R2*") for n in notes)


def test_exam_report_tables_have_no_code_names_or_raw_floats(tmp_path):
    html = exam_report(_exam_result()).render()
    headers, cells = _cells(html)
    assert not [h for h in headers if re.search(r"[a-z0-9]_[a-z]", h)], headers
    assert not [c for c in cells if _raw(c)], [c for c in cells if _raw(c)]
    assert "0.00157" in cells and "302130" in cells
    assert max(len(t) for t in re.findall(r"<tr>.*?</tr>", html.split("<tbody>")[1], re.S)) < 2000


def _cohort_result() -> SimpleNamespace:
    patients = pd.DataFrame({
        "exam": [f"sub-{i:02d}" for i in range(6)], "status": ["done"] * 5 + ["failed"],
        "n_errors": [0, 0, 0, 0, 0, 1], "pdff_percent": [40.0, 45.5, 51.2, 60.1, 38.2, np.nan],
        "d_mm2_s": [3.1e-4, 3.3e-4, 4.0e-4, 2.9e-4, 3.6e-4, np.nan],
        "qc_waterfat_n_fitted_voxels": [301000, 299000, 305000, 298000, 300500, np.nan],
        "qc_waterfat_swap_suspected": [False, True, False, False, False, np.nan],
        "qc_waterfat_precession_clockwise": [True] * 5 + [np.nan],
        "qc_screening_withheld": [0, 0, 1, np.nan, 0, np.nan],
        "osteoporosis_screen_pdff_percent_positive": ["False", "False", "True", "True", "False", np.nan],
    })
    patients.attrs["measured"] = ["pdff_percent", "d_mm2_s"]
    errors = pd.DataFrame({"exam": ["sub-05"], "stage": ["waterfat"], "message": ["t.nii.gz is truncated"]})
    outcomes = [SimpleNamespace(status="done", seconds=12.3456) for _ in range(6)]
    counts = {"total": 6, "ok": 5, "done": 5, "failed": 1, "with_errors": 1, "skipped": 0, "lost": 0}
    return SimpleNamespace(patients=patients, errors=errors, outcomes=outcomes, counts=counts, seconds=80.123456)


def test_cohort_report_tables_have_no_code_names_or_raw_floats():
    html = cohort_report(_cohort_result()).render()
    headers, cells = _cells(html)
    assert not [c for c in cells if _raw(c)], [c for c in cells if _raw(c)]
    assert "D (10⁻³ mm²/s)" in cells and "PDFF (%)" in cells


# ---------------------------------------------------------------------------------------------------------
# in the browser: no table wider than the window at 1280 px
# ---------------------------------------------------------------------------------------------------------
_MEASURE = """<script>
const t = [...document.querySelectorAll("table")].map(e => ({right: Math.ceil(e.getBoundingClientRect().right),
  scroll: e.scrollWidth, client: e.clientWidth, caption: (e.caption || {}).textContent || ""}));
document.body.setAttribute("data-widths", JSON.stringify({page: document.documentElement.scrollWidth,
  window: window.innerWidth, tables: t}));
</script></body>"""


def table_widths(path: Path, width: int = 1280) -> dict:
    """Widths (CSS px) of the page and of every table, rendered by headless Chromium at ``width`` px."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if exe is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("chromium not installed (scripts/setup.sh installs it)")
        pytest.skip("chromium not installed")
    probe = path.with_name(path.stem + "_probe.html")
    probe.write_text(path.read_text().replace("</body>", _MEASURE))
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
           f"--window-size={width},2000", "--virtual-time-budget=5000", "--dump-dom", probe.resolve().as_uri()]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    match = re.search(r'data-widths="([^"]*)"', out.stdout)
    assert match, "the measuring script did not run"
    return json.loads(match[1].replace("&quot;", '"').replace("&amp;", "&"))


def _assert_fits(widths: dict, width: int = 1280) -> None:
    assert widths["window"] == width
    assert widths["tables"], "no table measured"
    for t in widths["tables"]:
        assert t["right"] <= width and t["scroll"] <= t["client"] + 1, t
    assert widths["page"] <= width, widths["page"]


@pytest.mark.browser
def test_exam_and_cohort_tables_fit_1280_px(tmp_path):
    _assert_fits(table_widths(exam_report(_exam_result()).write(tmp_path / "exam.html")))
    _assert_fits(table_widths(cohort_report(_cohort_result()).write(tmp_path / "cohort.html")))


@pytest.mark.browser
def test_study_tables_fit_1280_px(tmp_path):
    from osteomri.phantom.cohort import synthetic_clinical_cohort
    from osteomri.pipeline.study import run_study
    from osteomri.report.study import write_study

    cohort = synthetic_clinical_cohort((10, 10, 10), random_state=1)
    result = run_study(cohort, tscore="t_score", markers=["pdff_percent", "r2star_hz"], bmd="bmd_mg_cm3",
                       reader_pairs=[("pdff_percent_reader1", "pdff_percent_reader2")], n_bootstrap=20)
    report = write_study(result, tmp_path)["report"]
    headers, cells = _cells(report.read_text())
    assert "PDFF (%)" in cells and "ICC(2,1) (95% CI)" in headers
    assert not [h for h in headers if re.search(r"[a-z0-9]_[a-z]", h)], headers
    assert not [c for c in cells if _raw(c)], [c for c in cells if _raw(c)]
    _assert_fits(table_widths(report))
