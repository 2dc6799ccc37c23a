"""Cohort pipeline on a LocalCluster of 2 worker processes: outputs against the phantom truth, one corrupted
input -> one error record, resume without work, changed inputs redone, a killed worker loses nothing."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from osteomri.errors import InputError
from osteomri.io.nifti import load_nifti, save_nifti
from osteomri.phantom import LUMBAR_LEVELS, make_spine_phantom
from osteomri.pipeline.cohort import RECORD_SUFFIX, TMP_DIR, run_cohort
from osteomri.pipeline.dataset import discover_exams
from osteomri.pipeline.synth_cohort import SMALL_GRID, group_sizes, write_synthetic_cohort

N_EXAMS = 12
CORRUPT = "sub-005"
CLINICAL = ["age", "sex", "bmi", "bmd_mg_cm3", "t_score", "who_group"]

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    """One LocalCluster (2 processes, 1 thread each) for the module; the kill test runs last."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """12 phantom exams with the true PDFF/R2* maps as vendor maps, T1w and labels (fast stages)."""
    root = tmp_path_factory.mktemp("cohort") / "ds"
    write_synthetic_cohort(root, N_EXAMS, seed=3, modalities=("vendor", "t1w"))
    return root


def _truth_phantom(dataset: Path, exam: str):
    """The exam's phantom rebuilt from its per-level truth (the anatomy is deterministic)."""
    truth = pd.read_csv(dataset / "derivatives" / "phantom-truth" / exam / "anat" / f"{exam}_truth.tsv", sep="\t")
    return make_spine_phantom(*SMALL_GRID, level_truth=truth.drop(columns="label")), truth.set_index("level")


def _corrupt(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _mtimes(out: Path) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.glob("sub-*/**/*") if p.is_file()}


def _check_exam_against_truth(out: Path, dataset: Path, exam: str) -> None:
    folder = out / exam
    ph, truth = _truth_phantom(dataset, exam)
    for key, suffix in (("pdff_percent", "pdff"), ("r2star_hz", "r2star")):
        img = load_nifti(folder / f"{exam}_{suffix}.nii.gz")
        np.testing.assert_allclose(img.affine, ph.affine)
        np.testing.assert_allclose(img.data, ph.maps[key].data, rtol=1e-6, atol=1e-4)
        for level in LUMBAR_LEVELS:
            assert np.median(img.data[ph.level_mask(level)]) == pytest.approx(truth.loc[level, key], rel=1e-5)
        sidecar = json.loads((folder / f"{exam}_{suffix}.json").read_text())
        assert sidecar["Units"] == {"pdff": "%", "r2star": "1/s"}[suffix]
        hashed = {i["name"] for i in sidecar["Provenance"]["inputs"]}
        assert f"{exam}_{suffix}.nii.gz" in hashed
    t1w = load_nifti(folder / f"{exam}_T1w.nii.gz").data
    for level in LUMBAR_LEVELS:  # noisy T1w: the marrow median is the true signal within 3 %
        assert np.median(t1w[ph.level_mask(level)]) == pytest.approx(truth.loc[level, "t1w_signal"], rel=0.03)
    stages = pd.read_csv(folder / f"{exam}_stages.tsv", sep="\t").set_index("stage")
    assert stages.loc["vendor_maps", "status"] == "done" and stages.loc["t1w", "status"] == "done"
    assert (folder / "report.html").stat().st_size > 0
    record = json.loads((folder / f"{exam}{RECORD_SUFFIX}").read_text())
    assert record["ok"] and set(record["key"]["inputs"]) == {"pdff", "r2star", "t1w", "labels"}


def test_group_sizes_follow_the_seed_study():
    assert group_sizes(120) == (30, 41, 49)
    for n in (1, 2, 5, 12, 37):
        assert sum(group_sizes(n)) == n


def test_synthetic_cohort_truth_is_the_l1_l5_mean(dataset):
    truth = pd.read_csv(dataset / "derivatives" / "phantom-truth" / "truth_patients.tsv", sep="\t")
    participants = pd.read_csv(dataset / "participants.tsv", sep="\t")
    assert len(truth) == len(participants) == N_EXAMS
    assert participants["who_group"].value_counts().to_dict() == dict(
        zip(["normal", "osteopenia", "osteoporosis"], group_sizes(N_EXAMS), strict=True))
    for exam in truth["exam"]:
        _, levels = _truth_phantom(dataset, exam)
        expected = levels.loc[["L1", "L2", "L3", "L4", "L5"], "pdff_percent"].mean()  # the default level set
        assert truth.set_index("exam").loc[exam, "pdff_percent"] == pytest.approx(expected)


