"""Nested, repeated, stratified cross-validation: the honest estimate of a classifier's performance.

Outer loop (``n_outer`` folds × ``n_repeats``): each test fold is predicted by a model built only from the
other folds. Inside the training part, an inner ``n_inner``-fold CV picks the hyper-parameters (AUC), with
imputation, scaling and feature selection (``select_k``) refitted in every inner split; the chosen pipeline is
then Platt-calibrated by internal CV on the same training part. The test fold is touched only once, to
predict. Every patient gets one out-of-fold probability per repeat; their mean over repeats is the patient's
out-of-fold prediction, on which AUC (DeLong CI), sensitivity/specificity at the pre-specified threshold,
calibration slope/intercept, Brier score and net benefit are computed (:mod:`osteomri.learn.metrics`).

Varma & Simon 2006 (*BMC Bioinformatics* 7:91) showed that tuning or selecting features outside the
validation loop biases the estimate; the leakage test in ``tests/learn`` demonstrates it on pure noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.model_selection import GridSearchCV, RepeatedStratifiedKFold, StratifiedKFold
from threadpoolctl import threadpool_limits

from osteomri.errors import InputError
from osteomri.learn.metrics import decision_curve, performance
from osteomri.learn.models import calibrated, make_pipeline


@dataclass
class CVResult:
    """Out-of-fold performance of a nested CV (see the module docstring).

    ``oof_predictions``: DataFrame indexed like ``X`` with ``y`` and ``probability`` (mean over repeats) and one
    column per repeat (``repeat_0`` ...). ``performance``: the dict of :func:`osteomri.learn.metrics.performance`.
    ``fold_params``: the hyper-parameters chosen in each outer fold. ``importance``: permutation importance
    (decrease of AUC on the outer test folds, mean ± SD over folds) when requested.
    """

    model: str
    features: list[str]
    oof_predictions: pd.DataFrame
    performance: dict[str, float]
    decision_curve: pd.DataFrame = field(repr=False)
    fold_params: list[dict[str, Any]] = field(repr=False)
    settings: dict[str, Any] = field(default_factory=dict)
    importance: pd.DataFrame | None = field(default=None, repr=False)
    repeat_aucs: list[float] = field(default_factory=list)

    @property
    def auc(self) -> float:
        return self.performance["auc"]

    @property
    def auc_ci_low(self) -> float:
        return self.performance["auc_ci_low"]

    @property
    def auc_ci_high(self) -> float:
        return self.performance["auc_ci_high"]

    def summary(self) -> pd.DataFrame:
        """One tidy row of the performance (for tables and the model card)."""
        return pd.DataFrame([{"model": self.model, "n_features": len(self.features), **self.performance}])


def check_xy(X: pd.DataFrame | np.ndarray, y) -> tuple[pd.DataFrame, np.ndarray]:
    """``X`` as a numeric DataFrame and ``y`` as 0/1; one clear :class:`InputError` otherwise."""
    if not isinstance(X, pd.DataFrame):
        arr = np.asarray(X, dtype=float)
        if arr.ndim != 2:
            raise InputError(f"X must be 2-D (patients × features), got shape {arr.shape}")
        X = pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])])
    bad = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    if bad:
        raise InputError(f"feature column(s) {bad[:5]} are not numeric")
    yy = pd.Series(np.asarray(y)).to_numpy()
    if yy.shape[0] != len(X):
        raise InputError(f"y has {yy.shape[0]} values but X has {len(X)} rows")
    if pd.isna(yy).any():
        raise InputError(f"the target has {int(pd.isna(yy).sum())} missing value(s)")
    labels = np.unique(yy)
    if len(labels) != 2:
        raise InputError(f"the target must have exactly two classes, got {list(labels)[:5]}")
    if set(labels.tolist()) <= {0, 1}:  # also True/False and 0.0/1.0
        yb = yy.astype(int)
    else:
        raise InputError(f"the target must be 0/1 or boolean, got labels {list(labels)}")
    all_nan = [c for c in X.columns if X[c].isna().all()]
    if all_nan:
        raise InputError(f"feature column(s) {all_nan[:5]} have no values")
    return X.astype(float), yb


def nested_cv(
    X: pd.DataFrame | np.ndarray,
    y,
    *,
    model: str = "logistic",
    select_k: int | None = None,
    n_outer: int = 5,
    n_inner: int = 5,
    n_repeats: int = 1,
    random_state: int = 0,
    threshold: float = 0.5,
    importance: bool = False,
    importance_repeats: int = 5,
    n_jobs: int = 1,
) -> CVResult:
    """Nested repeated stratified CV of ``model`` on features ``X`` and binary outcome ``y`` (1 = positive).

    ``threshold``: the pre-specified probability cut-off for sensitivity/specificity (fixed before the
    analysis, not optimised on the data). ``importance``: permutation importance on each outer test fold.
    ``n_jobs``: threads of the random forest (the other models are single-threaded).
    """
    X, yb = check_xy(X, y)
    with threadpool_limits(limits=1):  # many small fits: threaded BLAS/OpenMP only contend
        return _nested_cv(X, yb, model, select_k, n_outer, n_inner, n_repeats, random_state, threshold, importance,
                          importance_repeats, n_jobs)


def _nested_cv(X: pd.DataFrame, yb: np.ndarray, model: str, select_k: int | None, n_outer: int, n_inner: int,
               n_repeats: int, random_state: int, threshold: float, importance: bool,
               importance_repeats: int, n_jobs: int) -> CVResult:
    minority = int(min(yb.sum(), len(yb) - yb.sum()))
    if minority < n_outer or n_outer < 2 or n_inner < 2:
        raise InputError(f"{n_outer} outer folds need at least {n_outer} patients per class (smallest class: "
                         f"{minority}); n_outer and n_inner must be >= 2")
    outer = RepeatedStratifiedKFold(n_splits=n_outer, n_repeats=n_repeats, random_state=random_state)
    Xa = X.to_numpy()  # numpy inside scikit-learn: no per-call pandas dtype checks
    probs = np.full((n_repeats, len(yb)), np.nan)
    fold_params, imps = [], []
    for i, (train, test) in enumerate(outer.split(Xa, yb)):
        repeat = i // n_outer
        seed = random_state + 1000 * repeat + i
        pipe, grid = make_pipeline(model, select_k, X.shape[1], random_state=seed, n_jobs=n_jobs)
        inner = StratifiedKFold(n_inner, shuffle=True, random_state=seed)
        search = GridSearchCV(pipe, grid, scoring="roc_auc", cv=inner, refit=False, n_jobs=1)
        search.fit(Xa[train], yb[train])
        pipe.set_params(**search.best_params_)
        final = calibrated(pipe, seed).fit(Xa[train], yb[train])
        probs[repeat, test] = final.predict_proba(Xa[test])[:, 1]
        fold_params.append({"repeat": repeat, "fold": i % n_outer, **search.best_params_})
        if importance:
            r = permutation_importance(final, Xa[test], yb[test], scoring="roc_auc",
                                       n_repeats=importance_repeats, random_state=seed, n_jobs=1)
            imps.append(r.importances_mean)
    p = probs.mean(axis=0)
    oof = pd.DataFrame({"y": yb, "probability": p, **{f"repeat_{r}": probs[r] for r in range(n_repeats)}},
                       index=X.index)
    from osteomri.stats import roc_analysis

    repeat_aucs = [float(roc_analysis(yb, probs[r], direction="<").auc) for r in range(n_repeats)]
    imp = None
    if importance:
        arr = np.asarray(imps)
        imp = pd.DataFrame({"feature": list(X.columns), "importance_auc": arr.mean(axis=0),
                            "importance_sd": arr.std(axis=0, ddof=1) if len(arr) > 1 else np.nan})
        imp = imp.sort_values("importance_auc", ascending=False, ignore_index=True)
    settings = {"model": model, "select_k": select_k, "n_outer": n_outer, "n_inner": n_inner,
                "n_repeats": n_repeats, "random_state": random_state, "threshold": threshold,
                "calibration": "Platt sigmoid, 3-fold internal CV", "class_weight": "balanced",
                "inner_scoring": "roc_auc", "n_jobs": n_jobs}
    return CVResult(model=model, features=list(map(str, X.columns)), oof_predictions=oof,
                    performance=performance(yb, p, threshold), decision_curve=decision_curve(yb, p),
                    fold_params=fold_params, settings=settings, importance=imp, repeat_aucs=repeat_aucs)


def fit_final(X: pd.DataFrame, y, *, model: str = "logistic", select_k: int | None = None, n_inner: int = 5,
              random_state: int = 0):
    """The deployable model: hyper-parameters tuned by ``n_inner``-fold CV on all data, then Platt-calibrated.
    Its expected performance is the nested-CV estimate of the same procedure (:func:`nested_cv`), never a
    re-evaluation on the data it was fitted to. Returns (fitted estimator, chosen parameters)."""
    X, yb = check_xy(X, y)
    pipe, grid = make_pipeline(model, select_k, X.shape[1], random_state=random_state)
    search = GridSearchCV(pipe, grid, scoring="roc_auc", refit=False, n_jobs=1,
                          cv=StratifiedKFold(n_inner, shuffle=True, random_state=random_state))
    search.fit(X.to_numpy(), yb)
    pipe.set_params(**search.best_params_)
    return calibrated(pipe, random_state).fit(X.to_numpy(), yb), dict(search.best_params_)
