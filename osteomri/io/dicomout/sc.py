"""Secondary Capture of the QC figure (an RGB PNG) for PACS viewers that show nothing else.

The capture is a picture, not a measurement: it has no frame of reference and claims no geometry
(coordinate system PATIENT with patient orientation only), and ``BurnedInAnnotation`` is ``YES`` (the figure
carries level names and ROI outlines).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from osteomri.errors import InputError
from osteomri.io.dicomout._common import SERIES_NUMBERS, finish, save
from osteomri.io.dicomout.source import DicomSource


def secondary_capture(png: str | Path, source: DicomSource, *, description: str = "osteomri QC figure"):
    """A ``highdicom.sc.SCImage`` of the PNG ``png`` in the study of ``source``."""
    import highdicom as hd
    import matplotlib.image as mpimg

    png = Path(png)
    if not png.exists():
        raise InputError(f"QC figure not found: {png.name}")
    rgba = np.asarray(mpimg.imread(str(png)))
    if rgba.dtype.kind == "f":
        rgba = np.clip(np.rint(rgba * 255.0), 0, 255)
    rgb = np.ascontiguousarray(rgba[..., :3].astype(np.uint8))
    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=source.datasets[0], pixel_array=rgb, photometric_interpretation="RGB", bits_allocated=8,
        coordinate_system="PATIENT", series_instance_uid=hd.UID(), series_number=SERIES_NUMBERS["sc"],
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="osteomri", patient_orientation=("A", "F"),
        transfer_syntax_uid="1.2.840.10008.1.2.1")
    sc.BurnedInAnnotation = "YES"
    sc.BodyPartExamined = "LSPINE"
    sc.SeriesDescription = description[:64]
    return finish(sc, source)


def write_secondary_capture(png: str | Path, source: DicomSource, target: str | Path, **kwargs) -> Path:
    return save(secondary_capture(png, source, **kwargs), Path(target))
