"""Label presets: phantom label maps in every convention, the real SPINEPS/TotalSegmentator samples, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from osteomri.errors import InputError, UnknownLabelError
from osteomri.io.image import Image
from osteomri.io.nifti import load_nifti
from osteomri.phantom.spine import LEVEL_IDS
from osteomri.vertebrae.labels import (
    LEVEL_CODES,
    PRESETS,
    get_preset,
    phantom_labels,
    resample_labels,
    resolve_labels,
)
from osteomri.vertebrae.rois import body_geometry

CONVENTIONS = ("spineps", "spineps_subregion", "totalsegmentator", "total_mr", "totalspineseg")


def _opts(convention):
    # the phantom's lowest body is the (partial) S1; one-class subregion masks are numbered from it
    return {"lowest_level": "S1"} if convention == "spineps_subregion" else {}


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_phantom_conventions_give_the_phantom_levels(phantom, convention):
    vl = resolve_labels(phantom_labels(phantom, convention), convention, **_opts(convention))
    assert {"L1", "L2", "L3", "L4", "L5"} <= set(vl.levels)
    for level in ("L1", "L3", "L5"):
        truth_body = phantom.level_mask(level, ("marrow", "cortex", "basivertebral_vein", "endplate"))
        got = vl.vertebra(level)
        # every body voxel of the level carries the level (whole-vertebra presets add posterior elements)
        assert got[truth_body].all()
        assert not (got & (phantom.levels.data != LEVEL_IDS[level])).any()


def test_spineps_endplates_are_excluded(phantom):
    vl = resolve_labels(phantom_labels(phantom, "spineps"), "spineps")
    endplate = phantom.mask("endplate") & (phantom.levels.data < 100)
    assert vl.exclude[endplate].all() and not vl.exclude[phantom.mask("marrow")].any()


def test_unknown_preset_and_missing_level_are_clear(phantom):
    lab = phantom_labels(phantom, "spineps")
    with pytest.raises(UnknownLabelError, match="unknown label preset 'spinepz'.*spineps"):
        resolve_labels(lab, "spinepz")
    vl = resolve_labels(lab, "spineps")
    with pytest.raises(UnknownLabelError, match="C3 missing"):
        vl.require(["C3"])
    with pytest.raises(UnknownLabelError, match="no vertebra of the totalspineseg convention"):
        resolve_labels(Image(np.full((8, 8, 8), 3, np.int16), np.eye(4)), "totalspineseg")


def test_one_class_preset_without_sacrum_needs_an_anchor(phantom):
    lab = phantom_labels(phantom, "total_mr")
    data = np.asarray(lab.data).copy()
    data[data == 18] = 0
    with pytest.raises(UnknownLabelError, match="lowest_level"):
        resolve_labels(Image(data, lab.affine), "total_mr")
    vl = resolve_labels(Image(data, lab.affine), "total_mr", lowest_level="L5")
    assert vl.vertebra("L3")[phantom.level_mask("L3")].all()


def test_json_mapping(tmp_path, phantom):
    mapping = {"name": "site-x", "vertebrae": {lv: 40 + i for i, lv in enumerate(("L1", "L2", "L3", "L4", "L5"))},
               "canal": [7]}
    path = tmp_path / "map.json"
    path.write_text(json.dumps(mapping))
    data = np.zeros(phantom.shape, np.int16)
    for lv, value in mapping["vertebrae"].items():
        data[phantom.levels.data == LEVEL_IDS[lv]] = value
    data[phantom.mask("csf")] = 7
    vl = resolve_labels(Image(data, phantom.affine), str(path))
    assert vl.levels == ["L1", "L2", "L3", "L4", "L5"] and vl.canal.sum() == phantom.mask("csf").sum()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"vertebrae": {"L9": 1}}))
    with pytest.raises(UnknownLabelError, match="L9"):
        get_preset(str(bad))


def test_resampling_a_cropped_label_map_and_no_overlap(phantom):
    lab = phantom_labels(phantom, "spineps")
    crop = Image(np.asarray(lab.data)[2:10, 10:80, 5:120], lab.affine @ _shift(2, 10, 5))
    back = resample_labels(crop, lab)
    inside = np.zeros(phantom.shape, bool)
    inside[2:10, 10:80, 5:120] = True
    assert np.array_equal(np.asarray(back.data)[inside], np.asarray(lab.data)[inside])
    assert not np.asarray(back.data)[~inside].any()
    far = Image(np.asarray(lab.data), lab.affine @ _shift(0, 0, 1000))
    with pytest.raises(InputError, match="not on the image's grid"):  # refused unless resampling is asked for
        resolve_labels(far, "spineps", reference=phantom.maps["pdff_percent"])
    with pytest.raises(InputError, match="do not overlap"), pytest.warns(UserWarning, match="resampled"):
        resolve_labels(far, "spineps", reference=phantom.maps["pdff_percent"], resample=True)


def _shift(i, j, k):
    t = np.eye(4)
    t[:3, 3] = (i, j, k)
    return t


def test_presets_are_documented():
    for name, preset in PRESETS.items():
        assert preset.description, name
    assert PRESETS["totalsegmentator"].vertebrae["L3"] == 4 and PRESETS["totalsegmentator"].vertebrae["S1"] == 1
    assert PRESETS["totalspineseg"].vertebrae["L1"] == 41 and PRESETS["totalspineseg"].vertebrae["S1"] == 50
    assert LEVEL_CODES["L1"] == 20 and LEVEL_CODES["S1"] == 26


# --- the real labelled samples --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tptbox(shared_data):
    root = shared_data("spine") / "tptbox_sample_mri"
    return (load_nifti(root / "sub-mri_label-6_T2w.nii.gz"), load_nifti(root / "sub-mri_seg-vert_label-6_msk.nii.gz"),
            load_nifti(root / "sub-mri_seg-subreg_label-6_msk.nii.gz"))


def test_spineps_instance_real_sample(tptbox):
    _, vert, sub = tptbox
    vl = resolve_labels(vert, "spineps")
    assert vl.levels == ["C5", "C6", "C7"]
    raw = np.rint(np.asarray(vert.data)).astype(int)
    assert vl.exclude[np.isin(raw, [205, 206, 207])].all()  # 200+X endplates excluded
    # the body found geometrically (no subregion mask) matches SPINEPS' own body label (49 + 62)
    subr = np.rint(np.asarray(sub.data)).astype(int)
    for level, g in body_geometry(vl, vl.levels).items():
        ref = vl.vertebra(level) & np.isin(subr, [49, 62])
        dice = 2 * (g.body & ref).sum() / (g.body.sum() + ref.sum())
        assert dice > 0.95, (level, dice)
        # P,I,R storage: the frame's superior axis still points to +S, anterior to +A
        assert g.frame.si[2] > 0.8 and g.frame.ap[1] > 0.8


def test_spineps_subregion_real_sample_numbering(tptbox):
    _, vert, sub = tptbox
    inst = resolve_labels(vert, "spineps")
    vs = resolve_labels(sub, "spineps_subregion", lowest_level="C7")
    assert vs.levels == ["C5", "C6", "C7"]
    for level in vs.levels:
        codes = inst.level_map[vs.vertebra(level)]
        assert np.bincount(codes[codes > 0]).argmax() == LEVEL_CODES[level]
    assert vs.canal.any() and vs.cord.any()
    with_sub = resolve_labels(vert, "spineps", subregion=sub)
    assert with_sub.body is not None and with_sub.canal.sum() == (np.rint(np.asarray(sub.data)) == 61).sum()


def test_total_mr_real_sample(shared_data):
    root = shared_data("spine") / "totalsegmentator_example_mr"
    seg = load_nifti(root / "example_seg_mr.nii.gz")
    with pytest.raises(UnknownLabelError, match="no sacrum"):
        resolve_labels(seg, "total_mr")
    vl = resolve_labels(seg, "total_mr", lowest_level="L1")
    assert vl.levels[-1] == "L1" and len(vl.levels) >= 2
    assert vl.cord is not None and vl.cord.any() and vl.canal is None
    # levels ascend the spine: the higher level's centroid is superior (world S) to the lower one's
    s = [float((np.argwhere(vl.vertebra(lv)) @ vl.affine[2, :3]).mean()) for lv in vl.levels]
    assert s == sorted(s, reverse=True)
    # every voxel labelled as a vertebra keeps TotalSegmentator's 'vertebrae' class (19)
    raw = np.rint(np.asarray(seg.data)).astype(int)
    assert (raw[vl.level_map > 0] == 19).all()
