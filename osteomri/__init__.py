"""osteomri: quantitative lumbar-spine MRI biomarkers of bone health.

Sub-packages (imports only point downwards):
``io`` (images, NIfTI/DICOM/.mat, provenance) -> ``models`` (signal models, Model/Fit pairs)
-> ``phantom`` (digital lumbar spine) -> ``vertebrae`` (labels, ROIs, per-vertebra tables, VBQ)
-> ``stats`` (diagnostic statistics) -> ``pipeline`` (exam, cohort) -> ``report`` -> ``cli``.
"""

from osteomri._version import __version__

__all__ = ["__version__"]
