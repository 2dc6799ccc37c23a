"""Vertebral measurement: label maps, ROI placement, per-vertebra statistics, VBQ and M-score.

Modules: :mod:`~osteomri.vertebrae.labels` (segmenter presets → :class:`VertebraLabels`),
:mod:`~osteomri.vertebrae.geometry` (per-vertebra frames from the affine), :mod:`~osteomri.vertebrae.rois`
(``body``, ``paper``, ``reader``, ``seed``), :mod:`~osteomri.vertebrae.measure` (tidy long table, reader
averaging and agreement, wide summary), :mod:`~osteomri.vertebrae.scores` (VBQ, M-score).
ROI overlay (QC) figures are drawn by :func:`osteomri.report.figures.qc_figure`.

Automatic labelling without an outside segmenter: :func:`~osteomri.vertebrae.autolabel.label_vertebrae`.

Stable API for the pipeline and the reports::

    measure_vertebrae(maps, labels, preset, roi="paper", exam="", **options) -> DataFrame (long)
    summarise_levels(long) -> DataFrame (one row per exam, L1–L4 / L1–L5 means)
    aggregate_levels(long, levels=DEFAULT_LEVEL_SET) -> DataFrame (per-patient means over chosen levels; L1–L5)
    measure_readers(maps, labels, readers, preset) -> ReaderMeasurement (per reader, averaged, ICC, BA)
    vbq_score(t1w, labels, preset, ...) -> VBQResult
    m_score(t1w, labels, reference_mean, reference_sd, ...) -> MScoreResult
    rois_for(image, labels, preset, roi) -> RoiSet
"""

from osteomri.vertebrae.autolabel import AmbiguousLevelsError, label_vertebrae
from osteomri.vertebrae.labels import PRESETS, LabelPreset, VertebraLabels, phantom_labels, resolve_labels
from osteomri.vertebrae.measure import (
    LONG_COLUMNS,
    ReaderMeasurement,
    aggregate_levels,
    measure_readers,
    measure_vertebrae,
    measure_vertebrae_with_rois,
    roi_statistics,
    rois_for,
    summarise_levels,
)
from osteomri.vertebrae.rois import RoiSet
from osteomri.vertebrae.scores import MScoreResult, VBQResult, m_score, vbq_score

__all__ = [
    "AmbiguousLevelsError", "LONG_COLUMNS",
    "PRESETS", "LabelPreset", "MScoreResult", "ReaderMeasurement", "RoiSet", "VBQResult",
    "aggregate_levels", "label_vertebrae",
    "VertebraLabels", "m_score", "measure_readers", "measure_vertebrae", "measure_vertebrae_with_rois",
    "phantom_labels",
    "resolve_labels", "roi_statistics", "rois_for", "summarise_levels", "vbq_score",
]
