"""Coded concepts of the DICOM results: quantities, UCUM units, vertebrae, statistics, private codes.

Standard codes come from DICOM PS3.16 as bundled with pydicom (``pydicom.sr.codedict``):

* quantities (CID 7180 / 218): Fat fraction ``DCM 129100`` (PDFF), R2* ``DCM 126395``, T2* ``DCM 113064``,
  Field Map MR Signal Intensity ``DCM 110807`` (the B0 field map, values in Hz), IVIM tissue diffusion D =
  Slow Diffusion Coefficient ``DCM 113291``, pseudo-diffusion D* = Fast Diffusion Coefficient ``DCM 113292``,
  perfusion fraction f = Fast Diffusion Coefficient Fraction ``DCM 113293``;
* vertebrae (SNOMED CT, CID 7151/7602): L1 ``66794005``, L2 ``14293000``, L3 ``36470004``, L4 ``11994002``,
  L5 ``49668003``, T11 ``12989004``, T12 ``23215003``; ``S1`` is the sacrum ``54735007`` (the label presets
  this project reads mark the sacrum as S1); other levels use Vertebra ``51282000`` with the level named in
  the segment label; the measurement ROIs are Bone marrow ``14016003`` of that vertebra;
* statistics (CID 7464): Mean ``SCT 373098007``, Median ``SCT 373099004``, Standard Deviation
  ``SCT 386136009``.

Where no standard code exists, concepts use the private coding scheme :data:`PRIVATE_SCHEME` (``99OSTEOMRI``;
PS3.16 §8.2: designators beginning ``99`` are local): ``VOXELS`` (number of voxels with a value in the ROI),
``VBQ`` (vertebral bone quality score, Ehresman 2020), ``LR`` (likelihood ratio), ``POSTTEST``
(post-test probability of osteoporosis), ``MARKERVAL`` (exam-level marker value), and ``MAP-<suffix>`` for a
map without a standard quantity. The registry's ``MapSpec.dicom_quantity`` wins over these tables.
"""

from __future__ import annotations

from highdicom.sr import CodedConcept
from pydicom.sr.codedict import codes

PRIVATE_SCHEME = "99OSTEOMRI"

#: BIDS file suffix of a map -> quantity (code value, scheme, meaning). Keyed by suffix, which the registry
#: keeps stable, rather than by map name.
QUANTITY_BY_SUFFIX: dict[str, tuple[str, str, str]] = {
    "pdff": ("129100", "DCM", "Fat fraction"),
    "r2star": ("126395", "DCM", "R2*"),
    "T2starmap": ("113064", "DCM", "T2*"),
    "fieldmap": ("110807", "DCM", "Field Map MR Signal Intensity"),
    "D": ("113291", "DCM", "Slow Diffusion Coefficient"),
    "Dstar": ("113292", "DCM", "Fast Diffusion Coefficient"),
    "perfusionfraction": ("113293", "DCM", "Fast Diffusion Coefficient Fraction"),
}

#: Unit strings the pipeline used before the registry -> UCUM.
_LEGACY_UNITS = {"percent": "%", "fraction": "1", "a.u.": "{a.u.}", "ratio": "1", "": "1"}
_UNIT_MEANINGS = {"%": "percent", "1": "no units", "Hz": "hertz", "/s": "per second", "1/s": "per second",
                  "mm2/s": "square millimeter per second", "ms": "millisecond", "s": "second", "us": "microsecond",
                  "{a.u.}": "arbitrary unit", "{voxels}": "voxels"}

VERTEBRA_CODES: dict[str, CodedConcept] = {
    "L1": codes.SCT.L1Vertebra, "L2": codes.SCT.L2Vertebra, "L3": codes.SCT.L3Vertebra,
    "L4": codes.SCT.L4Vertebra, "L5": codes.SCT.L5Vertebra, "T11": codes.SCT.T11Vertebra,
    "T12": codes.SCT.T12Vertebra, "S1": codes.SCT.Sacrum,
}

MEAN = codes.SCT.Mean
MEDIAN = codes.SCT.Median
STANDARD_DEVIATION = codes.SCT.StandardDeviation
ANATOMICAL_STRUCTURE = codes.SCT.AnatomicalStructure
BONE_MARROW = codes.SCT.BoneMarrow
VERTEBRA = codes.SCT.Vertebra
LUMBAR_SPINE = codes.SCT.LumbarSpine
MORPHOLOGICAL_OPERATIONS = codes.cid7162.MorphologicalOperations


def private(value: str, meaning: str) -> CodedConcept:
    """A concept of the private scheme :data:`PRIVATE_SCHEME`."""
    return CodedConcept(value, PRIVATE_SCHEME, meaning)


VOXEL_COUNT = private("VOXELS", "Number of voxels with a value in the ROI")
VBQ = private("VBQ", "Vertebral bone quality score")
LIKELIHOOD_RATIO = private("LR", "Likelihood ratio of osteoporosis")
POSTTEST_PROBABILITY = private("POSTTEST", "Post-test probability of osteoporosis")
MARKER_VALUE = private("MARKERVAL", "Exam-level marker value (L1-L5 mean)")


def ucum(units: str) -> CodedConcept:
    """The UCUM coded unit of a registry/legacy unit string (``%``, ``Hz``, ``1/s``, ``mm2/s``, ``1``...)."""
    code = _LEGACY_UNITS.get(units, units)
    return CodedConcept(code, "UCUM", _UNIT_MEANINGS.get(code, code))


def quantity(suffix: str, description: str, dicom_quantity: tuple[str, str, str] | None = None) -> CodedConcept:
    """The coded quantity of a map: the registry's ``dicom_quantity``, else the table above, else private."""
    if dicom_quantity is not None:
        return CodedConcept(*dicom_quantity)
    if suffix in QUANTITY_BY_SUFFIX:
        return CodedConcept(*QUANTITY_BY_SUFFIX[suffix])
    return private(f"MAP-{suffix}"[:16], description[:64] or suffix)


def vertebra(level: str) -> CodedConcept:
    """SNOMED CT code of a vertebral level (generic Vertebra where no specific code is bundled)."""
    return VERTEBRA_CODES.get(level, VERTEBRA)
