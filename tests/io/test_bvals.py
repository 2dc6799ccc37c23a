"""FSL/BIDS b-value and b-vector files and sidecar b-values."""

from __future__ import annotations

import json

import numpy as np
import pytest

from osteomri.errors import InputError
from osteomri.io.bvals import bvals_from_sidecar, find_bvals, load_bvals, read_bvals, read_bvecs


def test_read_bvals_row_and_column(tmp_path):
    (tmp_path / "row.bval").write_text("0 10 20.5 1000\n")
    (tmp_path / "col.bval").write_text("0\n10\n20.5\n1000\n\n")
    np.testing.assert_array_equal(read_bvals(tmp_path / "row.bval"), [0, 10, 20.5, 1000])
    np.testing.assert_array_equal(read_bvals(tmp_path / "col.bval"), [0, 10, 20.5, 1000])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0 10 -5 1000", "negative b-value -5 \\(entry 3\\)"),
        ("0 10 nan 1000", "b-value 3 is not finite"),
        ("0 10 abc", "line 1: not a number"),
        ("", "holds no numbers"),
        ("1 0 0\n0 1 0\n0 0 1", "one row \\(or one column\\)"),
    ],
)
def test_read_bvals_errors(tmp_path, text, message):
    path = tmp_path / "x.bval"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_bvals(path)


def test_read_bvals_missing(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_bvals(tmp_path / "nope.bval")


def test_read_bvecs(tmp_path):
    (tmp_path / "a.bvec").write_text("0 1 0 0.6\n0 0 1 0.8\n0 0 0 0\n")
    vec = read_bvecs(tmp_path / "a.bvec")
    assert vec.shape == (3, 4)
    (tmp_path / "b.bvec").write_text("0 0 0\n1 0 0\n0 1 0\n0.6 0.8 0\n")  # n x 3
    np.testing.assert_array_equal(read_bvecs(tmp_path / "b.bvec"), vec)
    (tmp_path / "c.bvec").write_text("0 2 0\n0 0 1\n0 0 0\n")
    with pytest.raises(InputError, match="direction 2 has length 2.000"):
        read_bvecs(tmp_path / "c.bvec")


def test_sidecar_bvalues(tmp_path):
    assert bvals_from_sidecar({"bvalues": [0, 50, 800]}).tolist() == [0, 50, 800]
    assert bvals_from_sidecar({"DiffusionBValue": 800}).tolist() == [800]
    path = tmp_path / "dwi.json"
    path.write_text(json.dumps({"bvalues": [0, 100, -1]}))
    with pytest.raises(InputError, match="dwi.json 'bvalues': negative b-value -1"):
        load_bvals(path)
    with pytest.raises(InputError, match="has no b-values"):
        bvals_from_sidecar({"EchoTime": 0.07})


def test_find_bvals_order(tmp_path):
    img = tmp_path / "sub-01_dwi.nii.gz"
    img.write_bytes(b"")
    with pytest.raises(InputError, match="no b-values for sub-01_dwi.nii.gz: give --bvals"):
        find_bvals(img)
    b, src = find_bvals(img, meta={"bvalues": [0, 10, 20]})
    assert b.tolist() == [0, 10, 20] and src == "sub-01_dwi.json"
    (tmp_path / "sub-01_dwi.bval").write_text("0 100 200\n")
    b, src = find_bvals(img, meta={"bvalues": [0, 10, 20]})
    assert b.tolist() == [0, 100, 200] and src == "sub-01_dwi.bval"
    (tmp_path / "other.bval").write_text("0 5 6\n")
    assert find_bvals(img, tmp_path / "other.bval")[0].tolist() == [0, 5, 6]


def test_resolve_bvalues(tmp_path):
    from osteomri.io.bvals import resolve_bvalues
    from osteomri.io.image import Image

    img = Image(np.ones((2, 2, 1, 3)), meta={"bvalues": [0, 50, 800]})
    assert resolve_bvalues(None, img).tolist() == [0, 50, 800]
    assert resolve_bvalues([0, 5, 9], img).tolist() == [0, 5, 9]
    (tmp_path / "b.bval").write_text("0 1 2\n")
    assert resolve_bvalues(tmp_path / "b.bval", img).tolist() == [0, 1, 2]
    assert resolve_bvalues(str(tmp_path / "b.bval")).tolist() == [0, 1, 2]
    with pytest.raises(InputError, match="4 b-values for a DWI with 3 volumes"):
        resolve_bvalues([0, 1, 2, 3], img)
    with pytest.raises(InputError, match="no b-values"):
        resolve_bvalues(None, Image(np.ones((2, 2, 1, 3))))
