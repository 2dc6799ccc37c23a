"""A truncated or corrupt NIfTI is named in one InputError at the loader (issue 13, item 2).

nibabel reads voxels lazily, so a truncated ``.nii.gz`` used to escape ``nib.load`` and fail later as a bare
``EOFError`` (which click turns into ``Aborted.``). Every entry point reads through :func:`load_image`.
"""

from __future__ import annotations

import numpy as np
import pytest

from osteomri.errors import InputError
from osteomri.io import Image, load_image, save_nifti


@pytest.fixture
def intact(tmp_path):
    rng = np.random.default_rng(0)
    return save_nifti(Image(rng.random((16, 16, 12), dtype=np.float32), np.eye(4), {}), tmp_path / "full.nii.gz")


@pytest.mark.parametrize("name, keep", [("t.nii.gz", 0.5), ("h.nii.gz", 0.02), ("u.nii", 0.5)])
def test_truncated_file_named_in_one_input_error(tmp_path, intact, name, keep):
    source = intact
    if name.endswith(".nii"):  # an uncompressed file cut short
        import nibabel as nib

        source = tmp_path / "full.nii"
        nib.save(nib.load(intact), source)
    data = source.read_bytes()
    bad = tmp_path / name
    bad.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(InputError, match=rf"^{name.replace('.', '[.]')} is truncated or corrupt") as info:
        load_image(bad)
    assert str(tmp_path) not in str(info.value)  # the file name, not its folder
    assert load_image(source).data.shape == (16, 16, 12)  # the intact file still loads
