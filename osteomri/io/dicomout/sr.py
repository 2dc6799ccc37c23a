"""TID 1500 Measurement Report (Comprehensive 3D SR) of the per-vertebra measurements and the exam scores.

Structure (highdicom templates):

* one **TID 1411 volumetric ROI group per (level, map)**: tracking identifier ``"<level> <map suffix>"``,
  finding site the level's SNOMED CT vertebra, finding type Bone marrow, the ROI's segment of the osteomri SEG
  (Referenced Segment), and four TID 300 measurements — the map's coded quantity with derivation Mean,
  Median, Standard Deviation (UCUM unit of the map) and the private ``VOXELS`` count — each referencing the
  map's Parametric Map (Source of Measurement);
* one **TID 1501 group** ``"VBQ"`` (vertebral bone quality score, no units) when a VBQ was computed;
* one **TID 1501 group per screening marker** ``"screening <marker>"``: the exam-level marker value (mean
  derivation, the marker's unit), the likelihood ratio and the post-test probability of osteoporosis
  (fractions, unit ``1``).

Statistics that are NaN in the table (e.g. the SD of a one-voxel ROI) are left out, never written as numbers.
:func:`read_measurement_report` reads the numbers back as a tidy table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pydicom.dataset import Dataset

from osteomri.errors import InputError
from osteomri.io.dicomout import codes
from osteomri.io.dicomout._common import SERIES_NUMBERS, finish, save
from osteomri.io.dicomout.source import DicomSource

_STATS = (("mean", codes.MEAN), ("median", codes.MEDIAN), ("sd", codes.STANDARD_DEVIATION))


@dataclass
class MeasuredMap:
    """One measured map: its registry ``spec``, its Parametric Map ``pm``, the ``seg`` holding its ROIs
    (``roi_segments``: level -> segment number) and the UID of the series the SEG was drawn on."""

    spec: object
    pm: Dataset
    seg: Dataset
    roi_segments: dict[str, int]
    source_series_uid: str


def measurement_report(table: pd.DataFrame, maps: dict[str, MeasuredMap], source: DicomSource, *,
                       vbq: float | None = None, screening: pd.DataFrame | None = None,
                       extra_evidence: list[Dataset] | None = None):
    """A ``highdicom.sr.Comprehensive3DSR`` holding ``table`` (tidy per-vertebra table: ``level``, ``map``,
    ``n_voxels``, ``mean``, ``median``, ``sd``) for the maps in ``maps``, ``vbq`` and ``screening`` (rows of
    :func:`osteomri.stats.screening.screen_markers`). ``source``: the series whose patient/study the report
    belongs to; ``extra_evidence``: other source series' headers."""
    import highdicom as hd
    from pydicom.sr.codedict import codes as dcodes

    groups = []
    rows = table[table["map"].isin(list(maps))]
    if rows.empty and vbq is None and (screening is None or screening.empty):
        raise InputError("nothing to report: no measured map with a Parametric Map, no VBQ, no screening")
    for row in rows.itertuples(index=False):
        level, name = str(row.level), str(row.map)
        measured = maps[name]
        if level not in measured.roi_segments:
            continue
        spec = measured.spec
        concept = codes.quantity(spec.suffix, spec.description, spec.dicom_quantity)
        site = hd.sr.FindingSite(anatomic_location=codes.vertebra(level))
        ref = [hd.sr.SourceImageForMeasurement(measured.pm.SOPClassUID, measured.pm.SOPInstanceUID)]
        measurements = [
            hd.sr.Measurement(name=concept, value=float(getattr(row, stat)), unit=codes.ucum(spec.units),
                              derivation=derivation, referenced_images=ref)
            for stat, derivation in _STATS if np.isfinite(float(getattr(row, stat)))
        ]
        measurements.append(hd.sr.Measurement(name=codes.VOXEL_COUNT, value=int(row.n_voxels),
                                              unit=codes.ucum("{voxels}"), referenced_images=ref))
        groups.append(hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=f"{level} {spec.suffix}"),
            referenced_segment=hd.sr.ReferencedSegment(
                sop_class_uid=measured.seg.SOPClassUID, sop_instance_uid=measured.seg.SOPInstanceUID,
                segment_number=int(measured.roi_segments[level]),
                source_series=hd.sr.SourceSeriesForSegmentation(measured.source_series_uid)),
            finding_type=codes.BONE_MARROW, finding_sites=[site], measurements=measurements))
    if vbq is not None and np.isfinite(vbq):
        groups.append(hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="VBQ"),
            measurements=[hd.sr.Measurement(name=codes.VBQ, value=float(vbq), unit=codes.ucum("1"))]))
    for row in (screening.itertuples(index=False) if screening is not None else []):
        marker = str(row.marker)
        spec = maps[marker].spec if marker in maps else None
        unit = codes.ucum(spec.units) if spec is not None else codes.ucum("1")
        values = [(codes.MARKER_VALUE, row.value, unit),
                  (codes.LIKELIHOOD_RATIO, row.likelihood_ratio, codes.ucum("1")),
                  (codes.POSTTEST_PROBABILITY, row.posttest_probability, codes.ucum("1"))]
        groups.append(hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=f"screening {marker}"),
            measurements=[hd.sr.Measurement(name=c, value=float(v), unit=u, derivation=codes.MEAN
                                            if c is codes.MARKER_VALUE else None)
                          for c, v, u in values if np.isfinite(float(v))]))
    observer = hd.sr.ObserverContext(
        observer_type=dcodes.cid270.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=hd.UID(), name="osteomri", manufacturer_name="osteomri", model_name="osteomri"))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=dcodes.cid100.MultiparametricMRI, imaging_measurements=groups)
    segs = {str(m.seg.SOPInstanceUID): m.seg for m in maps.values()}
    evidence = [*source.datasets, *segs.values(), *(m.pm for m in maps.values()), *(extra_evidence or [])]
    sr = hd.sr.Comprehensive3DSR(
        evidence=evidence, content=report[0], series_instance_uid=hd.UID(),
        series_number=SERIES_NUMBERS["sr"], sop_instance_uid=hd.UID(), instance_number=1,
        manufacturer="osteomri", is_complete=True, is_final=False, is_verified=False)
    sr.SeriesDescription = "osteomri per-vertebra measurements"
    return finish(sr, source)


