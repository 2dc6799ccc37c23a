"""``load_image`` on a DWI exposes its b-values (issue 13, item 16): ``Image.bvalues_s_mm2`` from the ``.bval``
file beside the NIfTI or from the sidecar, read by :mod:`osteomri.io.bvals` (one home)."""

from __future__ import annotations

import numpy as np
import pytest

from osteomri.errors import InputError, MetadataError
from osteomri.io import Image, load_image, save_nifti
from osteomri.pipeline.demo import DEMO_BVALUES

B = np.asarray(DEMO_BVALUES, dtype=float)


def _dwi(tmp_path, n=len(B), sidecar=None):
    data = np.ones((4, 4, 2, n), np.float32) * np.exp(-B[:n] * 1e-3)
    return save_nifti(Image(data, np.eye(4)), tmp_path / "sub-01_dwi.nii.gz", sidecar=sidecar)


def test_bvalues_from_the_bval_file_beside_the_dwi(tmp_path):
    path = _dwi(tmp_path)
    (tmp_path / "sub-01_dwi.bval").write_text(" ".join(f"{b:g}" for b in B) + "\n")
    img = load_image(path)
    np.testing.assert_array_equal(img.bvalues_s_mm2, B)


def test_bvalues_from_the_sidecar_take_precedence(tmp_path):
    path = _dwi(tmp_path, sidecar={"DiffusionBValue": (B * 2).tolist()})
    (tmp_path / "sub-01_dwi.bval").write_text(" ".join(f"{b:g}" for b in B) + "\n")
    np.testing.assert_array_equal(load_image(path).bvalues_s_mm2, B * 2)


def test_missing_and_bad_bvalues_are_named(tmp_path):
    path = _dwi(tmp_path)
    with pytest.raises(MetadataError, match="bvalues"):
        _ = load_image(path).bvalues_s_mm2
    (tmp_path / "sub-01_dwi.bval").write_text("0 10 x\n")
    with pytest.raises(InputError, match="sub-01_dwi.bval"):
        load_image(path)
    with pytest.raises(InputError, match="3 b-values for a DWI with 10 volumes"):
        _ = Image(np.ones((2, 2, 2, 10)), meta={"bvalues": [0, 10, 20]}).bvalues_s_mm2


def test_demo_dwi_loads_with_its_bvalues(tmp_path):
    from osteomri.pipeline.demo import write_demo_inputs

    inputs = write_demo_inputs(tmp_path, small=True)
    np.testing.assert_array_equal(load_image(inputs.dwi).bvalues_s_mm2, B)
