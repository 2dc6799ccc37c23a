"""Parametric Map objects (float pixel data + Real World Value Mapping) for the quantitative maps.

One multi-frame Parametric Map per map, on the frame of reference and voxel grid of its source series (one
frame per source slice, positions and orientation of the source), referencing the source series and study.
The pixel data are the map's float32 values as they are; voxels without a value (outside the fitted mask)
stay NaN, so that the map read back equals the NIfTI output bit for bit. The Real World Value Mapping is the
identity (slope 1, intercept 0) in the map's UCUM unit, with its coded quantity (:mod:`.codes`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from osteomri.errors import InputError
from osteomri.io.dicomout import codes
from osteomri.io.dicomout._common import SERIES_NUMBERS, equipment, finish, frame_anatomy, save
from osteomri.io.dicomout.source import DicomSource, frames_of
from osteomri.io.image import Image

PARAMETRIC_MAP_STORAGE = "1.2.840.10008.5.1.4.1.1.30"


def parametric_map(image: Image, spec, source: DicomSource, *, series_number: int | None = None,
                   series_uid: str | None = None):
    """A ``highdicom.pm.ParametricMap`` of ``image`` (the map described by the registry ``spec``: ``name``,
    ``units``, ``description``, ``suffix``, ``dicom_quantity``) on the grid of ``source``."""
    import highdicom as hd

    source.check_grid(image, f"map {spec.name}")
    data = np.asarray(image.data, dtype=np.float32)
    if data.ndim != 3:
        raise InputError(f"map {spec.name} must be 3-D to be written as a Parametric Map, got shape {data.shape}")
    finite = data[np.isfinite(data)]
    if finite.size == 0:
        raise InputError(f"map {spec.name} has no finite value: nothing to write")
    lo, hi = float(finite.min()), float(finite.max())
    p1, p99 = (float(v) for v in np.percentile(finite, [1, 99]))
    width = max(p99 - p1, 1e-6 * max(abs(p99), 1.0), 1e-12)
    mapping = hd.pm.RealWorldValueMapping(
        lut_label=spec.suffix[:16], lut_explanation=spec.description[:64],
        unit=codes.ucum(spec.units), value_range=(lo, hi), slope=1.0, intercept=0.0,
        quantity_definition=codes.quantity(spec.suffix, spec.description, spec.dicom_quantity))
    positions, orientation, spacing, gap = source.geometry()
    pm = hd.pm.ParametricMap(
        source_images=source.datasets,
        pixel_array=frames_of(data),
        series_instance_uid=series_uid or hd.UID(),
        series_number=series_number or SERIES_NUMBERS["pm"],
        sop_instance_uid=hd.UID(),
        instance_number=1,
        contains_recognizable_visual_features=False,
        real_world_value_mappings=[mapping],
        voi_lut_transformations=[hd.VOILUTTransformation(window_center=(p1 + p99) / 2, window_width=width,
                                                                   voi_lut_function="LINEAR_EXACT")],
        content_label=spec.suffix.upper().replace("-", "_")[:16],
        content_description=spec.description[:64],
        plane_positions=[hd.PlanePositionSequence("PATIENT", p) for p in positions],
        plane_orientation=hd.PlaneOrientationSequence("PATIENT", orientation),
        pixel_measures=hd.PixelMeasuresSequence(spacing, gap, gap),
        **equipment(),
    )
    pm.SeriesDescription = f"osteomri {spec.suffix} ({codes.ucum(spec.units).value})"[:64]
    frame_anatomy(pm)
    return finish(pm, source)


def write_parametric_map(image: Image, spec, source: DicomSource, target: str | Path, **kwargs) -> Path:
    """Write :func:`parametric_map` to ``target`` (atomically)."""
    return save(parametric_map(image, spec, source, **kwargs), Path(target))
