"""IBSI-1 digital phantom: every feature PyRadiomics computes against the IBSI consensus value, one by one.

Reference: Zwanenburg et al. 2020 (Radiology 295:328), reference values in ../shared/data/ibsi. Deviations
(docs/radiomics.md) are asserted with their reason rather than skipped.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from osteomri.io import load_image
from osteomri.radiomics import extract_features
from osteomri.radiomics.ibsi import ALIASES, FAMILIES, ibsi_tags, load_reference, matches_reference

pytestmark = pytest.mark.shared_data

# the IBSI tags PyRadiomics computes in 3-D (primary tags and aliases), from the name map
ALL_TAGS = sorted({t for fam, (table, _) in FAMILIES.items() for name in table for t in ibsi_tags(fam, name)})
# PCA axis lengths: population (÷N) vs sample (÷(N-1)) covariance; asserted separately below
PCA_DEVIATION = {"morph_pca_min_axis", "morph_pca_least_axis"}


@pytest.fixture(scope="module")
def phantom(shared_data):
    root = shared_data("ibsi")
    nifti = root / "ibsi_1_digital_phantom" / "nifti"
    image, mask = load_image(nifti / "image" / "phantom.nii.gz"), load_image(nifti / "mask" / "mask.nii.gz")
    table = extract_features(image, mask, settings="ibsi_digital_phantom")
    values = {}
    for tag, value in zip(table["ibsi_tag"], table["value"], strict=True):
        if tag:
            values[tag] = value
            stem = next((s for s in ALIASES if tag.startswith(s + "_3D")), None)
            if stem:
                values.update({a + tag[len(stem):]: value for a in ALIASES[stem]})
    ref = load_reference(root / "reference_values" / "ibsi_1_reference_values_digital_phantom.csv")
    return values, ref, table, int(np.asarray(mask.data).sum())


def test_all_mapped_tags_are_computed_and_in_the_reference(phantom):
    values, ref, table, _ = phantom
    assert set(ALL_TAGS) == set(values), "name map and computed features disagree"
    assert set(ALL_TAGS) <= set(ref), f"tags not in the IBSI reference: {sorted(set(ALL_TAGS) - set(ref))}"
    assert len(ALL_TAGS) >= 100


@pytest.mark.parametrize("tag", [t for t in ALL_TAGS if t not in PCA_DEVIATION])
def test_feature_matches_ibsi_consensus(phantom, tag):
    values, ref, _, _ = phantom
    reference, tolerance = ref[tag]
    assert matches_reference(values[tag], reference, tolerance), f"{values[tag]:.6g} vs {reference} ± {tolerance}"


@pytest.mark.parametrize("tag", sorted(PCA_DEVIATION))
def test_pca_axis_deviation_is_the_covariance_denominator(phantom, tag):
    """PyRadiomics: population covariance (÷N); IBSI consensus: sample covariance (÷(N-1))."""
    values, ref, _, n = phantom
    reference, tolerance = ref[tag]
    assert not matches_reference(values[tag], reference, tolerance)  # the documented deviation exists ...
    assert matches_reference(values[tag] * math.sqrt(n / (n - 1)), reference, tolerance)  # ... and is explained


def test_kurtosis_is_excess_kurtosis(phantom):
    values, ref, table, _ = phantom
    assert values["stat_kurt"] == pytest.approx(ref["stat_kurt"][0], abs=0.0006)  # -0.355
    assert table.attrs["provenance"]["conversions"]["stat_kurt"].startswith("PyRadiomics Kurtosis")


def test_reference_files_agree(shared_data):
    root = shared_data("ibsi") / "reference_values"
    a = load_reference(root / "ibsi_1_reference_values_digital_phantom.csv")
    b = load_reference(root / "ibsi_1_dig_phantom_mirp.csv")
    common = set(a) & set(b)
    assert len(common) > 400 and all(a[t] == b[t] for t in common)
