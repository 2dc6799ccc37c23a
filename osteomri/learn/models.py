"""The classifiers of :mod:`osteomri.learn`: scikit-learn pipelines and their (small) tuning grids.

Every pipeline is ``median imputation → standardisation → [SelectKBest(ANOVA F) if select_k] → estimator``;
fitted inside the training data it is given, so that imputation, scaling and feature selection never see the
test fold. Class imbalance is handled by class weights inversely proportional to the class frequencies
(``class_weight="balanced"``); probabilities are calibrated afterwards (Platt sigmoid, see
:func:`calibrated`). Grids are kept small on purpose (nested CV multiplies their cost).

- ``logistic``: L2 logistic regression (C ∈ {0.01, 0.1, 1, 10}); the seed study's combined PDFF + R2* marker is
  this model on those two columns.
- ``rf``: random forest, 200 trees (``n_jobs`` threads), ``balanced_subsample`` weights
  (min_samples_leaf ∈ {2, 10}).
- ``gb``: histogram gradient boosting, 200 iterations, depth 3 (learning_rate ∈ {0.05, 0.2}).
- ``svm``: RBF support-vector machine (C ∈ {0.1, 1, 10}); scores calibrated to probabilities.
"""

from __future__ import annotations

from typing import Any

from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from osteomri.errors import InputError

MODELS = ("logistic", "rf", "gb", "svm")


def _estimator(model: str, random_state: int, n_jobs: int = 1) -> tuple[BaseEstimator, dict[str, list[Any]]]:
    if model == "logistic":
        return (LogisticRegression(class_weight="balanced", max_iter=5000),
                {"clf__C": [0.01, 0.1, 1.0, 10.0]})
    if model == "rf":
        return (RandomForestClassifier(n_estimators=200, class_weight="balanced_subsample", max_features="sqrt",
                                       random_state=random_state, n_jobs=n_jobs),
                {"clf__min_samples_leaf": [2, 10]})
    if model == "gb":
        return (HistGradientBoostingClassifier(max_iter=200, max_depth=3, class_weight="balanced",
                                               early_stopping=False, random_state=random_state),
                {"clf__learning_rate": [0.05, 0.2]})
    if model == "svm":
        return SVC(kernel="rbf", class_weight="balanced", random_state=random_state), {"clf__C": [0.1, 1.0, 10.0]}
    raise InputError(f"unknown model {model!r}; choose from {', '.join(MODELS)}")


def make_pipeline(model: str, select_k: int | None = None, n_features: int | None = None,
                  random_state: int = 0, n_jobs: int = 1) -> tuple[Pipeline, dict[str, list[Any]]]:
    """The pipeline of ``model`` and its tuning grid (``select_k`` features kept by ANOVA F, if given)."""
    est, grid = _estimator(model, random_state, n_jobs)
    steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
    if select_k is not None:
        k = int(select_k)
        if k < 1 or (n_features is not None and k > n_features):
            raise InputError(f"select_k must lie in 1..{n_features} (the number of features), got {select_k}")
        steps.append(("select", SelectKBest(f_classif, k=k)))
    steps.append(("clf", est))
    return Pipeline(steps), grid


def calibrated(pipeline: Pipeline, random_state: int, folds: int = 3) -> CalibratedClassifierCV:
    """Platt (sigmoid) calibration of ``pipeline`` by internal ``folds``-fold CV (Platt 1999): the class-weighted
    scores become probabilities at the training prevalence."""
    return CalibratedClassifierCV(pipeline, method="sigmoid",
                                  cv=StratifiedKFold(folds, shuffle=True, random_state=random_state), ensemble=True)
