"""Automatic vertebra labelling (osteomri.vertebrae.autolabel) on real lumbar MR and on the phantom."""

from __future__ import annotations

import numpy as np
import pytest

from osteomri.errors import InputError
from osteomri.io import load_image
from osteomri.io.image import Image
from osteomri.io.orientation import reoriented
from osteomri.phantom.spine import LEVEL_IDS, crop_si, make_spine_phantom
from osteomri.vertebrae.autolabel import AmbiguousLevelsError, label_vertebrae

LUMBAR = {f"L{i}": 19 + i for i in range(1, 6)}
QUICK_CASES = ("vb3_03", "vb3_07")
ALL_CASES = (*[f"vb3_{i:02d}" for i in range(1, 11)], "vb2_05", "vb2_06")


def _case(shared_data, name):
    root = shared_data("spine/lumbar_labelled")
    return load_image(root / f"{name}_image.nii.gz"), np.asarray(load_image(root / f"{name}_labels.nii.gz").data)


def _score(pred: np.ndarray, truth: np.ndarray) -> tuple[int, list[float]]:
    """Bodies carrying the right level (majority vote inside the true body) and per-level Dice."""
    right, dice = 0, []
    for code in LUMBAR.values():
        t = truth == code
        vals, counts = np.unique(pred[t], return_counts=True)
        right += int(vals[np.argmax(counts)] == code)
        p = pred == code
        dice.append(2 * float((t & p).sum()) / float(t.sum() + p.sum()))
    return right, dice


def _contrast(name: str) -> str:
    return "water" if name.startswith("vb3") else "t2w"


def _flagged_or_right(shared_data, name):
    image, truth = _case(shared_data, name)
    try:
        out = label_vertebrae(image, contrast=_contrast(name))
    except AmbiguousLevelsError as exc:
        assert "lowest_level" in str(exc) and exc.evidence["discs_found"] >= 0
        return None
    except InputError as exc:  # nothing segmented: an error, no label map (safe, reported)
        assert "vertebral body" in str(exc) or "column" in str(exc)
        return None
    right, _ = _score(np.asarray(out.data), truth)
    assert right == 5, f"{name}: {5 - right} lumbar bodies silently mislabelled"
    return out


@pytest.mark.parametrize("name", QUICK_CASES)
def test_real_case_is_flagged_or_labelled_right(shared_data, name):
    """Never a silent off-by-one: each visible case is either flagged or carries L1–L5 right."""
    _flagged_or_right(shared_data, name)


@pytest.mark.slow
@pytest.mark.parametrize("name", [c for c in ALL_CASES if c not in QUICK_CASES])
def test_every_real_case_is_flagged_or_labelled_right(shared_data, name):
    _flagged_or_right(shared_data, name)


def test_labelled_case_has_confidence_and_evidence(shared_data):
    out = _flagged_or_right(shared_data, "vb3_03")
    assert out is not None  # vb3_03: sacrum region in view, regular discs -> labelled
    info = out.meta["VertebraLabelling"]
    assert set(LUMBAR) <= set(info["confidence"]) and all(0 <= c <= 1 for c in info["confidence"].values())
    assert info["evidence"]["lowest_disc_is_lumbosacral"] and info["automatic"]
    assert out.data.dtype == np.uint8 and out.data.shape == out.data.shape


@pytest.mark.xfail(strict=True, reason="issue #14 targets not met yet: 30 of 60 visible L1-L5 bodies labelled "
                   "(the rest flagged, none mislabelled), body Dice 0.73-0.85 (median 0.81), below 0.90")
def test_issue_targets_on_visible_cases(shared_data):
    right_total, dice_all = 0, []
    for name in ALL_CASES:
        image, truth = _case(shared_data, name)
        try:
            out = label_vertebrae(image, contrast=_contrast(name))
        except InputError:  # flagged (AmbiguousLevelsError) or nothing segmented: counts as not right
            continue
        right, dice = _score(np.asarray(out.data), truth)
        right_total += right
        dice_all += dice
    assert right_total >= 0.95 * 5 * len(ALL_CASES)
    assert np.median(dice_all) >= 0.90


def test_lowest_level_names_the_body_above_the_lowest_disc(shared_data):
    image, truth = _case(shared_data, "vb3_03")
    auto = np.asarray(label_vertebrae(image, contrast="water").data)
    shifted = np.asarray(label_vertebrae(image, contrast="water", lowest_level="L4").data)
    # same bodies, every name moved up by one level
    for code in LUMBAR.values():
        assert np.array_equal(auto == code, shifted == code - 1)


def test_orientation_is_read_from_the_affine(shared_data):
    image, _ = _case(shared_data, "vb3_03")
    ref = np.asarray(label_vertebrae(image, contrast="water").data)
    flipped = reoriented(image, (2, 0, 1), (True, False, True))
    got = label_vertebrae(flipped, contrast="water")
    # compare in world space: the same voxel centres carry the same labels
    ijk = np.argwhere(ref > 0)[::97]
    world = ijk @ image.affine[:3, :3].T + image.affine[:3, 3]
    inv = np.linalg.inv(flipped.affine)
    ijk2 = np.rint(world @ inv[:3, :3].T + inv[:3, 3]).astype(int)
    agree = np.mean(np.asarray(got.data)[tuple(ijk2.T)] == ref[tuple(ijk.T)])
    assert agree > 0.97, agree


