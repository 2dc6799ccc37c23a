"""The phantom's label maps, truth table and synthetic signals against independent computations."""

import numpy as np
import pytest

from osteomri.errors import InputError
from osteomri.phantom import (
    LEVEL_IDS,
    LUMBAR_LEVELS,
    TISSUES,
    make_spine_phantom,
    synthesize_dwi,
    synthesize_megre,
    synthesize_t1w,
)
from osteomri.phantom.spine import TISSUE_PARAMETERS, marrow_t1w_signal

GAMMA_BAR = 42.577478518e6  # Hz/T
REN_PPM = [0.90, 1.30, 1.60, 2.02, 2.24, 2.75, 4.20, 5.19, 5.29]
REN_AMP = [0.090, 0.584, 0.060, 0.085, 0.060, 0.015, 0.040, 0.010, 0.057]


@pytest.fixture(scope="module")
def phantom():
    return make_spine_phantom(seed=3, level_truth={"L3": {"pdff_percent": 47.0, "r2star_hz": 140.0}})


def test_truth_table_matches_label_map(phantom):
    for _, row in phantom.truth.iterrows():
        sel = phantom.level_mask(row["level"])
        assert sel.sum() > 300, f"{row['level']} has too few marrow voxels"
        for name in ("pdff_percent", "r2star_hz", "t1w_signal", "d_mm2_s", "dstar_mm2_s", "f"):
            np.testing.assert_allclose(phantom.maps[name].data[sel], row[name])
    l3 = phantom.truth.set_index("level").loc["L3"]
    assert l3["pdff_percent"] == 47.0 and l3["r2star_hz"] == 140.0
    assert l3["t1w_signal"] == pytest.approx(marrow_t1w_signal(47.0))


def test_anatomy_is_ordered_and_consistent(phantom):
    levels, tissues = phantom.levels.data, phantom.tissues.data
    centroids_z = [np.argwhere(levels == LEVEL_IDS[lv])[:, 2].mean() for lv in LUMBAR_LEVELS]
    assert np.all(np.diff(centroids_z) < 0), "L1 must be superior to L5"
    body_codes = [TISSUES[t] for t in ("marrow", "cortex", "endplate", "basivertebral_vein")]
    in_body = np.isin(tissues, body_codes)
    assert np.all(np.isin(levels[in_body], list(LEVEL_IDS.values()))), "body voxels carry a vertebra level"
    for lv in LUMBAR_LEVELS:  # every lumbar body has a vein, posterior to its marrow centroid
        vein = np.argwhere((levels == LEVEL_IDS[lv]) & (tissues == TISSUES["basivertebral_vein"]))
        marrow = np.argwhere(phantom.level_mask(lv))
        assert len(vein) > 0 and vein[:, 1].mean() < marrow[:, 1].mean()
        assert np.abs(vein[:, 0] - phantom.mid_sagittal_index).max() <= 2, "vein is a midline structure"
    # discs sit between consecutive bodies: disc below L3 is between L3 and L4
    disc = np.argwhere(levels == 100 + LEVEL_IDS["L3"])[:, 2].mean()
    l3 = np.argwhere(levels == LEVEL_IDS["L3"])[:, 2].mean()
    l4 = np.argwhere(levels == LEVEL_IDS["L4"])[:, 2].mean()
    assert l4 < disc < l3
    assert (tissues == TISSUES["cord"]).any() and (tissues == TISSUES["csf"]).sum() > 1000


def test_geometry_is_in_millimetres():
    """Halving the voxel size doubles the matrix but keeps the marrow volume (within sampling error)."""
    a = make_spine_phantom(shape=(12, 96, 128), voxel_size_mm=(4.0, 2.2, 2.25), seed=0)
    b = make_spine_phantom(shape=(24, 192, 256), voxel_size_mm=(2.0, 1.1, 1.125), seed=0)
    vol = [(p.level_mask("L3").sum() * np.prod(np.diag(p.affine)[:3])) for p in (a, b)]
    assert vol[0] == pytest.approx(vol[1], rel=0.08)


