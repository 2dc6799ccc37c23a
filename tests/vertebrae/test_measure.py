"""ROI strategies and per-vertebra statistics against the phantom's known per-level values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from osteomri.errors import InputError, UnknownLabelError
from osteomri.io.image import Image
from osteomri.io.nifti import save_nifti
from osteomri.io.orientation import reoriented as reorient
from osteomri.phantom.spine import LEVEL_IDS, TISSUES
from osteomri.vertebrae import (
    LONG_COLUMNS,
    measure_readers,
    measure_vertebrae,
    phantom_labels,
    roi_statistics,
    rois_for,
    summarise_levels,
)
from osteomri.vertebrae.labels import LEVEL_CODES

LUMBAR = ("L1", "L2", "L3", "L4", "L5")
TOL = {"pdff_percent": 0.2, "r2star_hz": 1.0}
CONVENTIONS = ("spineps", "spineps_subregion", "totalsegmentator", "total_mr", "totalspineseg")


def _opts(convention):
    return {"lowest_level": "S1"} if convention == "spineps_subregion" else {}


def _maps(phantom):
    return {k: phantom.maps[k] for k in ("pdff_percent", "r2star_hz")}


def _assert_truth(df, truth, tol=TOL):
    assert list(df.columns) == list(LONG_COLUMNS)
    assert set(df["level"]) == set(LUMBAR)
    for row in df.itertuples():
        assert row.n_voxels >= 20, row
        assert abs(row.mean - truth.loc[row.level, row.map]) <= tol[row.map], row


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("roi", ["body", "paper"])
def test_every_convention_and_strategy_recovers_the_truth(phantom, truth, convention, roi):
    df = measure_vertebrae(_maps(phantom), phantom_labels(phantom, convention), convention, roi, exam="sub-01",
                           **_opts(convention))
    _assert_truth(df, truth)
    assert (df["exam"] == "sub-01").all() and (df["roi"] == roi).all()


@pytest.mark.parametrize("roi", ["body", "paper"])
def test_vein_with_a_very_different_value_gives_no_bias(phantom, truth, roi):
    vein = phantom.mask("basivertebral_vein")
    maps = {}
    for key, value in (("pdff_percent", 400.0), ("r2star_hz", 5000.0)):
        data = np.asarray(phantom.maps[key].data).copy()
        data[vein] = value
        maps[key] = phantom.maps[key].with_data(data)
    labels = phantom_labels(phantom, "spineps")
    _assert_truth(measure_vertebrae(maps, labels, "spineps", roi), truth)
    # the test is sensitive: without the vein exclusion the vein biases the body ROI
    if roi == "body":
        biased = measure_vertebrae(maps, labels, "spineps", roi, exclude_vein=False)
        pdff = biased[biased["map"] == "pdff_percent"].set_index("level")["mean"]
        assert (pdff - truth.loc[list(LUMBAR), "pdff_percent"]).min() > 1.0


def test_noisy_heterogeneous_maps_give_the_true_map_mean_in_the_roi(truth):
    from osteomri.phantom import make_spine_phantom

    ph = make_spine_phantom(shape=(12, 96, 128), voxel_size_mm=(4.0, 2.0, 2.25), seed=3, heterogeneity_percent=6.0)
    rng = np.random.default_rng(0)
    noisy = {k: ph.maps[k].with_data(np.asarray(ph.maps[k].data) + rng.normal(0, sd, ph.shape))
             for k, sd in (("pdff_percent", 2.0), ("r2star_hz", 5.0))}
    labels = phantom_labels(ph, "spineps")
    for roi in ("body", "paper"):
        df = measure_vertebrae(noisy, labels, "spineps", roi)
        rois = rois_for(ph.maps["pdff_percent"], labels, "spineps", roi)
        for row in df.itertuples():
            true_mean = float(np.asarray(ph.maps[row.map].data)[rois.masks[row.level]].mean())
            se = (2.0 if row.map == "pdff_percent" else 5.0) / np.sqrt(row.n_voxels)
            assert abs(row.mean - true_mean) < 4 * se, row
            assert row.sd > 0 and row.p05 < row.median < row.p95


@pytest.mark.parametrize("perm,flips", [((1, 2, 0), (True, True, False)),  # P, I, R like the TPTBox sample
                                        ((2, 0, 1), (False, False, True))])  # S, R, P
def test_other_array_orientations_give_the_same_rois(phantom, truth, perm, flips):
    labels = phantom_labels(phantom, "spineps")
    ref = measure_vertebrae(_maps(phantom), labels, "spineps", "paper")
    maps = {k: reorient(v, perm, flips) for k, v in _maps(phantom).items()}
    df = measure_vertebrae(maps, reorient(labels, perm, flips), "spineps", "paper")
    _assert_truth(df, truth)
    assert df["n_voxels"].tolist() == ref["n_voxels"].tolist()


def test_paper_roi_is_mid_sagittal_anterior_and_inside_marrow(phantom):
    labels = phantom_labels(phantom, "spineps")
    rois = rois_for(phantom.maps["pdff_percent"], labels, "spineps", "paper")
    y = (np.arange(phantom.shape[1]) - (phantom.shape[1] - 1) / 2) * 2.0
    for level in LUMBAR:
        m = rois.masks[level]
        assert len(np.unique(np.nonzero(m)[0])) == 1  # one sagittal slice
        assert (phantom.tissues.data[m] == TISSUES["marrow"]).all()
        body = phantom.level_mask(level, ("marrow", "cortex", "endplate", "basivertebral_vein"))
        sl = np.nonzero(m)[0][0]
        for k in np.unique(np.nonzero(m)[2]):  # each superior-inferior row: ROI in the anterior two thirds
            yb = y[np.nonzero(body[sl, :, k])[0]]
            y_cut = yb.min() + (yb.max() - yb.min()) / 3
            assert y[np.nonzero(m[sl, :, k])[0]].min() >= y_cut - 2.0  # within one voxel (frame tilt)


def test_missing_requested_level_and_label_free_strategies(phantom):
    labels = phantom_labels(phantom, "spineps")
    with pytest.raises(UnknownLabelError, match="T3 missing"):
        measure_vertebrae(_maps(phantom), labels, "spineps", levels=["L1", "T3"])
    with pytest.raises(InputError, match="unknown ROI strategy"):
        measure_vertebrae(_maps(phantom), labels, "spineps", roi="sphere")
    with pytest.raises(InputError, match="needs a vertebra label map"):
        measure_vertebrae(_maps(phantom), None, "spineps", roi="paper")


def test_maps_on_another_grid_are_measured_through_resampled_labels(phantom, truth):
    """A map cropped to a sub-volume (another grid): the labels are resampled onto it by world coordinates,
    said by a warning, numbers unchanged (a same-shape label map off by more than half a voxel is refused:
    test_sanity)."""
    sl = (slice(1, 11), slice(8, 90), slice(0, 128))
    shift = np.eye(4)
    shift[:3, 3] = [s.start for s in sl]
    maps = {k: Image(np.asarray(v.data)[sl], v.affine @ shift) for k, v in _maps(phantom).items()}
    with pytest.warns(UserWarning, match="resampled onto the image's grid"):
        table = measure_vertebrae(maps, phantom_labels(phantom, "spineps"), "spineps", "paper")
    _assert_truth(table, truth)


def test_roi_statistics_by_hand():
    v = np.arange(1.0, 101.0)
    s = roi_statistics(np.append(v, np.nan), voxel_volume_mm3=2.0)
    assert s["n_voxels"] == 100 and s["volume_mm3"] == 202.0
    assert s["mean"] == pytest.approx(50.5) and s["median"] == pytest.approx(50.5)
    assert s["sd"] == pytest.approx(np.std(v, ddof=1)) and s["iqr"] == pytest.approx(49.5)
    assert s["p05"] == pytest.approx(5.95) and s["p95"] == pytest.approx(95.05)


def test_summarise_levels(phantom, truth):
    df = measure_vertebrae(_maps(phantom), phantom_labels(phantom, "spineps"), "spineps", "paper", exam="sub-01")
    wide = summarise_levels(df)
    assert len(wide) == 1 and wide.loc[0, "exam"] == "sub-01"
    for m in ("pdff_percent", "r2star_hz"):
        assert wide.loc[0, f"{m}_L1-L4"] == pytest.approx(truth.loc[["L1", "L2", "L3", "L4"], m].mean(), abs=TOL[m])
        assert wide.loc[0, f"{m}_L1-L5"] == pytest.approx(truth.loc[list(LUMBAR), m].mean(), abs=TOL[m])
        assert wide.loc[0, f"{m}_L3"] == pytest.approx(truth.loc["L3", m], abs=TOL[m])
    partial = summarise_levels(df[df["level"] != "L5"])
    assert np.isnan(partial.loc[0, "pdff_percent_L1-L5"]) and np.isfinite(partial.loc[0, "pdff_percent_L1-L4"])


# --- single-click seeds ----------------------------------------------------------------------------------
def _seed_points(phantom):
    """World RAS mm of a point in the anterior marrow of each lumbar level (mid-sagittal)."""
    out = {}
    for level in LUMBAR:
        idx = np.argwhere(phantom.level_mask(level))
        c = idx.mean(axis=0)
        c[1] = idx[:, 1].mean() + 3  # anterior of the centre, away from the vein
        c[0] = phantom.mid_sagittal_index
        out[level] = phantom.affine[:3, :3] @ c + phantom.affine[:3, 3]
    return out


def test_seeds_grow_inside_the_marrow_without_labels(phantom, truth):
    seeds = _seed_points(phantom)
    df = measure_vertebrae(_maps(phantom), None, roi="seed", seeds=seeds, seed_map="pdff_percent")
    _assert_truth(df, truth)
    texts = [f"{lv}={','.join(f'{x:.3f}' for x in p)}" for lv, p in seeds.items()]
    rng = np.random.default_rng(1)
    noisy = {k: v.with_data(np.asarray(v.data) + rng.normal(0, 0.5, phantom.shape)) for k, v in _maps(phantom).items()}
    df2 = measure_vertebrae(noisy, None, roi="seed", seeds=texts)
    _assert_truth(df2, truth, tol={"pdff_percent": 0.3, "r2star_hz": 1.0})
    with pytest.raises(InputError, match="LEVEL=x,y,z"):
        measure_vertebrae(_maps(phantom), None, roi="seed", seeds=["L3:1,2,3"])


# --- reader ROIs ---------------------------------------------------------------------------------------------
def test_two_readers_with_known_offsets(phantom, truth, tmp_path):
    """Reader A draws in the upper half of each paper ROI, reader B in the lower half. The map adds +delta
    (per level) to the upper half of every body and -delta to the lower half: A reads truth + delta, B truth -
    delta, their average the truth; Bland-Altman bias A - B = 2 mean(delta)."""
    deltas = dict(zip(LUMBAR, (4.0, 4.5, 3.5, 5.0, 4.0), strict=True))
    labels = phantom_labels(phantom, "spineps")
    rois = rois_for(phantom.maps["pdff_percent"], labels, "spineps", "paper")
    z = np.arange(phantom.shape[2])
    upper_a = np.zeros(phantom.shape, np.int16)
    lower_b = np.zeros(phantom.shape, np.int16)
    offset = np.zeros(phantom.shape)
    for level in LUMBAR:
        m = rois.masks[level]
        zs = np.nonzero(m)[2]
        zc = 0.5 * (zs.min() + zs.max())
        body = phantom.levels.data == LEVEL_IDS[level]
        up = (z[None, None, :] > zc)
        offset[body & up] = deltas[level]
        offset[body & ~up] = -deltas[level]
        upper_a[m & up] = LEVEL_CODES[level]
        lower_b[m & ~up] = 1  # binary mask: levels come from the label map
    pdff = phantom.maps["pdff_percent"].with_data(np.asarray(phantom.maps["pdff_percent"].data) + offset)
    path_b = save_nifti(Image(lower_b, phantom.affine), tmp_path / "reader-B_roi.nii.gz")
    res = measure_readers({"pdff_percent": pdff}, labels, {"A": Image(upper_a, phantom.affine), "B": path_b},
                          preset="spineps")
    a = res.per_reader[res.per_reader["reader"] == "A"].set_index("level")["mean"]
    b = res.per_reader[res.per_reader["reader"] == "B"].set_index("level")["mean"]
    t = truth.loc[list(LUMBAR), "pdff_percent"]
    d = pd.Series(deltas)
    np.testing.assert_allclose(a.loc[list(LUMBAR)], t + d, atol=1e-9)
    np.testing.assert_allclose(b.loc[list(LUMBAR)], t - d, atol=1e-9)
    avg = res.averaged.set_index("level")
    np.testing.assert_allclose(avg.loc[list(LUMBAR), "mean"], t, atol=1e-9)
    assert (avg["roi"] == "reader").all() and (avg["n_readers"] == 2).all()
    ba = res.bland_altman["pdff_percent"]
    assert ba.bias == pytest.approx(2 * d.mean()) and ba.sd_diff == pytest.approx(2 * d.std(ddof=1))
    icc = res.icc.set_index("type")
    assert {"ICC1", "ICC2", "ICC3", "ICC1k", "ICC2k", "ICC3k"} <= set(icc.index)
    # a near-constant offset keeps consistency (ICC3) high and lowers absolute agreement (ICC1)
    assert icc.loc["ICC3", "icc"] > 0.95 and icc.loc["ICC1", "icc"] < icc.loc["ICC3", "icc"]
    # the same through measure_vertebrae(roi="roi")
    df = measure_vertebrae({"pdff_percent": pdff}, labels, "spineps", roi="roi",
                           reader_rois={"A": Image(upper_a, phantom.affine), "B": path_b})
    pd.testing.assert_frame_equal(df.reset_index(drop=True), res.averaged.reset_index(drop=True))


def test_reader_roi_errors(phantom):
    labels = phantom_labels(phantom, "spineps")
    with pytest.raises(InputError, match="reader ROI masks"):
        measure_readers(_maps(phantom), labels, {})
    empty = Image(np.zeros(phantom.shape, np.int16), phantom.affine)
    with pytest.raises(InputError, match="empty"):
        measure_readers(_maps(phantom), labels, {"A": empty})
    one = np.zeros(phantom.shape, np.int16)
    one[phantom.level_mask("L3")] = LEVEL_CODES["L3"]
    with pytest.raises(UnknownLabelError, match="no ROI for level"):
        measure_readers(_maps(phantom), labels, {"A": Image(one, phantom.affine)})


@pytest.mark.parametrize("shape,voxel_mm", [((16, 128, 160), (3.0, 1.6, 1.8)),  # the demo grid
                                            ((10, 96, 128), (4.0, 2.2, 2.25))])  # the small demo grid
def test_demo_grids_with_strong_lordosis(shape, voxel_mm):
    """Tilted vertebral frames on anisotropic voxels: no cortex voxel enters the body ROI (oblique distances)."""
    from osteomri.phantom import make_spine_phantom
    from osteomri.vertebrae import vbq_score

    ph = make_spine_phantom(shape=shape, voxel_size_mm=voxel_mm, seed=5, lordosis_mm=12.0)
    labels = phantom_labels(ph, "spineps")
    truth = ph.truth.set_index("level")
    for roi in ("body", "paper"):
        _assert_truth(measure_vertebrae(_maps(ph), labels, "spineps", roi), truth)
        rois = rois_for(ph.maps["pdff_percent"], labels, "spineps", roi)
        for level in LUMBAR:
            assert (ph.tissues.data[rois.masks[level]] == TISSUES["marrow"]).all()
    assert vbq_score(ph.maps["t1w_signal"], labels).value == pytest.approx(ph.vbq_truth, rel=1e-9)
