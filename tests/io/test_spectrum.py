"""MR spectroscopy reading: the five real vendor files, NIfTI-MRS round trip, echo series, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from osteomri.errors import InputError
from osteomri.io.spectrum import Spectrum, combine_echoes, load_series, load_spectrum
from osteomri.io.spectrum_processing import align_averages, combine_coils, eddy_current_correct
from osteomri.models.mrs.basis import ppm_axis, spectrum

pytest.importorskip("nifti_mrs")
pytest.importorskip("spec2nii")

# header values stated by the data README (TE 30 ms, TR 2000 ms, PRESS; 123.2 / 127.8 MHz)
REAL = {
    "SVS_30.rda": (123.2, 1024, 64),
    "SVS_30.IMA": (123.2, 1024, None),
    "SVS_XA60.dcm": (123.3, 1024, 80),
    "philips_W.SDAT": (127.8, 1024, 128),
    "philips_WS.SPAR": (127.8, 1024, 128),
}


@pytest.mark.shared_data
@pytest.mark.parametrize("name", sorted(REAL))
def test_real_vendor_files_load_with_their_header_values(shared_data, name):
    mhz, n_points, averages = REAL[name]
    s = load_spectrum(shared_data("mrs") / name)
    assert s.fids.shape == (1, n_points) and np.iscomplexobj(s.fids)
    np.testing.assert_allclose(s.te_s, [0.030])
    assert s.tr_s == pytest.approx(2.0)
    assert s.spectrometer_mhz == pytest.approx(mhz, abs=0.06)
    assert s.sequence == "press"
    assert s.averages == averages
    assert len(s.voxel_size_mm) == 3 and all(v > 0 for v in s.voxel_size_mm)
    assert not any(k.startswith("Patient") for k in s.meta)
    # water (these are water-unsuppressed or weakly suppressed phantoms) lies at 4.7 ppm in our convention
    ax = ppm_axis(s.n_points, s.dwell_time_s, s.spectrometer_mhz)
    assert ax[np.argmax(np.abs(spectrum(s.fids[0])))] == pytest.approx(4.70, abs=0.1)


@pytest.mark.shared_data
def test_philips_metabolites_lie_where_nifti_mrs_puts_them(shared_data):
    """NAA 2.01 ppm is the largest peak away from water of the water-suppressed phantom (convention check)."""
    s = load_spectrum(shared_data("mrs") / "philips_WS.SDAT")
    x = s.fids[0] * np.exp(-np.pi * 4 * np.arange(s.n_points) * s.dwell_time_s)
    ax = ppm_axis(s.n_points, s.dwell_time_s, s.spectrometer_mhz)
    sp = np.abs(spectrum(x))
    away = (np.abs(ax - 4.7) > 0.5) & (ax > 0) & (ax < 9.4)
    assert ax[away][np.argmax(sp[away])] == pytest.approx(2.01, abs=0.06)


@pytest.mark.shared_data
def test_vendor_pair_and_partner_errors(shared_data, tmp_path):
    one = tmp_path / "lonely.SDAT"
    one.write_bytes((shared_data("mrs") / "philips_W.SDAT").read_bytes())
    with pytest.raises(InputError, match="lonely.SDAT.*SPAR"):
        load_spectrum(one)
    bad = tmp_path / "x.rda"
    bad.write_text("not a spectrum")
    with pytest.raises(InputError, match="x.rda"):
        load_spectrum(bad)
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    with pytest.raises(InputError, match="notes.txt"):
        load_spectrum(txt)


def _spec(te, n=256, mhz=123.2, dwell=5e-4, name="a"):
    fid = np.exp((2j * np.pi * -300 - 30) * np.arange(n) * dwell)[None, :]
    return Spectrum(fids=fid, te_s=np.array([te]), dwell_time_s=dwell, spectrometer_mhz=mhz, sequence="steam",
                    sources=[name])


def test_echo_series_sorted_and_mismatches_refused():
    s = combine_echoes([_spec(0.02, name="b"), _spec(0.01, name="a")])
    np.testing.assert_allclose(s.te_s, [0.01, 0.02])
    assert s.fids.shape == (2, 256)
    with pytest.raises(InputError, match="mismatched echo series.*points"):
        combine_echoes([_spec(0.01), _spec(0.02, n=512)])
    with pytest.raises(InputError, match="mismatched echo series.*MHz"):
        combine_echoes([_spec(0.01), _spec(0.02, mhz=63.9)])
    with pytest.raises(InputError, match="repeated echo time"):
        combine_echoes([_spec(0.01), _spec(0.01)])


def test_nifti_mrs_multi_te_with_coils_and_averages(tmp_path):
    """A NIfTI-MRS file with coils, averages (shifted and phased) and an echo-time dimension."""
    from nifti_mrs.create_nmrs import gen_nifti_mrs

    rng = np.random.default_rng(0)
    n, dwell, te = 512, 5e-4, [0.01, 0.03]
    t = np.arange(n) * dwell
    base = np.stack([np.exp((-2j * np.pi * 434 - np.pi * 20) * t) * np.exp(-ti / 0.05) for ti in te], -1)
    shifts, phases = rng.uniform(-3, 3, 8), rng.uniform(-1, 1, 8)
    coil_gain = np.array([1.0, 0.5 * np.exp(1j)])
    jitter = np.exp(2j * np.pi * shifts[None, None, :, None] * t[:, None, None, None]
                    + 1j * phases[None, None, :, None])
    data = base[:, None, None, :] * coil_gain[None, :, None, None] * jitter
    data = data.reshape(1, 1, 1, n, 2, 8, 2)
    img = gen_nifti_mrs(data.astype(np.complex64), dwell, 123.2, dim_tags=["DIM_COIL", "DIM_DYN", "DIM_INDIRECT_0"])
    img.set_dim_tag(6, "DIM_INDIRECT_0", header={"EchoTime": te})
    img.add_hdr_field("EchoTime", te[0])
    img.add_hdr_field("SequenceName", "svs_st")
    path = tmp_path / "series.nii.gz"
    img.save(path)
    s = load_spectrum(path)
    assert s.fids.shape == (2, n) and s.sequence == "steam"
    np.testing.assert_allclose(s.te_s, te)
    assert any("coils combined" in p for p in s.processing) and any("aligned" in p for p in s.processing)
    # after alignment the averages add coherently: the echoes keep their exp(-TE/50 ms) ratio and line shape
    ratio = np.abs(s.fids[1, :50]) / np.abs(s.fids[0, :50])
    np.testing.assert_allclose(ratio, np.exp(-0.02 / 0.05), rtol=1e-3)
    shape = np.abs(s.fids[0]) / np.abs(s.fids[0, 0])
    np.testing.assert_allclose(shape[:200], np.exp(-np.pi * 20 * t[:200]), atol=0.02)
    assert load_series([tmp_path]).fids.shape == (2, n)


def test_align_and_combine_recover_a_known_signal():
    n, dwell = 1024, 5e-4
    t = np.arange(n) * dwell
    fid = np.exp((-2j * np.pi * 200 - np.pi * 10) * t)
    shifts = np.array([0.0, 2.0, -3.5, 1.2])
    phases = np.array([0.0, 0.7, -1.2, 2.0])
    avg = fid[:, None] * np.exp(2j * np.pi * shifts * t[:, None] + 1j * phases)
    data = avg.reshape(1, 1, 1, n, 4)
    aligned, _ = align_averages(data, dwell)
    a = aligned[0, 0, 0]
    # the averages now agree with each other (to the 0.1 Hz search grid) and add without loss
    for k in range(1, 4):
        assert np.abs(np.vdot(a[:, 0], a[:, k])) / (np.linalg.norm(a[:, 0]) * np.linalg.norm(a[:, k])) > 0.999
    np.testing.assert_allclose(np.abs(a.mean(-1))[:200], np.abs(fid)[:200], atol=0.01)
    raw = np.abs(avg.mean(-1))[:200]
    assert np.max(np.abs(raw - np.abs(fid)[:200])) > 0.1  # without alignment they do not
    coils = fid[:, None] * np.array([1.0, 0.3j])[None, :]
    comb, _ = combine_coils((coils + 0.001 * (np.random.default_rng(1).standard_normal((n, 2)))).reshape(1, 1, 1, n, 2))
    assert np.abs(np.vdot(comb[0, 0, 0], fid)) / (np.linalg.norm(comb) * np.linalg.norm(fid)) > 0.999


def test_eddy_current_phase_removed_by_water_reference():
    n, dwell = 1024, 5e-4
    t = np.arange(n) * dwell
    ecc = 3.0 * np.exp(-t / 0.02)                       # eddy-current phase (rad), decaying
    clean = np.exp(-np.pi * 10 * t + 0.4j) + 0.5 * np.exp((-2j * np.pi * 434 - np.pi * 15) * t)
    fids = np.stack([clean * np.exp(1j * ecc)] * 2)     # two echoes, same distortion
    water = np.exp(-np.pi * 12 * t + 1j * (0.2 + ecc))  # the reference: same distortion, own phase and width
    corrected, note = eddy_current_correct(fids, water)
    np.testing.assert_allclose(corrected[1], clean * np.exp(1j * ecc[0]), atol=1e-9)
    assert "Klose" in note
    with pytest.raises(InputError):
        eddy_current_correct(fids, water[:100])
