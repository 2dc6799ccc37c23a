"""``osteomri measure`` end to end on phantom files: tables, summary, VBQ, readers, seeds, QC, errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from osteomri.cli.main import main
from osteomri.io.image import Image
from osteomri.io.nifti import save_nifti
from osteomri.phantom import make_spine_phantom
from osteomri.vertebrae import phantom_labels, rois_for
from osteomri.vertebrae.labels import LEVEL_CODES

LUMBAR = ["L1", "L2", "L3", "L4", "L5"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("measure_inputs")
    ph = make_spine_phantom(shape=(12, 96, 128), voxel_size_mm=(4.0, 2.0, 2.25), seed=11)
    paths = {
        "pdff": save_nifti(ph.maps["pdff_percent"], folder / "sub-01_pdff.nii.gz"),
        "r2star": save_nifti(ph.maps["r2star_hz"], folder / "sub-01_r2star.nii.gz"),
        "t1w": save_nifti(ph.maps["t1w_signal"].with_data(ph.maps["t1w_signal"].data,
                                                          MagneticFieldStrength=3.0), folder / "sub-01_T1w.nii.gz"),
        "labels": save_nifti(phantom_labels(ph, "spineps"), folder / "sub-01_seg-vert_msk.nii.gz",
                             dtype=np.int16),
        "tss": save_nifti(phantom_labels(ph, "totalspineseg"), folder / "sub-01_tss.nii.gz", dtype=np.int16),
    }
    return ph, paths


def test_measure_paper_with_vbq_and_qc(files, tmp_path, capsys):
    ph, p = files
    rc = main(["measure", "--map", f"pdff={p['pdff']}", "--map", f"r2star={p['r2star']}", "--labels",
               str(p["labels"]), "--preset", "spineps", "--roi", "paper", "-o", str(tmp_path), "--exam-id", "sub-01",
               "--t1w", str(p["t1w"])])
    out = capsys.readouterr()
    assert rc == 0, out.err
    long = pd.read_csv(tmp_path / "sub-01" / "sub-01_vertebrae.tsv", sep="\t")  # the exam pipeline's layout
    truth = ph.truth.set_index("level")
    assert sorted(long["level"].unique()) == LUMBAR and set(long["map"]) == {"pdff_percent", "r2star_hz"}
    for row in long.itertuples():
        assert abs(row.mean - truth.loc[row.level, row.map]) <= (0.2 if row.map == "pdff_percent" else 1.0)
    summary = pd.read_csv(tmp_path / "sub-01" / "sub-01_vertebrae_summary.tsv", sep="\t")
    assert summary.loc[0, "pdff_percent_L1-L4"] == pytest.approx(truth.loc[LUMBAR[:4], "pdff_percent"].mean(),
                                                                 abs=0.2)
    vbq = json.loads((tmp_path / "sub-01" / "sub-01_scores.json").read_text())["vbq"]
    assert vbq["value"] == pytest.approx(ph.vbq_truth, rel=0.01) and vbq["field_strength_t"] == 3.0
    assert "VBQ =" in out.out
    for m in ("pdff_percent", "r2star_hz"):
        assert (tmp_path / "sub-01" / f"sub-01_{m}_qc.png").exists()
    assert not list((tmp_path / "sub-01").glob("*.nii.gz"))  # given maps are measured, not copied


def test_measure_body_on_another_preset(files, tmp_path):
    ph, p = files
    rc = main(["measure", "--map", f"pdff={p['pdff']}", "--labels", str(p["tss"]), "--preset", "totalspineseg",
               "--roi", "body", "--levels", "L1-L4", "--out", str(tmp_path), "--no-qc"])
    assert rc == 0
    long = pd.read_csv(tmp_path / "sub-01" / "sub-01_vertebrae.tsv", sep="\t")
    assert sorted(long["level"]) == LUMBAR[:4] and (long["roi"] == "body").all()
    assert not list(tmp_path.glob("**/*.png"))


def test_measure_two_readers(files, tmp_path):
    ph, p = files
    labels = phantom_labels(ph, "spineps")
    rois = rois_for(ph.maps["pdff_percent"], labels, "spineps", "paper")
    a = np.zeros(ph.shape, np.int16)
    b = np.zeros(ph.shape, np.int16)
    for level in LUMBAR:
        m = rois.masks[level]
        a[m] = LEVEL_CODES[level]
        shifted = np.roll(m, 1, axis=1) & m  # reader B: one voxel narrower
        b[shifted] = LEVEL_CODES[level]
    pa = save_nifti(Image(a, ph.affine), tmp_path / "A.nii.gz", dtype=np.int16)
    pb = save_nifti(Image(b, ph.affine), tmp_path / "B.nii.gz", dtype=np.int16)
    noisy = ph.maps["pdff_percent"].data + np.random.default_rng(0).normal(0, 3.0, ph.shape)
    pdff = save_nifti(ph.maps["pdff_percent"].with_data(noisy), tmp_path / "noisy_pdff.nii.gz")
    out = tmp_path / "out"
    rc = main(["measure", "--map", f"pdff={pdff}", "--labels", str(p["labels"]), "--roi", "roi",
               "--reader-roi", f"A={pa}", "--reader-roi", f"B={pb}", "--out", str(out), "--exam", "sub-01"])
    assert rc == 0
    out = out / "sub-01"
    per = pd.read_csv(out / "sub-01_vertebrae_readers.tsv", sep="\t")
    assert set(per["reader"]) == {"A", "B"}
    avg = pd.read_csv(out / "sub-01_vertebrae.tsv", sep="\t")
    assert (avg["roi"] == "reader").all() and (avg["n_readers"] == 2).all()
    assert (out / "sub-01_pdff_percent_qc.png").exists()
    agreement = pd.read_csv(out / "sub-01_agreement.tsv", sep="\t")
    assert set(agreement["type"]) == {"ICC1", "ICC2", "ICC3", "ICC1k", "ICC2k", "ICC3k"}
    assert agreement["icc"].min() > 0.9  # readers of the same vertebrae agree; levels differ by > 5 PDFF points
    assert np.isfinite(agreement["ba_bias"]).all()


def test_measure_seed_without_labels(files, tmp_path):
    ph, p = files
    seeds = []
    for level in ("L2", "L3"):
        idx = np.argwhere(ph.level_mask(level)).mean(axis=0)
        idx[0] = ph.mid_sagittal_index
        idx[1] += 3
        xyz = ph.affine[:3, :3] @ idx + ph.affine[:3, 3]
        seeds += ["--roi-point", f"{level}={xyz[0]:.3f},{xyz[1]:.3f},{xyz[2]:.3f}"]
    rc = main(["measure", "--map", f"pdff={p['pdff']}", "--roi", "seed", *seeds, "--out", str(tmp_path)])
    assert rc == 0
    long = pd.read_csv(tmp_path / "sub-01" / "sub-01_vertebrae.tsv", sep="\t").set_index("level")
    truth = ph.truth.set_index("level")
    for level in ("L2", "L3"):
        assert long.loc[level, "mean"] == pytest.approx(truth.loc[level, "pdff_percent"], abs=0.2)


@pytest.mark.parametrize("extra,message", [
    (["--preset", "nonsense"], "unknown label preset"),
    (["--levels", "L1,C2"], "C2 missing"),
    (["--roi", "seed"], "needs seeds"),
    (["--roi", "roi"], "--reader-roi"),
])
def test_measure_errors_are_one_line(files, tmp_path, capsys, extra, message):
    _, p = files
    rc = main(["measure", "--map", f"pdff={p['pdff']}", "--labels", str(p["labels"]), "--out", str(tmp_path), *extra])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err


def test_measure_bad_map_argument_and_missing_csf(files, tmp_path, capsys):
    _, p = files
    assert main(["measure", "--map", str(p["pdff"]), "--labels", str(p["labels"]), "--out", str(tmp_path)]) == 2
    assert "NAME=PATH" in capsys.readouterr().err
    rc = main(["measure", "--map", f"pdff={p['pdff']}", "--labels", str(p["labels"]), "--out", str(tmp_path),
               "--t1w", str(p["t1w"]), "--levels", "L4,L5"])
    assert rc == 0  # VBQ uses L1–L4 and L3 whatever levels are tabulated
