"""Frequency-domain peak fit: synthetic Voigt peaks, and the real LCModel liver spectrum's lipid ratios."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import voigt_profile

from osteomri.errors import InputError
from osteomri.io.lcmodel import load_lcmodel_coord
from osteomri.models.mrs.frequency import LCMODEL_LIPIDS_PPM, fit_peaks


def test_synthetic_voigt_peaks_recovered():
    rng = np.random.default_rng(2)
    ppm = np.linspace(4.0, 0.1, 821)
    truth = {"Lip09": 0.05, "Lip13": 0.8, "Lip16": 0.07, "Lip21": 0.1, "Lip23": 0.02, "Lip28": 0.01}
    y = sum(a * voigt_profile(ppm - LCMODEL_LIPIDS_PPM[k] - 0.02, 0.08, 0.09) for k, a in truth.items())
    y = y + 0.05 + 0.01 * (ppm - 2) + rng.normal(0, 0.002, ppm.size)
    fit = fit_peaks(ppm, y, LCMODEL_LIPIDS_PPM)
    assert fit.shift_ppm == pytest.approx(0.02, abs=0.002)
    for k, a in truth.items():
        assert fit.areas[k] == pytest.approx(a, abs=3 * fit.area_sd[k] + 1e-3), k
    with pytest.raises(InputError):
        fit_peaks(ppm, y * np.nan, LCMODEL_LIPIDS_PPM)


@pytest.mark.shared_data
def test_liver_lcmodel_lipid_ratios_reproduced(shared_data):
    """Lip13, Lip09 and Lip21 over (Lip09 + Lip13 + Lip16) within LCModel's stated %SD of its own values."""
    coord = load_lcmodel_coord(shared_data("mrs") / "liver_lcmodel.COORD")
    assert coord.ppm.size == coord.data.size == 821
    assert coord.ppm[0] == pytest.approx(4.0) and coord.ppm[-1] == pytest.approx(0.1, abs=1e-3)
    assert coord.fwhm_ppm == pytest.approx(0.297) and coord.snr == pytest.approx(24)
    conc = coord.concentrations
    assert conc["Lip13"]["ratio"] == pytest.approx(0.878) and conc["Lip21"]["sd_percent"] == 7
    fit = fit_peaks(coord.ppm, coord.data, {**LCMODEL_LIPIDS_PPM, "Cho": 3.2})
    ratios = fit.ratios(("Lip09", "Lip13", "Lip16"))
    for name in ("Lip13", "Lip09", "Lip21"):
        ref = conc[name]["ratio"]
        assert abs(ratios[name] - ref) <= ref * conc[name]["sd_percent"] / 100, (name, ratios[name], ref)
    # the shift LCModel applied is recovered to within a data point or two
    assert fit.shift_ppm == pytest.approx(coord.shift_ppm, abs=0.01)


def test_not_a_coord_file(tmp_path):
    p = tmp_path / "x.COORD"
    p.write_text("hello\n")
    with pytest.raises(InputError, match="x.COORD"):
        load_lcmodel_coord(p)
