"""Classifiers evaluated honestly: nested repeated stratified CV, calibration, decision curves, model cards.

Modules: :mod:`~osteomri.learn.models` (scikit-learn pipelines and grids: logistic, rf, gb, svm),
:mod:`~osteomri.learn.cv` (:func:`nested_cv` -> :class:`CVResult`, :func:`fit_final`),
:mod:`~osteomri.learn.metrics` (calibration, Brier, net benefit; AUC and CIs from :mod:`osteomri.stats`),
:mod:`~osteomri.learn.compare` (paired DeLong against the PDFF + R2* logistic baseline),
:mod:`~osteomri.learn.card` (train/predict with skops persistence and the model card).
Layer: uses :mod:`osteomri.stats`; used by the CLI.
"""

from osteomri.learn.compare import BASELINE_FEATURES, baseline_cv, compare_to_baseline
from osteomri.learn.cv import CVResult, fit_final, nested_cv
from osteomri.learn.models import MODELS

__all__ = ["BASELINE_FEATURES", "CVResult", "MODELS", "baseline_cv", "compare_to_baseline", "fit_final",
           "nested_cv"]
