"""DICOM Segmentation (SEG) objects into a label :class:`~osteomri.io.image.Image` (read with highdicom).

The one place that reads DICOM SEG: the label values are the segments' positions ``1..n`` in the file's
``SegmentSequence``, their labels are in ``meta["SegmentLabels"]`` (``{"1": "L3 ROI", ...}``); what a label means
(a vertebral level, ...) is for the caller. The affine is converted from DICOM LPS to RAS+ mm.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from osteomri.errors import InputError
from osteomri.io.image import Image

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def load_dicom_seg(path: str | os.PathLike) -> Image:
    """All segments of the SEG file ``path`` as one label image (int16; 0 = background)."""
    import highdicom as hd

    path = Path(path)
    if not path.exists():
        raise InputError(f"DICOM SEG file not found: {path}")
    try:
        seg = hd.seg.segread(str(path))
    except Exception as exc:  # pydicom/highdicom raise several types
        raise InputError(f"cannot read {path.name} as DICOM SEG: {exc}") from exc
    descriptions = list(seg.SegmentSequence)
    numbers = [int(d.SegmentNumber) for d in descriptions]
    vol = seg.get_volume(segment_numbers=numbers, combine_segments=True, relabel=True)
    labels = {str(i): str(d.SegmentLabel) for i, d in enumerate(descriptions, start=1)}
    return Image(np.asarray(vol.array).astype(np.int16), LPS_TO_RAS @ np.asarray(vol.affine),
                 {"Source": "DICOM SEG", "SegmentLabels": labels})
