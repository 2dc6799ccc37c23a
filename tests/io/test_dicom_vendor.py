"""Vendor PDFF / R2* map series: identification, scaling rules, units. Series written by ``dicom_factory``."""

from __future__ import annotations

import dicom_factory as fac
import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from osteomri.errors import InputError
from osteomri.io.dicom_vendor import load_vendor_map

SHAPE = (7, 6, 3)


@pytest.fixture
def pdff_percent():
    """A known PDFF map in percent with marrow-like values and subcutaneous fat (~95 %)."""
    rng = np.random.default_rng(1)
    ff = rng.uniform(5, 60, SHAPE)
    ff[0] = 95.0
    return ff


def test_ge_ideal_iq_fat_fraction_per_mille(tmp_path, pdff_percent):
    spec = fac.SeriesSpec(manufacturer="GE MEDICAL SYSTEMS", description="FatFrac: IDEAL IQ",
                          image_type={"": ["DERIVED", "PRIMARY", "OTHER"]})
    fac.write_classic_series(tmp_path, {"": np.round(pdff_percent * 10)}, fac.Geometry(), spec)
    img = load_vendor_map(tmp_path)
    assert img.data.shape == SHAPE
    np.testing.assert_allclose(img.data, pdff_percent, atol=0.05 + 1e-6)
    assert img.meta["Quantity"] == "pdff_percent" and img.meta["Units"] == "percent"
    assert img.meta["VendorMap"] == "GE IDEAL-IQ"
    assert "/10" in img.meta["ScalingRule"]
    np.testing.assert_allclose(img.affine, fac.expected_affine_ras(fac.Geometry()), atol=1e-5)
    assert "PatientName" not in img.meta


def test_ge_ideal_iq_r2star_hz(tmp_path):
    r2s = np.random.default_rng(2).uniform(20, 400, SHAPE).round()
    spec = fac.SeriesSpec(manufacturer="GE MEDICAL SYSTEMS", description="R2* map: IDEAL IQ",
                          image_type={"": ["DERIVED", "PRIMARY", "OTHER"]})
    fac.write_classic_series(tmp_path, {"": r2s}, fac.Geometry(), spec)
    img = load_vendor_map(tmp_path)
    np.testing.assert_allclose(img.data, r2s)
    assert img.meta["Quantity"] == "r2star_hz" and img.meta["Units"] == "Hz"


def test_siemens_dixon_ff_by_image_type_percent(tmp_path, pdff_percent):
    spec = fac.SeriesSpec(manufacturer="SIEMENS", description="q-Dixon_3D",
                          image_type={"": ["DERIVED", "PRIMARY", "DIXON", "FF"]})
    fac.write_classic_series(tmp_path, {"": np.round(pdff_percent)}, fac.Geometry(), spec)
    img = load_vendor_map(tmp_path)
    np.testing.assert_allclose(img.data, np.round(pdff_percent))
    assert img.meta["VendorMap"] == "Siemens q-Dixon/LiverLab"
    assert "percent as stored" in img.meta["ScalingRule"]
    assert "ImageType" in img.meta["Identification"]
    # a site-specific override: the caller's factor replaces the range rule
    forced = load_vendor_map(tmp_path, scale=0.5)
    np.testing.assert_allclose(forced.data, 0.5 * np.round(pdff_percent))


def test_real_world_value_mapping_in_percent_wins(tmp_path, pdff_percent):
    def edit(ds, comp, k, e):
        unit = Dataset()
        unit.CodeValue, unit.CodingSchemeDesignator, unit.CodeMeaning = "%", "UCUM", "percent"
        item = Dataset()
        item.MeasurementUnitsCodeSequence = DicomSequence([unit])
        item.RealWorldValueSlope, item.RealWorldValueIntercept = 0.05, -1.0
        item.RealWorldValueFirstValueMapped, item.RealWorldValueLastValueMapped = 0, 4095
        ds.RealWorldValueMappingSequence = DicomSequence([item])

    stored = np.round((pdff_percent + 1.0) / 0.05)
    spec = fac.SeriesSpec(manufacturer="SIEMENS", description="LiverLab PDFF", slope=3.0, intercept=7.0)
    fac.write_classic_series(tmp_path, {"": stored}, fac.Geometry(), spec, edit=edit)
    img = load_vendor_map(tmp_path)
    np.testing.assert_allclose(img.data, stored * 0.05 - 1.0, atol=1e-4)
    assert "RealWorldValueMapping" in img.meta["ScalingRule"]


def test_philips_mdixon_quant_enhanced_fraction_frames(tmp_path, pdff_percent):
    """One enhanced file holding water, fat and fat-fraction frames; FF stored as a fraction (slope 0.001)."""
    water = np.full(SHAPE, 800.0)
    fat = np.full(SHAPE, 300.0)
    types = {"W": ["ORIGINAL", "PRIMARY", "DIXON", "WATER"], "F": ["ORIGINAL", "PRIMARY", "DIXON", "FAT"],
             "FF": ["ORIGINAL", "PRIMARY", "DIXON", "FAT_FRACTION"]}
    stored_ff = np.round(pdff_percent * 10)  # fraction x 1000
    spec = fac.SeriesSpec(manufacturer="Philips Medical Systems", description="mDIXON Quant",
                          image_type=types, slope={"FF": 0.001, "W": 1.0, "F": 1.0})
    path = fac.write_enhanced_series(tmp_path / "mdixon.dcm", {"W": water, "F": fat, "FF": stored_ff},
                                     fac.Geometry(), spec)
    img = load_vendor_map(path)
    np.testing.assert_allclose(img.data, stored_ff / 10, atol=1e-4)
    assert img.meta["VendorMap"] == "Philips mDixon-Quant"
    assert "x100" in img.meta["ScalingRule"]


def test_unrecognised_series_and_forced_quantity(tmp_path):
    spec = fac.SeriesSpec(description="DWI DIFF b800", image_type={"": ["ORIGINAL", "PRIMARY", "DIFFUSION"]})
    vals = np.full(SHAPE, 42.0)
    fac.write_classic_series(tmp_path, {"": vals}, fac.Geometry(), spec)
    with pytest.raises(InputError, match="not a recognised vendor fat-fraction or R2\\* map"):
        load_vendor_map(tmp_path)
    img = load_vendor_map(tmp_path, quantity="r2star")
    np.testing.assert_allclose(img.data, vals)
    with pytest.raises(InputError, match="unknown vendor map quantity 't2star'"):
        load_vendor_map(tmp_path, quantity="t2star")
