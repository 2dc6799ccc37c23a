"""Radiomics: IBSI-tagged texture, intensity and shape features per vertebra (PyRadiomics underneath).

Modules: :mod:`~osteomri.radiomics.ibsi` (PyRadiomics names → IBSI tags, conversions, reference values),
:mod:`~osteomri.radiomics.features` (:func:`extract_features` of one image in one mask, settings presets),
:mod:`~osteomri.radiomics.vertebrae` (per-vertebra extraction over the label/ROI layer; tidy and wide tables).
Library choice (PyRadiomics vs MIRP on the IBSI digital phantom): ``docs/radiomics.md``.
"""

from osteomri.radiomics.features import FEATURE_COLUMNS, PRESETS, extract_features, resolve_settings

__all__ = ["FEATURE_COLUMNS", "PRESETS", "extract_features", "resolve_settings"]
