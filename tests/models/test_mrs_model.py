"""Marrow MRS model: conventions, noise-free recovery, the Fit contract and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from osteomri.errors import InputError, MetadataError
from osteomri.models.mrs import MAP_NAMES, MrsModel, fat_amplitudes, ppm_axis
from osteomri.models.mrs.basis import composition, fat_protons, spectrum
from osteomri.models.registry import map_spec, registered_maps
from osteomri.models.waterfat.spectrum import triglyceride_spectrum
from osteomri.phantom.mrs import simulate_marrow_fids

TE = np.array([10, 20, 30, 40, 50]) * 1e-3


def _truth(n, rng, pdff=None):
    return dict(pdff_percent=rng.uniform(5, 90, n) if pdff is None else np.full(n, pdff),
                ndb=rng.uniform(2.5, 3.5, n), water_t2_ms=rng.uniform(10, 45, n), fat_t2_ms=rng.uniform(50, 70, n),
                water_linewidth_hz=rng.uniform(10, 40, n), fat_linewidth_hz=rng.uniform(10, 40, n),
                phase_rad=rng.uniform(-np.pi, np.pi, n), shift_hz=rng.uniform(-0.1, 0.1, n) * 127.74)


def test_methylene_lies_434_hz_below_water_at_3t():
    """NIfTI-MRS convention of nifti-mrs/spec2nii: ppm = 4.70 + f / MHz on numpy's FFT axis."""
    model = MrsModel(TE, 127.74, 2.5e-4)
    fids, _ = simulate_marrow_fids(model, 4096, pdff_percent=100, ndb=3, water_t2_ms=30, fat_t2_ms=60,
                                   water_linewidth_hz=5, fat_linewidth_hz=5)
    spec = np.abs(spectrum(fids[0, 0]))
    freq = np.fft.fftshift(np.fft.fftfreq(4096, 2.5e-4))
    assert freq[np.argmax(spec)] == pytest.approx(-434.3, abs=1.0)
    assert ppm_axis(4096, 2.5e-4, 127.74)[np.argmax(spec)] == pytest.approx(1.30, abs=0.01)


def test_fat_amplitudes_follow_the_one_triglyceride_table():
    """Hamilton's relations on top of the water-fat module's peak table (not a second table)."""
    ndb = 3.0
    nmidb, cl = 0.093 * ndb**2, 16.8 + 0.25 * ndb
    a, da = fat_amplitudes(np.array([ndb]))
    ref = triglyceride_spectrum(ndb, nmidb, cl).amplitudes
    np.testing.assert_allclose(a[0], ref, rtol=1e-12)
    assert fat_protons(ndb).sum() == pytest.approx(6 * cl + 2 - 2 * ndb)
    h = 1e-6
    num = (fat_amplitudes(np.array([ndb + h]))[0] - fat_amplitudes(np.array([ndb - h]))[0]) / (2 * h)
    np.testing.assert_allclose(da, num, atol=1e-8)
    comp = composition(np.array(ndb))
    assert comp["fpufa"][0] + comp["fmufa"][0] + comp["fsfa"][0] == pytest.approx(1.0)
    assert comp["unsaturation_index"][0] == pytest.approx(2 * ndb / (6 * cl + 2 - 2 * ndb))


@pytest.mark.parametrize("mhz", [127.74, 63.87])
def test_noise_free_spectra_are_recovered_exactly(mhz):
    rng = np.random.default_rng(3)
    model = MrsModel(TE, mhz, 5e-4)
    truth = _truth(40, rng)
    truth["shift_hz"] = rng.uniform(-0.1, 0.1, 40) * mhz
    fids, theta = simulate_marrow_fids(model, 1024, **truth)
    fit = model.fit(fids)
    assert fit.qc["n_converged"] == 40
    np.testing.assert_allclose(fit.pdff_percent, truth["pdff_percent"], atol=1e-3)
    np.testing.assert_allclose(fit.water_t2_ms, truth["water_t2_ms"], rtol=1e-4)
    np.testing.assert_allclose(fit.fat_t2_ms, truth["fat_t2_ms"], rtol=1e-4)
    np.testing.assert_allclose(fit.ndb, truth["ndb"], atol=1e-3)
    np.testing.assert_allclose(fit.nmidb, 0.093 * truth["ndb"] ** 2, atol=1e-3)
    np.testing.assert_allclose(fit.cl, 16.8 + 0.25 * truth["ndb"], atol=1e-3)
    np.testing.assert_allclose(fit.water_linewidth_hz, truth["water_linewidth_hz"], rtol=1e-4)
    np.testing.assert_allclose(fit.fat_linewidth_hz, truth["fat_linewidth_hz"], rtol=1e-4)
    np.testing.assert_allclose(fit.mrs_shift_ppm, truth["shift_hz"] / mhz, atol=1e-5)
    np.testing.assert_allclose(np.cos(fit.mrs_phase_rad - truth["phase_rad"]), 1.0, atol=1e-8)
    np.testing.assert_allclose(fit.predict(), fids, atol=1e-6)


