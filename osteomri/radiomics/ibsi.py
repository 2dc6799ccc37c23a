"""PyRadiomics feature names → IBSI feature tags, deliberate conversions, and the IBSI reference values.

The IBSI reference manual (Zwanenburg et al. 2020, *Radiology* 295:328–338; arXiv:1612.07003) names every
feature by a tag (``stat_mean``, ``cm_contrast_3D_avg``, ``morph_volume``, ...). PyRadiomics (van Griethuysen
et al. 2017, *Cancer Res* 77:e104) computes, in 3-D:

- GLCM and GLRLM per direction (13 directions) with the features averaged over directions: IBSI ``_3D_avg``;
- GLSZM, GLDM (= IBSI NGLDM with coarseness α = 0, Chebyshev distance 1) and NGTDM over the volume: ``_3D``;
- first order (``stat_*``; ``Entropy`` and ``Uniformity`` on the discretised intensities: ``ih_*``) and
  shape (``morph_*``).

Deliberate differences (documented in ``docs/radiomics.md``):

- ``Kurtosis``: PyRadiomics reports the Pearson kurtosis (normal distribution = 3); IBSI ``stat_kurt`` is the
  *excess* kurtosis (normal = 0). :data:`CONVERSIONS` subtracts 3, so the ``value`` under ``stat_kurt`` is the
  IBSI quantity.
- Features PyRadiomics computes without an IBSI definition (``TotalEnergy``, ``StandardDeviation``,
  ``Maximum2DDiameter*``) keep an empty ``ibsi_tag``; ``MCC`` is not computed (see ``features.SKIPPED``).
- IBSI features PyRadiomics does not compute (intensity-histogram statistics other than entropy and
  uniformity, intensity-volume histogram, local intensity, distance-zone matrix, convex-hull/AABB/ellipsoid
  morphology, Moran's I / Geary's C, ``_3D_comb`` merged matrices, ``ngl_dc_perc``/``ngl_glnu_norm``/
  ``ngl_dc_energy``) are not reported.

PyRadiomics ``DifferenceAverage`` is both ``cm_diff_avg`` and ``cm_dissimilarity`` (IBSI: identical
definitions); ``ClusterTendency`` is also ``cm_sum_var`` (identical definitions). Both are reported once,
under the first tag (:data:`ALIASES`).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from pathlib import Path

_FIRSTORDER = {
    "Energy": "stat_energy", "Entropy": "ih_entropy", "Minimum": "stat_min", "10Percentile": "stat_p10",
    "90Percentile": "stat_p90", "Maximum": "stat_max", "Mean": "stat_mean", "Median": "stat_median",
    "InterquartileRange": "stat_iqr", "Range": "stat_range", "MeanAbsoluteDeviation": "stat_mad",
    "RobustMeanAbsoluteDeviation": "stat_rmad", "RootMeanSquared": "stat_rms", "Skewness": "stat_skew",
    "Kurtosis": "stat_kurt", "Variance": "stat_var", "Uniformity": "ih_uniformity",
    "TotalEnergy": "", "StandardDeviation": "",
}
_SHAPE = {
    "MeshVolume": "morph_volume", "VoxelVolume": "morph_vol_approx", "SurfaceArea": "morph_area_mesh",
    "SurfaceVolumeRatio": "morph_av", "Sphericity": "morph_sphericity", "Maximum3DDiameter": "morph_diam",
    "MajorAxisLength": "morph_pca_maj_axis", "MinorAxisLength": "morph_pca_min_axis",
    "LeastAxisLength": "morph_pca_least_axis", "Elongation": "morph_pca_elongation",
    "Flatness": "morph_pca_flatness", "Maximum2DDiameterSlice": "", "Maximum2DDiameterColumn": "",
    "Maximum2DDiameterRow": "",
}
_GLCM = {
    "Autocorrelation": "cm_auto_corr", "JointAverage": "cm_joint_avg", "ClusterProminence": "cm_clust_prom",
    "ClusterShade": "cm_clust_shade", "ClusterTendency": "cm_clust_tend", "Contrast": "cm_contrast",
    "Correlation": "cm_corr", "DifferenceAverage": "cm_diff_avg", "DifferenceEntropy": "cm_diff_entr",
    "DifferenceVariance": "cm_diff_var", "JointEnergy": "cm_energy", "JointEntropy": "cm_joint_entr",
    "Imc1": "cm_info_corr1", "Imc2": "cm_info_corr2", "Idm": "cm_inv_diff_mom",
    "Idmn": "cm_inv_diff_mom_norm", "Id": "cm_inv_diff", "Idn": "cm_inv_diff_norm",
    "InverseVariance": "cm_inv_var", "MaximumProbability": "cm_joint_max", "SumAverage": "cm_sum_avg",
    "SumEntropy": "cm_sum_entr", "SumSquares": "cm_joint_var", "MCC": "",
}
_GLRLM = {
    "ShortRunEmphasis": "rlm_sre", "LongRunEmphasis": "rlm_lre", "GrayLevelNonUniformity": "rlm_glnu",
    "GrayLevelNonUniformityNormalized": "rlm_glnu_norm", "RunLengthNonUniformity": "rlm_rlnu",
    "RunLengthNonUniformityNormalized": "rlm_rlnu_norm", "RunPercentage": "rlm_r_perc",
    "GrayLevelVariance": "rlm_gl_var", "RunVariance": "rlm_rl_var", "RunEntropy": "rlm_rl_entr",
    "LowGrayLevelRunEmphasis": "rlm_lgre", "HighGrayLevelRunEmphasis": "rlm_hgre",
    "ShortRunLowGrayLevelEmphasis": "rlm_srlge", "ShortRunHighGrayLevelEmphasis": "rlm_srhge",
    "LongRunLowGrayLevelEmphasis": "rlm_lrlge", "LongRunHighGrayLevelEmphasis": "rlm_lrhge",
}
_GLSZM = {
    "SmallAreaEmphasis": "szm_sze", "LargeAreaEmphasis": "szm_lze", "GrayLevelNonUniformity": "szm_glnu",
    "GrayLevelNonUniformityNormalized": "szm_glnu_norm", "SizeZoneNonUniformity": "szm_zsnu",
    "SizeZoneNonUniformityNormalized": "szm_zsnu_norm", "ZonePercentage": "szm_z_perc",
    "GrayLevelVariance": "szm_gl_var", "ZoneVariance": "szm_zs_var", "ZoneEntropy": "szm_zs_entr",
    "LowGrayLevelZoneEmphasis": "szm_lgze", "HighGrayLevelZoneEmphasis": "szm_hgze",
    "SmallAreaLowGrayLevelEmphasis": "szm_szlge", "SmallAreaHighGrayLevelEmphasis": "szm_szhge",
    "LargeAreaLowGrayLevelEmphasis": "szm_lzlge", "LargeAreaHighGrayLevelEmphasis": "szm_lzhge",
}
_GLDM = {
    "SmallDependenceEmphasis": "ngl_lde", "LargeDependenceEmphasis": "ngl_hde",
    "GrayLevelNonUniformity": "ngl_glnu", "DependenceNonUniformity": "ngl_dcnu",
    "DependenceNonUniformityNormalized": "ngl_dcnu_norm", "GrayLevelVariance": "ngl_gl_var",
    "DependenceVariance": "ngl_dc_var", "DependenceEntropy": "ngl_dc_entr", "LowGrayLevelEmphasis": "ngl_lgce",
    "HighGrayLevelEmphasis": "ngl_hgce", "SmallDependenceLowGrayLevelEmphasis": "ngl_ldlge",
    "SmallDependenceHighGrayLevelEmphasis": "ngl_ldhge", "LargeDependenceLowGrayLevelEmphasis": "ngl_hdlge",
    "LargeDependenceHighGrayLevelEmphasis": "ngl_hdhge",
}
_NGTDM = {"Coarseness": "ngt_coarseness", "Contrast": "ngt_contrast", "Busyness": "ngt_busyness",
          "Complexity": "ngt_complexity", "Strength": "ngt_strength"}

#: PyRadiomics feature class → (feature name → IBSI tag stem, suffix of the 3-D variant).
FAMILIES: dict[str, tuple[dict[str, str], str]] = {
    "firstorder": (_FIRSTORDER, ""), "shape": (_SHAPE, ""), "glcm": (_GLCM, "_3D_avg"),
    "glrlm": (_GLRLM, "_3D_avg"), "glszm": (_GLSZM, "_3D"), "gldm": (_GLDM, "_3D"), "ngtdm": (_NGTDM, "_3D"),
}
#: IBSI tags that are other names for a PyRadiomics feature with an identical IBSI definition.
ALIASES: dict[str, tuple[str, ...]] = {"cm_diff_avg": ("cm_dissimilarity",), "cm_clust_tend": ("cm_sum_var",)}
#: Conversions from the PyRadiomics value to the IBSI definition, with the reason.
CONVERSIONS: dict[str, tuple[Callable[[float], float], str]] = {
    "stat_kurt": (lambda v: v - 3.0, "PyRadiomics Kurtosis is Pearson's kurtosis; IBSI stat_kurt is excess "
                  "kurtosis (PyRadiomics - 3)"),
}


def ibsi_tags(family: str, name: str) -> list[str]:
    """IBSI tags of the PyRadiomics feature ``family``/``name`` in 3-D (empty: no IBSI definition)."""
    table, suffix = FAMILIES.get(family, ({}, ""))
    stem = table.get(name, "")
    if not stem:
        return []
    return [t + suffix for t in (stem, *ALIASES.get(stem, ()))]


def load_reference(path: str | Path) -> dict[str, tuple[float, float]]:
    """IBSI reference values of the digital phantom: tag → (value, tolerance).

    Reads the z-rad style CSV (``reference value``, ``tolerance``, ``tag``; UTF-8 with BOM) or the MIRP style
    (``reference value;tolerance;tag``).
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8-sig")
    delim = ";" if text.splitlines()[0].count(";") >= 2 else ","
    out: dict[str, tuple[float, float]] = {}
    for row in csv.DictReader(text.splitlines(), delimiter=delim):
        value, tol, tag = row.get("reference value", ""), row.get("tolerance", ""), row.get("tag", "")
        if tag and value not in ("", None):
            out[tag] = (float(value), float(tol or 0.0))
    return out


def round_sig(x: float, digits: int = 3) -> float:
    """``x`` rounded to ``digits`` significant digits (0 and non-finite unchanged)."""
    if x == 0 or not math.isfinite(x):
        return x
    return round(x, digits - 1 - math.floor(math.log10(abs(x))))


def matches_reference(value: float, reference: float, tolerance: float) -> bool:
    """IBSI check: ``|value - reference| <= tolerance``, or equal after rounding to 3 significant digits
    (the digital-phantom reference values are given to 3 significant digits with tolerance 0)."""
    if not math.isfinite(value):
        return False
    return abs(value - reference) <= tolerance or round_sig(value) == round_sig(reference)
