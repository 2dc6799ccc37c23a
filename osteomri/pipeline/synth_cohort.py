"""``write_synthetic_cohort``: a BIDS-like cohort of phantom exams with clinical columns of the seed study.

Each patient's clinical columns (age, sex, BMI, DXA BMD, T-score, WHO group) and marrow PDFF / R2* are
drawn by :func:`osteomri.phantom.cohort.synthetic_clinical_cohort`; the patient's PDFF and R2* become the
L1–L5 mean of the phantom's per-level marrow truth (level deviations are centred over L1–L5), so the
pipeline's per-patient aggregates can be checked against ``derivatives/phantom-truth/truth_patients.tsv``.

Layout written (``modalities`` picks the images)::

    DATASET/dataset_description.json, participants.tsv, participants.json
    DATASET/sub-001/anat/sub-001_MEGRE.nii.gz (+.json)   "megre"
    DATASET/sub-001/anat/sub-001_T1w.nii.gz               "t1w"
    DATASET/sub-001/anat/sub-001_pdff.nii.gz, _r2star     "vendor" (the true maps, Units in the sidecars)
    DATASET/sub-001/dwi/sub-001_dwi.nii.gz + .bval        "dwi"
    DATASET/sub-001/anat/sub-001_seg-vert_msk.nii.gz      vertebra labels (SPINEPS convention), always
    DATASET/derivatives/phantom-truth/sub-001/anat/sub-001_truth.tsv   per-level truth
    DATASET/derivatives/phantom-truth/truth_patients.tsv               per-patient L1–L5 truth
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from osteomri.errors import InputError
from osteomri.io.nifti import save_nifti
from osteomri.io.provenance import provenance, write_json_atomic, write_table_atomic
from osteomri.phantom import LUMBAR_LEVELS, make_spine_phantom, synthesize_dwi, synthesize_megre, synthesize_t1w
from osteomri.vertebrae.measure import DEFAULT_LEVEL_SET, parse_level_set

MODALITIES = ("megre", "t1w", "dwi", "vendor")
SYNTH_BVALUES = (0, 10, 20, 40, 80, 150, 250, 400, 600, 800)
SMALL_GRID = ((8, 96, 128), (4.0, 2.2, 2.25))
FULL_GRID = ((16, 128, 160), (3.0, 1.6, 1.8))
CLINICAL_COLUMNS = ("age", "sex", "bmi", "bmd_mg_cm3", "t_score", "who_group")
LEVEL_SD = {"pdff_percent": 3.0, "r2star_hz": 6.0}
_SEED_SHARES = (30, 41, 49)


def group_sizes(n: int) -> tuple[int, int, int]:
    """Split ``n`` patients over the WHO groups in the seed study's proportions (largest remainder)."""
    share = np.asarray(_SEED_SHARES, float) / sum(_SEED_SHARES) * n
    sizes = np.floor(share).astype(int)
    for i in np.argsort(-(share - sizes))[: n - sizes.sum()]:
        sizes[i] += 1
    return tuple(int(s) for s in sizes)


def draw_clinical(n: int, seed: int | None = 0) -> pd.DataFrame:
    """``n`` patients: clinical columns plus their true marrow ``pdff_percent`` and ``r2star_hz``."""
    from osteomri.phantom.cohort import synthetic_clinical_cohort

    sizes = group_sizes(n)
    drawn = synthetic_clinical_cohort(tuple(max(s, 1) for s in sizes), random_state=seed, readers=False)
    keep = np.concatenate([np.arange(s) + sum(max(x, 1) for x in sizes[:i]) for i, s in enumerate(sizes)])
    cohort = drawn.iloc[keep].reset_index(drop=True)
    cohort["exam"] = [f"sub-{i + 1:03d}" for i in range(n)]
    cohort["who_group"] = cohort["who_group"].astype(str)
    return cohort


def level_truth_for(pdff_percent: float, r2star_hz: float, rng: np.random.Generator) -> pd.DataFrame:
    """Per-level marrow PDFF / R2* whose L1–L5 mean (the default level set) is the patient's value."""
    levels = list(LUMBAR_LEVELS)
    rows = {"level": levels}
    for name, value, (lo, hi) in (("pdff_percent", pdff_percent, (1.0, 99.0)), ("r2star_hz", r2star_hz, (20, 600))):
        dev = rng.normal(0.0, LEVEL_SD[name], len(levels))
        dev -= dev.mean()
        vals = value + dev
        if vals.min() < lo or vals.max() > hi:  # extreme patient: no level spread rather than clipping the mean
            vals = np.full(len(levels), float(np.clip(value, lo, hi)))
        rows[name] = vals
    return pd.DataFrame(rows)