def test_shift_of_a_tenth_of_a_ppm_either_way_is_fitted():
    model = MrsModel(TE, 127.74, 5e-4)
    for ppm in (-0.12, 0.12):
        fids, _ = simulate_marrow_fids(model, 1024, pdff_percent=30, ndb=3, water_t2_ms=25, fat_t2_ms=60,
                                       water_linewidth_hz=30, fat_linewidth_hz=20, shift_hz=ppm * 127.74)
        fit = model.fit(fids)
        assert fit.mrs_shift_ppm[0] == pytest.approx(ppm, abs=1e-5)
        assert fit.pdff_percent[0] == pytest.approx(30, abs=1e-3)


@pytest.mark.parametrize("pdff", [10, 60])
def test_mirrored_convention_is_detected(pdff):
    """FIDs in the complex-conjugate convention (methylene at +434 Hz at 3 T) give the same fit, flagged."""
    rng = np.random.default_rng(8)
    model = MrsModel(TE, 127.74, 5e-4)
    fids, _ = simulate_marrow_fids(model, 1024, **_truth(20, rng, pdff=pdff), snr=50, rng=rng)
    direct, mirrored = model.fit(fids), model.fit(fids.conj())
    assert not direct.qc["conjugated"] and mirrored.qc["conjugated"]
    np.testing.assert_allclose(mirrored.pdff_percent, direct.pdff_percent, atol=1e-6)
    np.testing.assert_allclose(mirrored.predict(), direct.predict().conj(), atol=1e-9)
    forced = MrsModel(TE, 127.74, 5e-4, conjugate=False).fit(fids.conj())
    assert np.abs(np.nanmedian(forced.pdff_percent) - pdff) > 5  # the mirrored fat pattern does not fit


def test_fit_contract_maps_parameters_and_grid_shape():
    rng = np.random.default_rng(4)
    model = MrsModel(TE, 127.74, 5e-4)
    fids, _ = simulate_marrow_fids(model, 512, **_truth(6, rng), snr=100, rng=rng)
    grid = fids.reshape(2, 3, 5, 512)
    mask = np.ones((2, 3), bool)
    mask[1, 2] = False
    fit = model.fit(grid, mask=mask)
    maps = fit.maps()
    assert set(MAP_NAMES) <= set(maps)
    assert set(registered_maps("mrs")) == set(MAP_NAMES)
    for name, arr in maps.items():
        assert arr.shape == (2, 3) and arr.dtype == np.float32
        assert np.isnan(arr[1, 2]), name
        map_spec(name)  # every key has a spec (the SDs derive theirs)
    assert np.all(np.isfinite(maps["mrs_pdff_percent"][mask]))
    rebuilt = MrsModel(**fit.parameters())
    np.testing.assert_allclose(rebuilt.fit(grid, mask=mask).pdff_percent[mask], fit.pdff_percent[mask])
    assert fit.predict().shape == grid.shape
    assert len(fit.table()) == 5


def test_single_te_without_t2_and_fixed_fat_spectrum():
    fat = triglyceride_spectrum(3.0, 0.093 * 9, 16.8 + 0.75)
    model = MrsModel([0.03], 127.74, 5e-4, t2_correction=False, fat_model=fat)
    assert MrsModel(**model.parameters()).parameters() == model.parameters()
    fids, _ = simulate_marrow_fids(MrsModel(TE, 127.74, 5e-4), 1024, pdff_percent=40, ndb=3, water_t2_ms=30,
                                   fat_t2_ms=60, water_linewidth_hz=20, fat_linewidth_hz=20)
    fit = model.fit(fids[:, 2:3])
    assert np.isnan(fit.water_t2_ms[0]) and np.isnan(fit.ndb[0])
    # amplitudes at TE 30 ms: 40 e^{-30/60} / (40 e^{-30/60} + 60 e^{-30/30})
    expected = 100 * 40 * np.exp(-0.5) / (40 * np.exp(-0.5) + 60 * np.exp(-1.0))
    assert fit.pdff_percent[0] == pytest.approx(expected, abs=1e-3)
    assert fit.qc["t2_corrected"] is False


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(te_s=[0.03]), InputError, "at least 2 different echo times"),
    (dict(te_s=[10, 20]), MetadataError, "milliseconds"),
    (dict(te_s=[0.01, 0.02], spectrometer_mhz=None), MetadataError, "spectrometer_mhz"),
    (dict(te_s=[0.01, 0.02], dwell_time_s=float("nan")), MetadataError, "dwell_time_s"),
])
def test_bad_acquisition_parameters(kwargs, err, match):
    args = {"spectrometer_mhz": 123.2, "dwell_time_s": 5e-4, **kwargs}
    with pytest.raises(err, match=match):
        MrsModel(**args)


def test_bad_data():
    model = MrsModel(TE, 127.74, 5e-4)
    with pytest.raises(InputError, match="complex"):
        model.fit(np.ones((5, 256)))
    with pytest.raises(InputError, match="echo times"):
        model.fit(np.ones((4, 256), complex))
    with pytest.raises(InputError, match="non-finite"):
        model.fit(np.full((5, 256), np.nan, complex))
