"""Bipolar-readout even-echo phase correction (:mod:`osteomri.models.waterfat.bipolar`) on synthetic data.

Phantom (40 x 48 x 3 voxels, 8 echoes, TE 1.2:1.0:8.2 ms at 3 T, 9-peak fat): elliptical body with a pure-fat
ring around an interior whose PDFF ramps 0 -> 100 % along axis 0, R2* 20 -> 100 1/s along axis 1, a smooth
field map (about -150..+230 Hz) and initial phase, complex noise SD 1/50 of the proton density. The error
imposed here, independently of the library: even echoes (2nd, 4th, ...) times ``exp(i (phi0 + phi1 x))``,
``x`` the voxel index along axis 1 (the readout) minus its centre, ``(N - 1) / 2``.
"""

from __future__ import annotations

import numpy as np
import pytest

from osteomri.errors import InputError
from osteomri.models.waterfat.bipolar import (
    BipolarPhaseError,
    correct_bipolar_phase,
    estimate_bipolar_phase,
)
from osteomri.waterfat import WaterFatModel, fat_basis, multiecho_signal

TE_S = 1.2e-3 + 1.0e-3 * np.arange(8)
B0_T = 3.0
PHI0_RAD, PHI1_RAD_PER_VOXEL, READOUT_AXIS = 0.6, 0.02, 1  # +-0.47 rad of ramp across the 48 voxels


def phantom(shape=(40, 48, 3), snr=50.0, seed=3):
    rng = np.random.default_rng(seed)
    x, y, z = np.meshgrid(*(np.linspace(-1, 1, n) for n in shape), indexing="ij")
    body = (x / 0.92) ** 2 + (y / 0.85) ** 2 < 1
    ring = body & ((x / 0.75) ** 2 + (y / 0.68) ** 2 >= 1)
    ff = np.where(ring, 1.0, np.where(body, np.clip((x + 0.7) / 1.4, 0, 1), 0.0))
    r2 = np.where(body, 20 + 80 * np.clip((y + 0.7) / 1.4, 0, 1), 0.0)
    field = 120 * (0.8 * x - 0.5 * y + 0.6 * x * y + 0.3 * z) + 40
    s = multiecho_signal(body * (1 - ff), body * ff, r2, field, TE_S, B0_T, "ren_marrow", phase_rad=0.5 * x - 0.3 * y)
    s = s + (rng.normal(size=s.shape) + 1j * rng.normal(size=s.shape)) / np.sqrt(2) / snr
    return s, {"body": body, "pdff": 100 * ff}


def impose_error(signal, phi0, phi1, axis):
    n = signal.shape[axis]
    shape = [1] * (signal.ndim - 1)
    shape[axis] = n
    theta = (phi0 + phi1 * (np.arange(n) - (n - 1) / 2)).reshape(shape)
    out = signal.copy()
    out[..., 1::2] *= np.exp(1j * theta)[..., None]
    return out


@pytest.fixture(scope="module")
def case():
    """Clean and corrupted data and the four fits of the comparisons (each fitted once)."""
    clean, truth = phantom()
    bad = impose_error(clean, PHI0_RAD, PHI1_RAD_PER_VOXEL, READOUT_AXIS)
    plain, corrected = WaterFatModel(TE_S, B0_T, bipolar_correction=False), \
        WaterFatModel(TE_S, B0_T, bipolar_correction=True)
    default = WaterFatModel(TE_S, B0_T)  # bipolar_correction="auto": detected from the data
    fits = {"clean": plain.fit(clean), "corrected": corrected.fit(bad), "uncorrected": plain.fit(bad),
            "clean_corrected": corrected.fit(clean), "default": default.fit(bad), "clean_default": default.fit(clean)}
    return clean, bad, truth, fits


def _pdff_error(fit, truth):
    b = truth["body"]
    return fit.pdff_percent[b] - truth["pdff"][b]