@pytest.fixture(scope="module")
def corrupted_run(client, dataset, tmp_path_factory):
    """The 12-exam cohort with one exam's PDFF map truncated, run once."""
    tmp = tmp_path_factory.mktemp("corrupted")
    ds = tmp / "ds"
    shutil.copytree(dataset, ds)
    _corrupt(ds / CORRUPT / "anat" / f"{CORRUPT}_pdff.nii.gz")
    seen: list = []
    result = run_cohort(ds, tmp / "out", client=client, progress=lambda o, c: seen.append((o.exam_id, dict(c))))
    return ds, tmp / "out", result, seen


def test_cohort_against_truth_with_one_corrupted_exam(corrupted_run):
    ds, out, result, seen = corrupted_run

    # progress: one call per exam, counts add up
    assert sorted(e for e, _ in seen) == [f"sub-{i:03d}" for i in range(1, N_EXAMS + 1)]
    assert seen[-1][1]["remaining"] == 0 and seen[-1][1]["done"] + seen[-1][1]["failed"] == N_EXAMS

    # exactly one error record, for the corrupted exam, naming the stage that read the file; the others complete
    errors = pd.read_csv(out / "errors.tsv", sep="\t")
    assert len(errors) == 1 and errors.loc[0, "exam"] == CORRUPT
    assert errors.loc[0, "stage"] == "vendor_maps" and errors.loc[0, "message"]
    assert errors.loc[0, "message"].startswith(f"{CORRUPT}_pdff.nii.gz is truncated or corrupt")  # issue 13.2
    assert str(ds) not in errors.loc[0, "message"]  # no dataset paths in the records
    assert result.counts["done"] == N_EXAMS - 1 and result.counts["failed"] == 1 and result.counts["lost"] == 0

    # every complete exam against the phantom truth
    for exam in (f"sub-{i:03d}" for i in range(1, N_EXAMS + 1)):
        if exam != CORRUPT:
            _check_exam_against_truth(out, ds, exam)
    failed = json.loads((out / CORRUPT / f"{CORRUPT}_exam.json").read_text())
    assert failed["ok"] is False and failed["errors"]
    assert not (out / TMP_DIR).exists() and not list(out.glob("sub-*/.*"))

    # cohort tables: one row per exam with the clinical columns of participants.tsv
    patients = pd.read_csv(out / "cohort_patients.tsv", sep="\t").set_index("exam")
    participants = pd.read_csv(ds / "participants.tsv", sep="\t").set_index("participant_id")
    assert sorted(patients.index) == sorted(participants.index)
    pd.testing.assert_frame_equal(patients.loc[participants.index, CLINICAL], participants[CLINICAL],
                                  check_names=False)
    assert patients.loc[CORRUPT, "status"] == "failed" and (patients.drop(CORRUPT)["status"] == "done").all()
    vertebrae = pd.read_csv(out / "cohort_vertebrae.tsv", sep="\t")
    stages = pd.read_csv(out / "sub-001" / "sub-001_stages.tsv", sep="\t").set_index("stage")
    assert stages.loc["measure", "status"] == "done"
    truth = pd.read_csv(ds / "derivatives" / "phantom-truth" / "truth_patients.tsv", sep="\t").set_index("exam")
    ok = patients.index[patients["status"] == "done"]
    assert set(vertebrae["exam"]) == set(ok)
    assert (patients.loc[ok, "levels"] == "L1-L5").all()  # the one default level set, named (issue 13.13)
    np.testing.assert_allclose(patients.loc[ok, "pdff_percent"], truth.loc[ok, "pdff_percent"], atol=1.5)
    np.testing.assert_allclose(patients.loc[ok, "r2star_hz"], truth.loc[ok, "r2star_hz"], atol=6.0)

    page = (out / "cohort_report.html").read_text()
    assert "Cohort summary" in page and CORRUPT in page and "http://" not in page and "https://" not in page
    run = json.loads((out / "cohort_run.json").read_text())
    assert run["counts"]["total"] == N_EXAMS