def test_sacrum_cut_off_is_flagged_not_guessed():
    phantom = crop_si(make_spine_phantom(), (-75.0, 95.0))  # cut through L5 and T12: no sacrum in view
    water = phantom.maps["pd"].with_data(phantom.maps["pd"].data * (1 - phantom.maps["pdff_percent"].data / 100))
    with pytest.raises(AmbiguousLevelsError, match="lowest_level"):
        label_vertebrae(water, contrast="water")


def test_bad_inputs_give_one_clear_error():
    with pytest.raises(InputError, match="contrast"):
        label_vertebrae(Image(np.ones((8, 200, 200)), np.eye(4)), contrast="ct")
    with pytest.raises(InputError, match="empty"):
        label_vertebrae(Image(np.zeros((8, 200, 200)), np.eye(4)))
    with pytest.raises(InputError, match="too small"):
        label_vertebrae(Image(np.ones((8, 20, 20)), np.eye(4)))


# --- phantom variants: the generator options do what they say --------------------------------------------
def test_phantom_variants_change_the_anatomy_as_asked():
    base = make_spine_phantom()
    six = make_spine_phantom(n_lumbar=6)
    four = make_spine_phantom(n_lumbar=4)
    assert LEVEL_IDS["L6"] in six.levels.data and LEVEL_IDS["L6"] not in base.levels.data
    assert LEVEL_IDS["L5"] not in four.levels.data and LEVEL_IDS["L4"] in four.levels.data
    sco = make_spine_phantom(scoliosis_mm=8.0)
    x = sco.tissues.affine[0, 0] * (np.arange(sco.shape[0]) - (sco.shape[0] - 1) / 2)

    def x_centre(ph):
        m = ph.level_mask("L3", ("marrow", "cortex", "endplate", "basivertebral_vein"))
        return float((m.sum(axis=(1, 2)) * x).sum() / m.sum())

    assert x_centre(sco) - x_centre(base) == pytest.approx(8.0 * (1 - 0), abs=1.6)
    wedge = make_spine_phantom(wedge_fracture={"L2": 0.4})
    m = wedge.level_mask("L2", ("marrow", "cortex", "endplate", "basivertebral_vein"))
    heights = m.sum(axis=2)[wedge.mid_sagittal_index]  # z extent per AP column
    front, back = heights[heights > 0][-3:].mean(), heights[heights > 0][:3].mean()
    assert front < 0.8 * back  # anterior wall lower than the posterior wall (y grows anteriorly)
    degen = make_spine_phantom(degenerated_discs=True, disc_height_mm=5.0)
    disc = degen.mask("disc")
    assert np.allclose(degen.maps["pd"].data[disc], 0.45)
    assert disc.sum() < 0.7 * base.mask("disc").sum()
    with pytest.raises(InputError):
        make_spine_phantom(n_lumbar=7)


def _water(phantom):
    return phantom.maps["pd"].with_data(phantom.maps["pd"].data * (1 - phantom.maps["pdff_percent"].data / 100))


def _phantom_score(phantom, labels):
    body = phantom.mask("marrow", "cortex", "endplate", "basivertebral_vein")
    right, dice = 0, []
    for level in ("L1", "L2", "L3", "L4", "L5"):
        truth = (phantom.levels.data == LEVEL_IDS[level]) & body
        vals, counts = np.unique(labels[truth], return_counts=True)
        right += int(vals[np.argmax(counts)] == LEVEL_IDS[level])
        pred = labels == LEVEL_IDS[level]
        dice.append(2 * float((truth & pred).sum()) / float(truth.sum() + pred.sum()))
    return right, dice


def test_default_phantom_with_lowest_level_is_labelled_right():
    phantom = make_spine_phantom()
    out = label_vertebrae(_water(phantom), contrast="water", lowest_level="L5")
    right, dice = _phantom_score(phantom, np.asarray(out.data))
    assert right == 5 and np.median(dice) >= 0.90, dice


VARIANTS = {
    "lordosis": {"lordosis_mm": 14.0}, "scoliosis": {"scoliosis_mm": 8.0}, "four_lumbar": {"n_lumbar": 4},
    "six_lumbar": {"n_lumbar": 6}, "wedge_L2": {"wedge_fracture": {"L2": 0.4}},
    "degenerated_discs": {"degenerated_discs": True, "disc_height_mm": 5.0},
    "fatty_marrow": {"level_truth": {lv: {"pdff_percent": 80.0} for lv in LUMBAR}},
    "red_marrow": {"level_truth": {lv: {"pdff_percent": 15.0} for lv in LUMBAR}},
}


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("contrast", ["water", "t1w"])
def test_phantom_variants_are_flagged_or_labelled_right(variant, contrast):
    """The phantom's sacrum is a lumbar-like box without sacral slope, so the count from the sacrum is
    ambiguous: every variant must be flagged (or, if ever named, named right) — never a silent off-by-one."""
    phantom = make_spine_phantom(**VARIANTS[variant])
    image = _water(phantom) if contrast == "water" else phantom.maps["t1w_signal"]
    try:
        out = label_vertebrae(image, contrast=contrast)
    except AmbiguousLevelsError:
        return
    except InputError as exc:  # nothing segmented: an error, not a label map
        assert "vertebral body" in str(exc) or "column" in str(exc)
        return
    right, _ = _phantom_score(phantom, np.asarray(out.data))
    assert right == 5 - (variant == "four_lumbar")