def test_estimate_recovers_the_imposed_error():
    clean, _ = phantom()
    fat = fat_basis(TE_S, B0_T, "ren_marrow")
    for phi0, phi1, axis in [(PHI0_RAD, PHI1_RAD_PER_VOXEL, 1), (-1.3, -0.03, 0), (1.5, 0.05, 1)]:
        est = estimate_bipolar_phase(impose_error(clean, phi0, phi1, axis), TE_S, fat_signal=fat)
        assert est.readout_axis == axis
        # theta is defined modulo pi (the other branch is a field-map shift of 1/(2 dTE)); (1.5, 0.05) wraps 2 theta
        assert abs(np.angle(np.exp(2j * (est.phase0_rad - phi0))) / 2) < 0.01, (phi0, est)
        assert abs(est.ramp_rad_per_voxel - phi1) < 5e-4, (phi1, est)
        assert -np.pi / 2 < est.phase0_rad <= np.pi / 2
        assert est.coherence > 0.95
    # given the axis, the same answer; correcting with the estimate removes the error
    est = estimate_bipolar_phase(impose_error(clean, PHI0_RAD, PHI1_RAD_PER_VOXEL, 1), TE_S, fat_signal=fat,
                                 readout_axis=1)
    assert abs(est.phase0_rad - PHI0_RAD) < 0.01 and abs(est.ramp_rad_per_voxel - PHI1_RAD_PER_VOXEL) < 5e-4
    exact = BipolarPhaseError(PHI0_RAD, PHI1_RAD_PER_VOXEL, 1)
    np.testing.assert_allclose(correct_bipolar_phase(impose_error(clean, PHI0_RAD, PHI1_RAD_PER_VOXEL, 1), exact),
                               clean, atol=1e-12)


def test_fat_term_removes_the_mixture_bias():
    """Without the fat signal every voxel is taken as one spectral line: water–fat mixtures bias phase0."""
    bad = impose_error(phantom()[0], PHI0_RAD, PHI1_RAD_PER_VOXEL, READOUT_AXIS)
    single_line = estimate_bipolar_phase(bad, TE_S)
    with_fat = estimate_bipolar_phase(bad, TE_S, fat_signal=fat_basis(TE_S, B0_T, "ren_marrow"))
    assert abs(single_line.phase0_rad - PHI0_RAD) > 5 * abs(with_fat.phase0_rad - PHI0_RAD)


@pytest.mark.slow
def test_corrected_fit_matches_the_error_free_fit(case):
    _, _, truth, fits = case
    qc = fits["corrected"].qc["bipolar"]
    assert qc["readout_axis"] == READOUT_AXIS
    assert abs(qc["phase0_rad"] - PHI0_RAD) < 0.01 and abs(qc["ramp_rad_per_voxel"] - PHI1_RAD_PER_VOXEL) < 5e-4
    e, e_clean = _pdff_error(fits["corrected"], truth), _pdff_error(fits["clean"], truth)
    assert np.abs(e).max() < 10, "swapped or badly biased voxels after the correction"
    assert np.abs(e).mean() <= 1.1 * np.abs(e_clean).mean() + 0.05, (np.abs(e).mean(), np.abs(e_clean).mean())
    assert abs(e.mean()) < 0.5


@pytest.mark.slow
def test_uncorrected_fit_is_clearly_worse(case):
    _, _, truth, fits = case
    e, e_clean = _pdff_error(fits["uncorrected"], truth), _pdff_error(fits["clean"], truth)
    assert np.abs(e).mean() > 5 * np.abs(e_clean).mean()
    assert np.mean(np.abs(e) > 10) > 0.1  # a tenth of the body more than 10 points off
    assert "bipolar" not in fits["uncorrected"].qc
    # told monopolar, the fit still flags the residual the correction would have removed (QC)
    assert fits["uncorrected"].qc["bipolar_error_uncorrected"] is True
    assert "bipolar_error_uncorrected" not in fits["clean"].qc


@pytest.mark.slow
def test_correction_on_error_free_data_changes_nothing(case):
    _, _, truth, fits = case
    qc = fits["clean_corrected"].qc["bipolar"]
    assert abs(qc["phase0_rad"]) < 0.01 and abs(qc["ramp_rad_per_voxel"]) < 5e-4
    b = truth["body"]
    diff = fits["clean_corrected"].pdff_percent[b] - fits["clean"].pdff_percent[b]
    assert np.abs(diff).mean() < 0.1 and np.abs(diff).max() < 2.0  # noise-level differences only
    assert WaterFatModel(TE_S, B0_T, bipolar_correction=True).parameters()["bipolar_correction"] is True
    assert WaterFatModel(TE_S, B0_T, bipolar_correction=False).parameters()["bipolar_correction"] is False
    assert WaterFatModel(TE_S, B0_T).parameters()["bipolar_correction"] == "auto"


