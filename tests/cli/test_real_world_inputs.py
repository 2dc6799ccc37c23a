"""Issue 13: realistic mistakes through the CLI give one line naming the fault and a non-zero exit, never a
plausible number with exit code 0."""

from __future__ import annotations

import numpy as np
import pytest

from osteomri.cli.main import main
from osteomri.io import Image, save_nifti


def _one_line_error(argv, capsys) -> str:
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc != 0 and "Traceback" not in err, err
    return " ".join(err.split())


@pytest.fixture
def truncated(tmp_path):
    rng = np.random.default_rng(1)
    full = save_nifti(Image(rng.random((12, 12, 8), dtype=np.float32), np.eye(4), {}), tmp_path / "full.nii.gz")
    data = full.read_bytes()
    bad = tmp_path / "t.nii.gz"
    bad.write_bytes(data[: len(data) // 2])
    return bad


@pytest.mark.parametrize("debug", [False, True])
def test_truncated_nifti_named_by_measure(tmp_path, truncated, capsys, debug):
    argv = ["measure", "--map", f"pdff={truncated}", "--out", str(tmp_path / "m")]
    if debug:  # --debug shows the traceback of the InputError, never a bare "Aborted."
        from osteomri.errors import InputError

        with pytest.raises(InputError, match="t.nii.gz is truncated or corrupt"):
            main(["--debug", *argv])
        return
    msg = _one_line_error(argv, capsys)
    assert msg.startswith("error: t.nii.gz is truncated or corrupt") and "Aborted" not in msg


def test_truncated_nifti_named_by_exam(tmp_path, truncated, capsys):
    msg = _one_line_error(["exam", "--out", str(tmp_path / "o"), "--t1w", str(truncated)], capsys)
    assert "error: t1w: t.nii.gz is truncated or corrupt" in msg and "EOFError: Compressed" not in msg.split(
        "corrupt")[0]
