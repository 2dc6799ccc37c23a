"""DICOM results back into the hospital: Parametric Maps, Segmentations, TID 1500 Measurement Reports,
Secondary Captures (highdicom + pydicom), keyed pseudonymisation, validation and sending to a PACS.

Modules: :mod:`.source` (the source series and its grid), :mod:`.codes` (coded concepts), :mod:`.pmap`,
:mod:`.seg` (writing and the one DICOM SEG reader), :mod:`.sr`, :mod:`.sc`, :mod:`.identity`
(PS3.15 basic profile with keyed pseudonyms), :mod:`.validate` (dciodvfy), :mod:`.send` (C-STORE).
"""

from osteomri.io.dicomout.identity import Pseudonymizer
from osteomri.io.dicomout.pmap import parametric_map, write_parametric_map
from osteomri.io.dicomout.seg import Segment, SegmentMasks, load_dicom_seg, segmentation, write_segmentation
from osteomri.io.dicomout.source import DicomSource, read_source

__all__ = ["DicomSource", "read_source", "Pseudonymizer", "parametric_map", "write_parametric_map", "Segment",
           "SegmentMasks", "segmentation", "write_segmentation", "load_dicom_seg"]