def test_megre_voxel_matches_signal_equation(phantom):
    te = np.array([1.3e-3 + 0.8e-3 * n for n in range(6)])
    img, fieldmap = synthesize_megre(phantom, te_s=te, snr=1e9, seed=1)
    assert img.data.shape == phantom.shape + (6,)
    assert np.ptp(fieldmap) >= 700, "field spans hundreds of Hz"
    idx = tuple(np.argwhere(phantom.level_mask("L3"))[10])
    pd_, ff = phantom.maps["pd"].data[idx], phantom.maps["pdff_percent"].data[idx] / 100
    r2, psi = phantom.maps["r2star_hz"].data[idx], fieldmap[idx]
    freqs = (np.array(REN_PPM) - 4.70) * GAMMA_BAR * 3.0 * 1e-6
    fat = np.array([np.sum(np.array(REN_AMP) / sum(REN_AMP) * np.exp(2j * np.pi * freqs * t)) for t in te])
    expected = (pd_ * (1 - ff) + pd_ * ff * fat) * np.exp(-r2 * te) * np.exp(2j * np.pi * psi * te)
    got = img.data[idx]
    ratio = got / expected  # the common initial phase is the only other factor
    np.testing.assert_allclose(np.abs(ratio), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.angle(ratio / ratio[0]), 0.0, atol=1e-5)
    assert img.meta["EchoTime"] == pytest.approx(te.tolist()) and img.meta["MagneticFieldStrength"] == 3.0


def test_megre_noise_level_matches_snr(phantom):
    img, _ = synthesize_megre(phantom, snr=50.0, seed=2)
    air = phantom.tissues.data == TISSUES["background"]
    noise = img.data[air]
    assert noise.real.std() == pytest.approx(1 / 50, rel=0.03)
    assert noise.imag.std() == pytest.approx(1 / 50, rel=0.03)


def test_dwi_voxel_matches_ivim_equation(phantom):
    b = np.array([0, 50, 200, 800.0])
    dwi = synthesize_dwi(phantom, bvalues_s_mm2=b, snr=1e9)
    idx = tuple(np.argwhere(phantom.level_mask("L2"))[5])
    row = phantom.truth.set_index("level").loc["L2"]
    s0 = phantom.maps["pd"].data[idx] * (1 - row["pdff_percent"] / 100)
    expected = s0 * (row["f"] * np.exp(-b * row["dstar_mm2_s"]) + (1 - row["f"]) * np.exp(-b * row["d_mm2_s"]))
    np.testing.assert_allclose(dwi.data[idx], expected, rtol=1e-5)
    assert dwi.meta["bvalues"] == b.tolist()


def test_t1w_and_vbq_truth(phantom):
    t1w = synthesize_t1w(phantom, snr=1e6)
    csf = phantom.mask("csf")
    np.testing.assert_allclose(np.median(t1w.data[csf]), TISSUE_PARAMETERS.loc["csf", "t1w_signal"], rtol=1e-4)
    by_hand = np.median([marrow_t1w_signal(p) for p in phantom.truth["pdff_percent"][:4]]) / 150.0
    assert phantom.vbq_truth == pytest.approx(by_hand)


def test_heterogeneity_keeps_level_mean():
    ph = make_spine_phantom(seed=1, heterogeneity_percent=4.0)
    for _, row in ph.truth.iterrows():
        vals = ph.maps["pdff_percent"].data[ph.level_mask(row["level"])]
        assert vals.mean() == pytest.approx(row["pdff_percent"], abs=1e-9)
        assert np.ptp(vals) == pytest.approx(8.0, rel=0.05)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"shape": (8, 8, 8)}, "field of view"),
        ({"voxel_size_mm": (1, -1, 1)}, "voxel_size_mm"),
        ({"level_truth": {"L7": {"pdff_percent": 3}}}, "unknown level"),
        ({"level_truth": {"L1": {"pdff_percent": 130}}}, "pdff_percent must lie"),
        ({"level_truth": {"L1": {"bmd": 1}}}, "unknown truth column"),
    ],
)
def test_bad_phantom_parameters(kwargs, message):
    with pytest.raises(InputError, match=message):
        make_spine_phantom(**kwargs)


def test_bad_synthesis_parameters(phantom):
    with pytest.raises(InputError, match="milliseconds"):
        synthesize_megre(phantom, te_s=[1.3, 2.1, 2.9])
    with pytest.raises(InputError, match="snr"):
        synthesize_t1w(phantom, snr=0)
    with pytest.raises(InputError, match="b-values"):
        synthesize_dwi(phantom, bvalues_s_mm2=[0, -5, 100, 200])