@pytest.mark.slow
def test_default_detects_and_corrects_the_error(case):
    """Without being told, the default model finds the alternating-readout error in the data (correcting it
    lowers the bright voxels' residual several-fold) and separates as well as the explicitly corrected fit."""
    _, _, truth, fits = case
    detection = fits["default"].qc["bipolar_detection"]
    assert detection["detected"] and detection["residual_corrected"] < 0.5 * detection["residual_uncorrected"]
    np.testing.assert_array_equal(fits["default"].pdff_percent, fits["corrected"].pdff_percent)
    e, e_clean = _pdff_error(fits["default"], truth), _pdff_error(fits["clean"], truth)
    assert np.abs(e).max() < 10 and np.abs(e).mean() <= 1.1 * np.abs(e_clean).mean() + 0.05


@pytest.mark.slow
def test_default_leaves_error_free_data_exactly_alone(case):
    """No false detection on monopolar (error-free) data: the fit is bit-identical to the uncorrected one."""
    _, _, _, fits = case
    assert fits["clean_default"].qc["bipolar_detection"]["detected"] is False
    assert "bipolar" not in fits["clean_default"].qc
    np.testing.assert_array_equal(fits["clean_default"].pdff_percent, fits["clean"].pdff_percent)


def test_readout_polarity_from_metadata():
    """A polarity recorded in the metadata decides (BIDS-style text or the Siemens ucReadOutMode code); an
    unreadable value is refused, not guessed."""
    from osteomri.io.image import Image
    from osteomri.models.waterfat.bipolar import readout_polarity_from_meta

    assert readout_polarity_from_meta({"ReadoutPolarity": "Bipolar"}) is True
    assert readout_polarity_from_meta({"ReadoutMode": "monopolar"}) is False
    assert readout_polarity_from_meta({"ucReadOutMode": "0x2"}) is True
    assert readout_polarity_from_meta({"ucReadOutMode": 1}) is False
    assert readout_polarity_from_meta({"EchoTime": [0.001]}) is None
    with pytest.raises(InputError, match="ReadoutPolarity='sideways'"):
        readout_polarity_from_meta({"ReadoutPolarity": "sideways"})
    data = np.zeros((4, 4, 1, TE_S.size), complex)
    meta = {"EchoTime": TE_S.tolist(), "MagneticFieldStrength": B0_T}
    for extra, expected in (({}, "auto"), ({"ReadoutPolarity": "bipolar"}, True),
                            ({"ReadoutPolarity": "monopolar"}, False)):
        model = WaterFatModel.from_image(Image(data, np.eye(4), {**meta, **extra}))
        assert model.bipolar_correction == expected


def test_bad_inputs_raise_input_error():
    clean, _ = phantom(shape=(12, 10, 1))
    with pytest.raises(InputError, match="at least 4 echoes"):
        estimate_bipolar_phase(clean[..., :3], TE_S[:3])
    with pytest.raises(InputError, match="at least 4 echoes"):
        WaterFatModel(TE_S[:3], B0_T, bipolar_correction=True)
    with pytest.raises(InputError, match="complex data"):
        estimate_bipolar_phase(np.abs(clean), TE_S)
    with pytest.raises(InputError, match="complex data"):
        correct_bipolar_phase(np.abs(clean), BipolarPhaseError(0.1, 0.0, 0))
    uneven = TE_S.copy()
    uneven[3] += 0.3e-3
    with pytest.raises(InputError, match="uniformly spaced"):
        estimate_bipolar_phase(clean, uneven)
    with pytest.raises(InputError, match="uniformly spaced"):
        WaterFatModel(uneven, B0_T, bipolar_correction=True)
    with pytest.raises(InputError, match="7 echo times for 8 echoes"):
        estimate_bipolar_phase(clean, TE_S[:7])
    with pytest.raises(InputError, match="readout_axis 3"):
        estimate_bipolar_phase(clean, TE_S, readout_axis=3)
    with pytest.raises(InputError, match="fat_signal has 7 values"):
        estimate_bipolar_phase(clean, TE_S, fat_signal=np.ones(7, complex))
    with pytest.raises(InputError, match="zero everywhere"):
        estimate_bipolar_phase(np.zeros_like(clean), TE_S)
