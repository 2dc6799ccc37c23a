"""Fat spectra: the triglyceride model's proton counts are the molecules' hydrogen counts; presets agree."""

from __future__ import annotations

import numpy as np
import pytest

from osteomri.errors import InputError
from osteomri.models.waterfat.spectrum import _REN_PPM
from osteomri.waterfat import FAT_SPECTRA, triglyceride_spectrum


@pytest.mark.parametrize(
    ("molecule", "chain_length", "ndb", "nmidb", "hydrogens"),
    [
        ("tripalmitin C51H98O6", 16, 0, 0, 98),
        ("triolein C57H104O6", 18, 3, 0, 104),
        ("trilinolein C57H98O6", 18, 6, 3, 98),
        ("trilinolenin C57H92O6", 18, 9, 6, 92),
    ],
)
def test_triglyceride_protons_match_molecular_formula(molecule, chain_length, ndb, nmidb, hydrogens):
    spec = triglyceride_spectrum(ndb, nmidb, chain_length)
    protons = 6 * chain_length + 2 - 2 * ndb
    assert protons == hydrogens, molecule
    amp = np.asarray(spec.relative_amplitudes) * protons
    assert spec.ppm == _REN_PPM
    assert amp[-1] == pytest.approx(2 * ndb)  # olefinic protons: two per double bond
    assert amp[5] == pytest.approx(2 * nmidb)  # diallylic CH2 between two double bonds
    assert amp[0] == pytest.approx(9) and amp[7] == pytest.approx(1)  # 3 CH3; glycerol CH


def test_marrow_like_composition_is_close_to_the_ren_preset():
    """Ren et al. 2008 measured marrow fat; a triglyceride with ndb 3, nmidb 1, CL 17.5 is within 0.007."""
    got = np.asarray(triglyceride_spectrum(3, 1, 17.5).relative_amplitudes)
    ren = np.asarray(FAT_SPECTRA["ren_marrow"].relative_amplitudes)
    assert np.abs(got - ren).max() < 0.007


def test_triglyceride_spectrum_rejects_impossible_compositions():
    with pytest.raises(InputError, match="nmidb"):
        triglyceride_spectrum(2, 3)
    with pytest.raises(InputError, match="nmidb"):
        triglyceride_spectrum(float("nan"), 0)
    with pytest.raises(InputError, match="too short"):
        triglyceride_spectrum(9, 0, chain_length=5)
