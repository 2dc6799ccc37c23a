"""Choosing DICOM series from the CLI (issue 13 item 9): --series, and Siemens magnitude + phase paired."""

from __future__ import annotations

import dicom_factory as fac
import numpy as np

from osteomri.cli.main import main
from osteomri.io import load_nifti
from osteomri.models.waterfat import multiecho_signal

TE_MS = [1.2, 2.2, 3.2, 4.2, 5.2]


def _write(folder, description, component, values, **kw):
    spec = fac.SeriesSpec(echo_times_ms=TE_MS, description=description, **kw)
    fac.write_classic_series(folder / description.replace(" ", "_"), {component: values}, fac.Geometry(), spec)
    return spec.series_uid


def test_series_are_chosen_and_a_magnitude_phase_pair_is_found(tmp_path, capsys):
    ff = np.linspace(0.05, 0.6, 8)[:, None, None] * np.ones((8, 6, 2))
    s = 1000 * multiecho_signal(1 - ff, ff, 40.0, 20.0, np.array(TE_MS) * 1e-3, 3.0)
    phase = np.mod(np.round(np.angle(s) / np.pi * 2048) + 2048, 4096)  # Siemens: slope 2, intercept -4096
    dicom = tmp_path / "dicom"
    mag = _write(dicom, "gre mag", "M", np.round(np.abs(s)))
    pha = _write(dicom, "gre phase", "P", phase, slope=2.0, intercept=-4096.0)
    # a magnitude series and its phase series alone in a folder: read as one complex series
    assert main(["waterfat", str(dicom), "-o", str(tmp_path / "auto")]) == 0, capsys.readouterr().err
    pdff = load_nifti(tmp_path / "auto" / "sub-01" / "sub-01_pdff.nii.gz").data
    assert np.abs(pdff - 100 * ff).max() < 2.0  # complex fit: the phase was used
    # a third series makes the folder ambiguous: one line listing the series, nothing written
    _write(dicom, "localizer", "M", np.round(np.abs(s)))
    assert main(["waterfat", str(dicom), "-o", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "3 DICOM series" in err and mag in err and not (tmp_path / "none").exists()
    assert main(["waterfat", str(dicom), "--series", mag, "--series", pha, "-o", str(tmp_path / "chosen")]) == 0
    chosen = load_nifti(tmp_path / "chosen" / "sub-01" / "sub-01_pdff.nii.gz").data
    np.testing.assert_array_equal(chosen, pdff)
    assert main(["exam", "--no-autolabel", "--megre", str(dicom), "--series", mag, "--series", pha,
                 "-o", str(tmp_path / "ex")]) == 0
    np.testing.assert_array_equal(load_nifti(tmp_path / "ex" / "sub-01" / "sub-01_pdff.nii.gz").data, pdff)
    assert main(["waterfat", str(dicom), "--series", "1.2.3", "-o", str(tmp_path / "bad")]) == 2
    assert "series 1.2.3 not found" in capsys.readouterr().err