@pytest.mark.browser
def test_cohort_page_renders_in_chromium(corrupted_run, render_html):
    _, out, result, _ = corrupted_run
    dom = render_html(out / "cohort_report.html")
    for words in ("Counts", "Failures", "QC flags", "Distributions", "Provenance", CORRUPT):
        assert words in dom
    assert dom.count("<img") == (1 if result.patients.attrs["measured"] else 0)


def test_second_run_does_no_work_and_changed_inputs_are_redone(corrupted_run, client):
    ds, out, _, _ = corrupted_run
    # a second run does no work: every exam skipped, no output file rewritten, the failure still reported
    before = _mtimes(out)
    again = run_cohort(ds, out, client=client)
    assert again.counts["skipped"] == N_EXAMS and again.counts["done"] == again.counts["failed"] == 0
    assert _mtimes(out) == before
    assert pd.read_csv(out / "errors.tsv", sep="\t")["exam"].tolist() == [CORRUPT]

    # a changed input is redone (the repaired file), and only that exam
    ph, _ = _truth_phantom(ds, CORRUPT)
    save_nifti(ph.maps["pdff_percent"], ds / CORRUPT / "anat" / f"{CORRUPT}_pdff.nii.gz")
    fixed = run_cohort(ds, out, client=client)
    assert [o.exam_id for o in fixed.outcomes if o.status == "done"] == [CORRUPT]
    assert fixed.counts["skipped"] == N_EXAMS - 1 and fixed.ok
    _check_exam_against_truth(out, ds, CORRUPT)
    assert pd.read_csv(out / "errors.tsv", sep="\t").empty
    untouched = {k: v for k, v in _mtimes(out).items() if not k.startswith(CORRUPT)}
    assert untouched == {k: v for k, v in before.items() if not k.startswith(CORRUPT)}


def test_manifest_with_missing_file(client, dataset, tmp_path):
    rows = []
    for i, exam in enumerate(("sub-001", "sub-002", "sub-003")):
        anat = Path(dataset.name) / exam / "anat"
        rows.append({"exam": f"sub-m{i}_ses-1", "pdff": str(anat / f"{exam}_pdff.nii.gz"),
                     "r2star": str(anat / f"{exam}_r2star.nii.gz"),
                     "t1w": "" if i else str(anat / f"{exam}_T1w.nii.gz"),
                     "labels": str(anat / f"{exam}_seg-vert_msk.nii.gz"), "age": 50 + i, "sex": "F", "t_score": -1.5})
    rows[2]["r2star"] = "missing_r2star.nii.gz"
    manifest = dataset.parent / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    specs = discover_exams(manifest)
    assert [s.exam_id for s in specs] == ["sub-m0_ses-1", "sub-m1_ses-1", "sub-m2_ses-1"]
    assert specs[1].t1w is None and specs[0].clinical == {"age": 50, "sex": "F", "t_score": -1.5}
    result = run_cohort(manifest, tmp_path / "out", client=client, report=False)
    errors = pd.read_csv(tmp_path / "out" / "errors.tsv", sep="\t")
    assert errors["exam"].tolist() == ["sub-m2_ses-1"] and "missing_r2star.nii.gz" in errors.loc[0, "message"]
    assert (tmp_path / "out" / "sub-m0" / "ses-1" / "sub-m0_ses-1_pdff.nii.gz").exists()
    patients = result.patients.set_index("exam")
    assert patients["age"].tolist() == [50, 51, 52] and patients["session"].tolist() == ["ses-1"] * 3