def write_synthetic_cohort(
    out: str | os.PathLike,
    n: int,
    *,
    seed: int = 0,
    modalities: Sequence[str] = ("megre", "t1w", "dwi"),
    small: bool = True,
    snr: float = 50.0,
    shape: tuple[int, int, int] | None = None,
    voxel_size_mm: tuple[float, float, float] | None = None,
) -> pd.DataFrame:
    """Write ``n`` phantom exams as a BIDS-like dataset in ``out``; returns the per-patient truth table.

    ``small`` uses the (8, 96, 128) grid of 4.0 × 2.2 × 2.25 mm voxels (fast; tests and demos), else
    (16, 128, 160) of 3.0 × 1.6 × 1.8 mm; ``shape``/``voxel_size_mm`` override either.
    """
    if int(n) < 1:
        raise InputError(f"--n must be at least 1, got {n}")
    unknown = sorted(set(modalities) - set(MODALITIES))
    if unknown or not modalities:
        raise InputError(f"unknown modality {unknown}; choose from {', '.join(MODALITIES)}")
    if "vendor" in modalities and "megre" in modalities:
        raise InputError("choose 'megre' or 'vendor' maps, not both (the pipeline uses vendor maps only without MEGRE)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    grid_shape, grid_vox = SMALL_GRID if small else FULL_GRID
    shape, vox = tuple(shape or grid_shape), tuple(voxel_size_mm or grid_vox)
    cohort = draw_clinical(int(n), seed)
    rng = np.random.default_rng([seed, 1])
    prov = {"Provenance": provenance("osteomri cohort synth", {"seed": seed, "n": int(n), "snr": snr,
                                                              "shape": shape, "voxel_size_mm": vox})}
    truth_rows = []
    for i, patient in cohort.iterrows():
        exam = patient["exam"]
        exam_seed = seed * 100_003 + i
        ph = make_spine_phantom(shape, vox, seed=exam_seed,
                                level_truth=level_truth_for(patient["pdff_percent"], patient["r2star_hz"], rng))
        anat, dwi = out / exam / "anat", out / exam / "dwi"
        if "megre" in modalities:
            megre, _ = synthesize_megre(ph, snr=snr, seed=exam_seed)
            save_nifti(megre, anat / f"{exam}_MEGRE.nii.gz", sidecar=prov)
        if "vendor" in modalities:
            for key, suffix in (("pdff_percent", "pdff"), ("r2star_hz", "r2star")):
                save_nifti(ph.maps[key], anat / f"{exam}_{suffix}.nii.gz", sidecar=prov)
        if "t1w" in modalities:
            save_nifti(synthesize_t1w(ph, seed=exam_seed), anat / f"{exam}_T1w.nii.gz", sidecar=prov)
        if "dwi" in modalities:
            save_nifti(synthesize_dwi(ph, SYNTH_BVALUES, seed=exam_seed), dwi / f"{exam}_dwi.nii.gz", sidecar=prov)
            (dwi / f"{exam}_dwi.bval").write_text(" ".join(str(b) for b in SYNTH_BVALUES) + "\n")
        save_nifti(ph.levels, anat / f"{exam}_seg-vert_msk.nii.gz", sidecar=prov, dtype=np.int16)
        _write_truth(ph.truth, out / "derivatives" / "phantom-truth" / exam / "anat" / f"{exam}_truth.tsv")
        core = ph.truth.set_index("level").loc[list(parse_level_set(DEFAULT_LEVEL_SET))]
        truth_rows.append({"exam": exam, **{k: float(core[k].mean()) for k in ("pdff_percent", "r2star_hz")}})
    participants = cohort[["exam", *CLINICAL_COLUMNS]].rename(columns={"exam": "participant_id"})
    participants["age"] = participants["age"].round(0).astype(int)
    participants[["bmi", "bmd_mg_cm3"]] = participants[["bmi", "bmd_mg_cm3"]].round(2)
    write_table_atomic(participants, out / "participants.tsv", "%.6g")
    write_json_atomic(out / "participants.json", {
        "age": {"Description": "age at the exam", "Units": "year"},
        "sex": {"Description": "sex", "Levels": {"F": "female", "M": "male"}},
        "bmi": {"Description": "body-mass index", "Units": "kg/m^2"},
        "bmd_mg_cm3": {"Description": "lumbar volumetric BMD (QCT)", "Units": "mg/cm^3"},
        "t_score": {"Description": "DXA T-score"},
        "who_group": {"Description": "WHO class from the T-score"},
    })
    write_json_atomic(out / "dataset_description.json", {
        "Name": "osteomri synthetic phantom cohort", "BIDSVersion": "1.9.0", "DatasetType": "raw",
        "GeneratedBy": [{"Name": "osteomri cohort synth", "Version": prov["Provenance"]["version"]}]})
    truth = pd.DataFrame(truth_rows)
    _write_truth(truth, out / "derivatives" / "phantom-truth" / "truth_patients.tsv")
    (out / "derivatives" / "phantom-truth" / "dataset_description.json").write_text(json.dumps(
        {"Name": "phantom truth", "DatasetType": "derivative", "GeneratedBy": [{"Name": "osteomri"}]}) + "\n")
    return truth


def _write_truth(table: pd.DataFrame, path: Path) -> None:
    """Truth tables keep full precision (the maps are compared against them)."""
    write_table_atomic(table, path, "%.12g")
