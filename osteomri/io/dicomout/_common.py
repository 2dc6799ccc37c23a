"""What every result object shares: equipment, series numbers, identity finish, atomic save."""

from __future__ import annotations

from pathlib import Path

from pydicom.dataset import Dataset

from osteomri._version import __version__
from osteomri.io.dicomout.identity import deidentification_attributes
from osteomri.io.dicomout.source import DicomSource
from osteomri.io.provenance import atomic_path

#: Series numbers of the results (away from scanner series numbers).
SERIES_NUMBERS = {"pm": 9100, "seg": 9200, "sr": 9300, "sc": 9400}


def equipment() -> dict:
    """The Enhanced General Equipment attributes highdicom requires (the software is the device)."""
    return {"manufacturer": "osteomri", "manufacturer_model_name": "osteomri",
            "software_versions": __version__, "device_serial_number": "osteomri"}


def finish(ds: Dataset, source: DicomSource) -> Dataset:
    """Common last touches: de-identified sources mark their results and date them on the (shifted) study date
    instead of today."""
    if source.pseudonymized:
        deidentification_attributes(ds)
        study_date = str(source.datasets[0].get("StudyDate", "") or "")
        study_time = str(source.datasets[0].get("StudyTime", "") or "")
        for keywords, value in ((("ContentDate", "SeriesDate", "InstanceCreationDate"), study_date),
                                (("ContentTime", "SeriesTime", "InstanceCreationTime"), study_time)):
            for keyword in keywords:
                if keyword in ds and value:
                    setattr(ds, keyword, value)
    return ds


def frame_anatomy(ds: Dataset) -> None:
    """Shared Frame Anatomy functional group: lumbar spine, unpaired (what laterality conditions ask for)."""
    from pydicom.sequence import Sequence as DicomSequence

    from osteomri.io.dicomout.codes import LUMBAR_SPINE

    region = Dataset()
    region.CodeValue, region.CodingSchemeDesignator, region.CodeMeaning = (LUMBAR_SPINE.value,
                                                                           LUMBAR_SPINE.scheme_designator,
                                                                           LUMBAR_SPINE.meaning)
    anatomy = Dataset()
    anatomy.AnatomicRegionSequence = DicomSequence([region])
    anatomy.FrameLaterality = "U"
    ds.SharedFunctionalGroupsSequence[0].FrameAnatomySequence = DicomSequence([anatomy])
    ds.BodyPartExamined = "LSPINE"


def save(ds: Dataset, target: Path) -> Path:
    """Write ``ds`` as a DICOM file atomically."""
    target = Path(target)
    with atomic_path(target) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return target
