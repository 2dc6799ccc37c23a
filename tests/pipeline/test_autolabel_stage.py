"""The ``autolabel`` stage: an exam without a label map is labelled automatically, and says so."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from osteomri.pipeline.demo import demo_exam, write_demo_inputs
from osteomri.pipeline.exam import run_exam
from osteomri.pipeline.stages import STAGES


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory):
    inputs = write_demo_inputs(tmp_path_factory.mktemp("demo"), small=True)
    spec = dataclasses.replace(demo_exam(inputs), dwi=None, bvals=None)  # IVIM plays no part here
    with_labels = run_exam(spec)
    auto = dataclasses.replace(spec, labels=None, options={"autolabel": {"lowest_level": "L5"}})
    out = tmp_path_factory.mktemp("out")
    return with_labels, run_exam(auto, out_dir=out), out


def _pdff(table):
    sel = table[table["map"] == "pdff_percent"]
    return dict(zip(sel["level"], sel["mean"], strict=True))


@pytest.mark.slow
def test_automatic_labels_give_the_true_labels_pdff(demo_runs):
    """Issue #14: per-vertebra PDFF from automatic labels within 0.3 points of the value from the true labels."""
    truth, auto, _ = demo_runs
    assert auto.ok, auto.errors()
    ref, got = _pdff(truth.vertebrae), _pdff(auto.vertebrae)
    assert set(got) == set(ref) == {"L1", "L2", "L3", "L4", "L5"}
    for level in ref:
        assert abs(got[level] - ref[level]) <= 0.3, (level, got[level], ref[level])


@pytest.mark.slow
def test_report_says_the_labels_are_automatic(demo_runs):
    _, auto, out = demo_runs
    assert "automatic" in auto.qc["labels"] and "autolabel" in auto.figures
    stages = {r.stage: r.status for r in auto.stages}
    assert stages["autolabel"] == "done" and stages["measure"] == "done"
    html = next(out.rglob("report.html"))
    assert "automatic (osteomri label_vertebrae on the water image" in html.read_text()


def test_autolabel_applies_only_without_labels_and_when_asked():
    stage = next(s for s in STAGES if s.name == "autolabel")
    from osteomri.pipeline.spec import ExamSpec

    assert not stage.applies(ExamSpec("sub-01", t1w="t1.nii.gz"))  # library default: unchanged behaviour
    assert stage.applies(ExamSpec("sub-01", t1w="t1.nii.gz", options={"autolabel": {}}))
    assert not stage.applies(ExamSpec("sub-01", t1w="t1.nii.gz", labels="l.nii.gz", options={"autolabel": {}}))
    assert not stage.applies(ExamSpec("sub-01", dwi="dwi.nii.gz", options={"autolabel": {}}))
    np.testing.assert_equal(stage.modules, ("osteomri.vertebrae.autolabel",))


def test_ambiguous_count_fails_the_stage_and_asks_for_the_lowest_level(tmp_path):
    """The phantom's sacrum is a lumbar-like box (no sacral slope): the count is ambiguous, so the stage fails
    with one line asking for lowest_level, and no per-vertebra value is produced (never a silent guess)."""
    from osteomri.io import save_nifti
    from osteomri.phantom import make_spine_phantom
    from osteomri.pipeline.spec import ExamSpec

    ph = make_spine_phantom(shape=(8, 96, 128), voxel_size_mm=(4.0, 2.2, 2.25), seed=2)
    ff = save_nifti(ph.maps["pdff_percent"], tmp_path / "ff.nii.gz", sidecar={"Units": "percent"})
    result = run_exam(ExamSpec("sub-01", pdff=ff, options={"autolabel": {}}))
    status = {r.stage: (r.status, r.message) for r in result.stages}
    assert status["autolabel"][0] == "failed" and "lowest_level" in status["autolabel"][1]
    assert status["measure"][0] != "done" and (result.vertebrae is None or not len(result.vertebrae))