def test_discovery_of_sessions_and_structure_errors(tmp_path):
    ds = tmp_path / "ds"
    write_synthetic_cohort(ds, 2, seed=1, modalities=("vendor",))
    # move sub-002 into two sessions
    for ses in ("ses-a", "ses-b"):
        shutil.copytree(ds / "sub-002" / "anat", ds / "sub-002" / ses / "anat")
        for f in (ds / "sub-002" / ses / "anat").iterdir():
            f.rename(f.with_name(f.name.replace("sub-002_", f"sub-002_{ses}_")))
    shutil.rmtree(ds / "sub-002" / "anat")
    (ds / "sub-002" / "sub-002_sessions.tsv").write_text("session_id\tage\nses-a\t60\nses-b\tn/a\n")
    specs = {s.exam_id: s for s in discover_exams(ds)}
    assert sorted(specs) == ["sub-001", "sub-002_ses-a", "sub-002_ses-b"]
    assert specs["sub-002_ses-a"].clinical["age"] == 60 and specs["sub-002_ses-b"].clinical["age"] is None
    assert specs["sub-002_ses-b"].labels.name == "sub-002_ses-b_seg-vert_msk.nii.gz"
    assert specs["sub-001"].reference_values is not None
    shutil.copy(ds / "sub-001" / "anat" / "sub-001_pdff.nii.gz", ds / "sub-001" / "anat" / "sub-001_run-2_pdff.nii.gz")
    with pytest.raises(InputError, match="2 candidate pdff images"):
        discover_exams(ds)
    with pytest.raises(InputError, match="no exam found"):
        discover_exams(tmp_path / "ds" / "derivatives")
    bad = tmp_path / "bad.csv"
    bad.write_text("exam,t1w\nsub-1,a.nii.gz\nsub-1,b.nii.gz\n")
    with pytest.raises(InputError, match="duplicated exam"):
        discover_exams(bad)
    bad.write_text("exam,t1w\nsubject1,a.nii.gz\n")
    with pytest.raises(InputError, match="line 2: exam_id must look like"):
        discover_exams(bad)


def test_killed_worker_loses_no_exam(client, dataset, tmp_path):
    killed: dict = {}

    def kill_a_busy_worker(outcome, counts) -> None:
        if killed:
            return
        busy = [(addr, keys) for addr, keys in client.processing().items() if keys]
        if not busy:
            return
        addr, keys = busy[0]
        pid = client.run(os.getpid, workers=[addr])[addr]
        os.kill(pid, signal.SIGKILL)
        killed.update(addr=addr, pid=pid, keys=list(keys))

    out = tmp_path / "out"
    result = run_cohort(dataset, out, client=client, progress=kill_a_busy_worker, report=False)
    assert killed, "no worker was busy when the first exam finished"
    # an exam whose worker died after publishing it is found complete by its retry ("skipped"): nothing redone
    assert result.counts["ok"] == N_EXAMS and result.counts["lost"] == 0 and result.ok, result.outcomes
    assert result.counts["done"] + result.counts["skipped"] == N_EXAMS
    for key in killed["keys"]:  # the exams that were running on the killed worker completed elsewhere
        exam = str(key).split("-", 1)[1].rsplit("-", 1)[0]
        assert (out / exam / f"{exam}{RECORD_SUFFIX}").exists()
    for exam in (f"sub-{i:03d}" for i in range(1, N_EXAMS + 1)):
        assert json.loads((out / exam / f"{exam}{RECORD_SUFFIX}").read_text())["ok"]
    assert len(pd.read_csv(out / "cohort_patients.tsv", sep="\t")) == N_EXAMS
    assert not (out / TMP_DIR).exists()
    client.wait_for_workers(2, timeout=60)  # the nanny restarted it


def test_megre_exams_through_the_cohort_match_truth(client, tmp_path):
    """The default synthetic modality: water-fat fitting of the phantom MEGRE on the workers."""
    ds = tmp_path / "ds"
    write_synthetic_cohort(ds, 2, seed=7, modalities=("megre",))
    result = run_cohort(ds, tmp_path / "out", client=client, report=False)
    stages = {o.exam_id: pd.read_csv(tmp_path / "out" / o.exam_id / f"{o.exam_id}_stages.tsv", sep="\t")
              .set_index("stage") for o in result.outcomes}
    for exam, table in stages.items():
        assert table.loc["waterfat", "status"] == "done", table
        ph, truth = _truth_phantom(ds, exam)
        for key, suffix, tol in (("pdff_percent", "pdff", 2.0), ("r2star_hz", "r2star", 10.0)):
            fitted = load_nifti(tmp_path / "out" / exam / f"{exam}_{suffix}.nii.gz").data
            for level in LUMBAR_LEVELS:  # SNR 50: the marrow median is within a few units of the truth
                assert np.median(fitted[ph.level_mask(level)]) == pytest.approx(truth.loc[level, key], abs=tol)
