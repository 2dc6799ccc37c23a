"""Readers of the ISMRM toolbox (imDataParams) and Bydder (data/te/Tesla) .mat formats."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from osteomri.errors import InputError, MetadataError
from osteomri.io.matlab import load_toolbox_mask, load_toolbox_mat


def _toolbox(path, images, te, b0=3.0, clockwise=1, mask=None):
    st = {"images": images, "TE": np.asarray(te)[None, :], "FieldStrength": b0, "PrecessionIsClockwise": clockwise}
    if mask is not None:
        st["mask"] = mask
    scipy.io.savemat(path, {"imDataParams": st})


def test_toolbox_struct_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    images = (rng.normal(size=(5, 4, 2, 1, 3)) + 1j * rng.normal(size=(5, 4, 2, 1, 3))).astype(np.complex64)
    mask = np.zeros((5, 4, 2), np.uint8)
    mask[1:3] = 1
    _toolbox(tmp_path / "a.mat", images, [1e-3, 2e-3, 3e-3], 1.5, -1, mask)
    img = load_toolbox_mat(tmp_path / "a.mat")
    assert img.data.shape == (5, 4, 2, 3) and np.iscomplexobj(img.data)
    np.testing.assert_array_equal(img.data, images[:, :, :, 0, :])
    assert img.meta["EchoTime"] == pytest.approx([1e-3, 2e-3, 3e-3])
    assert img.meta["MagneticFieldStrength"] == 1.5 and img.meta["PrecessionIsClockwise"] is False
    np.testing.assert_array_equal(load_toolbox_mask(tmp_path / "a.mat"), mask.astype(bool))


def test_bydder_flat_format(tmp_path):
    data = np.ones((6, 5, 4), np.complex64)
    scipy.io.savemat(tmp_path / "b.mat", {"data": data, "te": np.arange(1, 5) * 1e-3, "Tesla": 3.0,
                                          "tr": 13.0, "fa": 2.0})
    img = load_toolbox_mat(tmp_path / "b.mat")
    assert img.data.shape == (6, 5, 1, 4)
    assert img.meta["RepetitionTime"] == pytest.approx(0.013) and img.meta["FlipAngle"] == 2.0
    assert img.meta["PrecessionIsClockwise"] is True and img.meta["PrecessionIsClockwiseAssumed"]
    assert load_toolbox_mask(tmp_path / "b.mat") is None


def test_errors(tmp_path):
    _toolbox(tmp_path / "ms.mat", np.ones((2, 2, 1, 1, 3), complex), [1.0, 2.0, 3.0])
    with pytest.raises(MetadataError, match="milliseconds"):
        load_toolbox_mat(tmp_path / "ms.mat")
    _toolbox(tmp_path / "n.mat", np.ones((2, 2, 1, 1, 3), complex), [1e-3, 2e-3])
    with pytest.raises(MetadataError, match="2 echo times but the data has 3"):
        load_toolbox_mat(tmp_path / "n.mat")
    scipy.io.savemat(tmp_path / "x.mat", {"other": np.ones(3)})
    with pytest.raises(InputError, match="neither"):
        load_toolbox_mat(tmp_path / "x.mat")
    with pytest.raises(InputError, match="not found"):
        load_toolbox_mat(tmp_path / "missing.mat")


@pytest.mark.shared_data
def test_real_files_load(shared_data):
    root = shared_data("fatwater")
    img = load_toolbox_mat(root / "ismrm2012_challenge" / "12.mat")
    assert img.data.shape == (157, 256, 3, 4) and img.field_strength_t == 1.5
    assert load_toolbox_mask(root / "ismrm2012_challenge" / "12.mat").shape == (157, 256, 3)
    oils = load_toolbox_mat(root / "bydder_pdff" / "PHANTOM_NDB_OILS.mat")
    assert oils.data.shape == (192, 192, 1, 15) and oils.meta["RepetitionTime"] == pytest.approx(0.013016)


def test_no_geometry_is_said_not_assumed_silently(tmp_path, capsys):
    """A .mat file stores no voxel size: the 1 mm identity affine is flagged and warned about (issue 13 item 14)."""
    from osteomri.cli.main import main
    from osteomri.errors import InputWarning

    images = np.ones((4, 3, 1, 1, 3), np.complex64)
    _toolbox(tmp_path / "a.mat", images, [1e-3, 2e-3, 3e-3])
    with pytest.warns(InputWarning, match="a.mat stores no geometry: 1 mm isotropic"):
        img = load_toolbox_mat(tmp_path / "a.mat")
    assert img.meta["VoxelSizeAssumed"] is True and np.allclose(img.affine, np.eye(4))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        sized = load_toolbox_mat(tmp_path / "a.mat", voxel_size_mm=(1.5, 1.5, 5.0))
    assert "VoxelSizeAssumed" not in sized.meta and np.allclose(np.diag(sized.affine)[:3], (1.5, 1.5, 5.0))
    main(["waterfat", str(tmp_path / "a.mat"), "-o", str(tmp_path / "out")])  # the fit itself may refuse this data
    err = capsys.readouterr().err
    assert err.count("warning: a.mat stores no geometry") == 1 and "InputWarning" not in err
