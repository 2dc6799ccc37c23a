"""The built-in demo exam: phantom images written as ordinary input files, then one :class:`ExamSpec`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from osteomri.io.image import Image
from osteomri.io.nifti import save_nifti
from osteomri.io.provenance import provenance, write_table_atomic
from osteomri.phantom import make_spine_phantom, synthesize_dwi, synthesize_megre, synthesize_t1w
from osteomri.phantom.ute import synthesize_ute
from osteomri.pipeline.spec import ExamSpec

DEMO_BVALUES = (0, 10, 20, 40, 80, 150, 250, 400, 600, 800)


@dataclass
class DemoInputs:
    folder: Path
    megre: Path
    t1w: Path
    dwi: Path
    ute: Path
    bvals: Path
    labels: Path
    truth: Path


def write_demo_inputs(folder: Path, seed: int = 0, snr: float = 50.0, small: bool = False) -> DemoInputs:
    """Write the phantom's MEGRE, T1w, DWI (+ .bval), UTE, SPINEPS-convention labels and truth table."""
    folder = Path(folder)
    shape, vox = ((10, 96, 128), (4.0, 2.2, 2.25)) if small else ((16, 128, 160), (3.0, 1.6, 1.8))
    ph = make_spine_phantom(shape=shape, voxel_size_mm=vox, seed=seed)
    prov = {"Provenance": provenance("osteomri demo", {"seed": seed, "snr": snr, "shape": shape,
                                                      "voxel_size_mm": vox})}
    megre, fieldmap = synthesize_megre(ph, snr=snr, seed=seed)
    stem = "sub-phantom"
    paths = DemoInputs(
        folder=folder,
        megre=save_nifti(megre, folder / f"{stem}_MEGRE.nii.gz", sidecar=prov),
        t1w=save_nifti(synthesize_t1w(ph, seed=seed), folder / f"{stem}_T1w.nii.gz", sidecar=prov),
        dwi=save_nifti(synthesize_dwi(ph, DEMO_BVALUES, seed=seed), folder / f"{stem}_dwi.nii.gz", sidecar=prov),
        ute=save_nifti(synthesize_ute(ph, seed=seed), folder / f"{stem}_UTE.nii.gz", sidecar=prov),
        bvals=folder / f"{stem}_dwi.bval",
        labels=save_nifti(ph.levels, folder / f"{stem}_seg-vert_msk.nii.gz", sidecar=prov, dtype=np.int16),
        truth=folder / f"{stem}_truth.tsv",
    )
    paths.bvals.write_text(" ".join(str(b) for b in DEMO_BVALUES) + "\n")
    save_nifti(Image(fieldmap, ph.affine, {"Units": "Hz"}), folder / f"{stem}_desc-truth_fieldmap.nii.gz",
               sidecar=prov)
    write_table_atomic(ph.truth, paths.truth, "%.6g")
    return paths


def demo_exam(inputs: DemoInputs) -> ExamSpec:
    import pandas as pd

    truth = pd.read_csv(inputs.truth, sep="\t")
    return ExamSpec(
        exam_id="sub-phantom",
        megre=inputs.megre,
        t1w=inputs.t1w,
        dwi=inputs.dwi,
        ute=inputs.ute,
        bvals=inputs.bvals,
        labels=inputs.labels,
        label_preset="spineps",
        roi="paper",
        clinical={"source": "digital phantom"},
        reference_values=truth,
    )
