"""Combining markers by logistic regression, with an optimism-corrected AUC.

The combined score is the fitted probability of a logistic regression of the outcome on the markers
(maximum likelihood, statsmodels ``Logit``), analysed as any marker (pROC convention: ``roc(y, fitted)``).
The apparent AUC is optimistic because the model is fitted and evaluated on the same patients. Two
corrections are offered:

- ``"bootstrap"``: Harrell's optimism bootstrap (Efron & Tibshirani 1993 §17.6; Harrell, Lee & Mark 1996,
  Stat Med 15:361): refit in each bootstrap sample; optimism = mean(AUC_boot on boot − AUC_boot on original);
  corrected AUC = apparent − optimism.
- ``"cv"``: stratified k-fold cross-validation; the AUC of the pooled out-of-fold predictions.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from osteomri.errors import InputError
from osteomri.stats._validate import as_float, binary_outcome, check_not_constant, drop_missing
from osteomri.stats.roc import RocResult, _core, delong_test, roc_analysis

__all__ = ["CombinedMarkerResult", "combined_marker"]


@dataclass
class CombinedMarkerResult:
    """Logistic combination of markers. ``coefficients``: term, coef, se, z, p_value, ci_low, ci_high,
    odds_ratio (per unit of the marker). ``comparisons``: paired DeLong tests of the combined score against
    each single marker."""

    markers: list[str]
    score: pd.Series  # fitted probability of being a case, aligned with the complete-case rows
    roc: RocResult
    coefficients: pd.DataFrame
    auc_apparent: float
    auc_corrected: float | None
    optimism: float | None
    optimism_method: str | None
    comparisons: pd.DataFrame
    n_dropped: int
    positive: Any
    model: Any = field(default=None, repr=False)

    def predict(self, data: pd.DataFrame) -> np.ndarray:
        """Probability of being a case for new rows with the marker columns."""
        x = np.column_stack([np.ones(len(data))] + [as_float(data[m], m) for m in self.markers])
        return 1.0 / (1.0 + np.exp(-(x @ self.coefficients["coef"].to_numpy())))


def _irls(x: np.ndarray, y: np.ndarray, max_iter: int = 50, tol: float = 1e-10) -> np.ndarray:
    """Logistic-regression coefficients by iteratively reweighted least squares (Newton–Raphson)."""
    beta = np.zeros(x.shape[1])
    for _ in range(max_iter):
        eta = np.clip(x @ beta, -30, 30)
        p = 1.0 / (1.0 + np.exp(-eta))
        w = p * (1 - p)
        grad = x.T @ (y - p)
        hess = (x * w[:, None]).T @ x
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(hess, grad, rcond=None)[0]
        beta = beta + step
        if np.max(np.abs(step)) < tol * (1 + np.max(np.abs(beta))):
            break
    return beta


def _auc(score: np.ndarray, is_case: np.ndarray) -> float:
    return _core(score, is_case, "<").auc


def combined_marker(
    outcome: Any,
    markers: pd.DataFrame | dict[str, Any],
    *,
    positive: Any = None,
    optimism: Literal["bootstrap", "cv"] | None = "bootstrap",
    n_bootstrap: int = 200,
    n_folds: int = 10,
    random_state: int | np.random.Generator | None = None,
    conf_level: float = 0.95,
    nan_policy: Literal["omit", "raise"] = "omit",
) -> CombinedMarkerResult:
    """Logistic-regression combination of several markers, its ROC analysis and an optimism-corrected AUC.

    Returns the combined score (fitted probabilities), its :class:`~osteomri.stats.RocResult`, the
    coefficients with Wald CIs, paired DeLong tests against each single marker (DeLong et al. 1988), and the
    AUC corrected for optimism (see the module docstring); ``random_state`` seeds the resampling.
    """
    frame = pd.DataFrame(markers)
    if frame.shape[1] < 1:
        raise InputError("combined_marker needs at least one marker column")
    names = [str(c) for c in frame.columns]
    y_arr = np.asarray(outcome.to_numpy() if isinstance(outcome, pd.Series) else outcome)
    if len(y_arr) != len(frame):
        raise InputError(f"combined marker: outcome has {len(y_arr)} rows, markers {len(frame)}")
    cols = {"outcome": y_arr.astype(object) if y_arr.dtype.kind in "OUS" else y_arr}
    cols.update({n: as_float(frame[c], n) for n, c in zip(names, frame.columns, strict=True)})
    index = np.asarray(frame.index)
    cols["__index__"] = np.arange(len(frame), dtype=float)
    cols, n_dropped = drop_missing(cols, nan_policy, "combined marker")
    y = binary_outcome(cols.pop("outcome"), positive)
    rows = cols.pop("__index__").astype(int)
    for n in names:
        check_not_constant(cols[n], f"marker {n!r}")
    x = np.column_stack([np.ones(rows.size)] + [cols[n] for n in names])
    if np.linalg.matrix_rank(x) < x.shape[1]:
        raise InputError(f"markers {names} are collinear; the logistic model is not identifiable")
    yy = y.is_case.astype(float)

    import statsmodels.api as sm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model = sm.Logit(yy, pd.DataFrame(x, columns=["(Intercept)", *names])).fit(disp=0, method="newton",
                                                                                      maxiter=100)
        except Exception as exc:  # statsmodels raises PerfectSeparationError and LinAlgError subclasses
            raise InputError(f"logistic regression failed ({type(exc).__name__}: {exc}); the markers may "
                             "separate the groups perfectly") from None
    ci = model.conf_int(alpha=1 - conf_level)
    coefs = pd.DataFrame({
        "term": ["(Intercept)", *names], "coef": model.params.to_numpy(), "se": model.bse.to_numpy(),
        "z": model.tvalues.to_numpy(), "p_value": model.pvalues.to_numpy(), "ci_low": ci[0].to_numpy(),
        "ci_high": ci[1].to_numpy(),
    })
    coefs["odds_ratio"] = np.exp(coefs["coef"])
    prob = np.asarray(model.predict(), dtype=float)
    score = pd.Series(prob, index=index[rows], name="combined")
    roc = roc_analysis(y.is_case, prob, direction="<", conf_level=conf_level, marker_name="combined")
    roc.positive = y.positive
    apparent = roc.auc

    rng = np.random.default_rng(random_state)
    corrected = opt = None
    if optimism == "bootstrap":
        deltas = []
        for _ in range(n_bootstrap):
            idx = rng.integers(0, yy.size, yy.size)
            yb = y.is_case[idx]
            if yb.all() or not yb.any():
                continue
            beta = _irls(x[idx], yy[idx])
            deltas.append(_auc(x[idx] @ beta, yb) - _auc(x @ beta, y.is_case))
        if not deltas:
            raise InputError("no bootstrap sample contained both classes")
        opt = float(np.mean(deltas))
        corrected = apparent - opt
    elif optimism == "cv":
        if n_folds < 2 or n_folds > min(y.is_case.sum(), (~y.is_case).sum()):
            raise InputError(f"n_folds must be between 2 and the size of the smaller class, got {n_folds}")
        fold = np.empty(yy.size, dtype=int)
        for cls in (True, False):
            members = np.flatnonzero(y.is_case == cls)
            fold[rng.permutation(members)] = np.arange(members.size) % n_folds
        oof = np.empty(yy.size)
        for f in range(n_folds):
            test = fold == f
            beta = _irls(x[~test], yy[~test])
            oof[test] = x[test] @ beta
        corrected = _auc(oof, y.is_case)
        opt = apparent - corrected
    elif optimism is not None:
        raise InputError(f"optimism must be 'bootstrap', 'cv' or None, got {optimism!r}")

    comparisons = []
    for n in names:
        t = delong_test(y.is_case, prob, cols[n], direction_a="<", conf_level=conf_level, names=("combined", n))
        comparisons.append(t.to_frame())
    return CombinedMarkerResult(
        markers=names, score=score, roc=roc, coefficients=coefs, auc_apparent=apparent, auc_corrected=corrected,
        optimism=opt, optimism_method=optimism, comparisons=pd.concat(comparisons, ignore_index=True),
        n_dropped=n_dropped, positive=y.positive, model=model,
    )