def write_measurement_report(target: str | Path, *args, **kwargs) -> Path:
    return save(measurement_report(*args, **kwargs), Path(target))


# --- reading back -----------------------------------------------------------------------------------------
def _code(item: Dataset, keyword: str) -> tuple[str, str]:
    seq = item.get(keyword)
    return (str(seq[0].CodeValue), str(seq[0].CodeMeaning)) if seq else ("", "")


def read_measurement_report(path: str | Path) -> pd.DataFrame:
    """Every numeric measurement of an osteomri TID 1500 report: columns ``group`` (tracking identifier),
    ``segment`` (referenced segment number or NaN), ``quantity`` (code value), ``derivation`` (meaning or ""),
    ``value``, ``unit`` (UCUM code), ``source_sop`` (referenced Parametric Map SOP Instance UID or "")."""
    import pydicom

    ds = pydicom.dcmread(str(path))
    rows = []

    def walk(items, group: str, segment: float) -> None:
        for item in items:
            name = _code(item, "ConceptNameCodeSequence")
            if name[0] == "125007":  # Measurement Group
                inner = item.get("ContentSequence", [])
                group = next((str(i.TextValue) for i in inner if _code(i, "ConceptNameCodeSequence")[0] == "112039"),
                             "")
                segment = next((float(i.ReferencedSOPSequence[0].ReferencedSegmentNumber) for i in inner
                                if i.ValueType == "IMAGE" and "ReferencedSegmentNumber" in i.ReferencedSOPSequence[0]),
                               np.nan)
            if item.ValueType == "NUM":
                value = item.MeasuredValueSequence[0]
                inner = item.get("ContentSequence", [])
                derivation = next((_code(i, "ConceptCodeSequence")[1] for i in inner
                                   if _code(i, "ConceptNameCodeSequence")[0] == "121401"), "")
                source_sop = next((str(i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID) for i in inner
                                   if i.ValueType == "IMAGE"), "")
                rows.append({"group": group, "segment": segment, "quantity": name[0], "derivation": derivation,
                             "value": float(value.NumericValue),
                             "unit": str(value.MeasurementUnitsCodeSequence[0].CodeValue), "source_sop": source_sop})
            if "ContentSequence" in item:
                walk(item.ContentSequence, group, segment)

    walk(ds.get("ContentSequence", []), "", np.nan)
    return pd.DataFrame(rows, columns=["group", "segment", "quantity", "derivation", "value", "unit", "source_sop"])
