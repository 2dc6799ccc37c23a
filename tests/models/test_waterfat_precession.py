"""The precession (sign) convention checked against the data (:mod:`osteomri.models.waterfat.precession`).

Phantom: a 24 x 24 x 2 slab whose PDFF ramps 0 -> 100 % along axis 0 (6 echoes, 3 T, SNR 100). Conjugating the
data turns the convention round; a model told the wrong convention reads fat as water unless it checks.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from osteomri.models.waterfat.precession import choose_precession
from osteomri.waterfat import WaterFatModel, multiecho_signal

TE_S = 1.3e-3 + 0.8e-3 * np.arange(6)


def slab(shape=(24, 24, 2), snr=100.0, seed=4):
    rng = np.random.default_rng(seed)
    x, y, _ = np.meshgrid(*(np.linspace(-1, 1, n) for n in shape), indexing="ij")
    ff = (x + 1) / 2
    s = multiecho_signal(1 - ff, ff, 30 + 0 * x, 60 * y + 20, TE_S, 3.0, "ren_marrow")
    s = s + (rng.normal(size=s.shape) + 1j * rng.normal(size=s.shape)) / np.sqrt(2) / snr
    return s, 100 * ff


def test_choose_precession_rules():
    # auto: the lower residual, ties (within 10 %) keep the data as stored
    assert choose_precession("auto", 1.0, 5.0)[0] is True
    assert choose_precession("auto", 5.0, 1.0)[0] is False
    assert choose_precession("auto", 1.05, 1.0)[0] is True
    # stated: kept unless the other convention fits more than twice as well
    assert choose_precession(True, 1.5, 1.0)[0] is True
    assert choose_precession(False, 1.0, 1.5)[0] is False
    with pytest.warns(UserWarning, match="does not fit the data"):
        use, info = choose_precession(True, 5.0, 1.0)
    assert use is False and info["source"].startswith("data")
    with pytest.warns(UserWarning, match="does not fit the data"):
        assert choose_precession(False, 1.0, 5.0)[0] is True


def test_wrong_stated_convention_is_followed_by_the_data():
    """Told clockwise for conjugated data, the model warns and follows the data; without the check it reads
    the fat-dominant half as water."""
    s, pdff = slab()
    conj = np.conj(s)
    with pytest.warns(UserWarning, match="precession convention"):
        fit = WaterFatModel(TE_S, 3.0, precession_clockwise=True).fit(conj)
    assert fit.qc["precession_clockwise"] is False
    assert np.abs(fit.pdff_percent - pdff).mean() < 2.0
    unchecked = WaterFatModel(TE_S, 3.0, precession_clockwise=True, precession_check=False).fit(conj)
    assert np.abs(unchecked.pdff_percent - pdff).mean() > 20
    with warnings.catch_warnings():  # the right convention, stated: no warning, same answer
        warnings.simplefilter("error")
        right = WaterFatModel(TE_S, 3.0, precession_clockwise=False).fit(conj)
    assert right.qc["precession"]["source"] == "stated"
    np.testing.assert_array_equal(right.pdff_percent, fit.pdff_percent)
