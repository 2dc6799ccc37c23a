"""osteomri: quantitative lumbar-spine MRI biomarkers of bone health.

Sub-packages, lowest first (each imports only those before it; docs/architecture.md draws the same):
``io`` (images, NIfTI/DICOM/.mat, provenance) -> ``models`` (signal models, Model/Fit pairs, the map
registry) -> ``phantom`` (digital lumbar spine) -> ``stats`` (diagnostic statistics) -> ``vertebrae`` (labels,
ROIs, per-vertebra tables, VBQ) -> ``radiomics`` (IBSI features per vertebra) -> ``learn`` (classifiers, nested
CV, model cards) -> ``report`` (HTML, figures) -> ``pipeline`` (exam, cohort, study) -> ``cli``.
"""

from osteomri._version import __version__

__all__ = ["__version__"]
