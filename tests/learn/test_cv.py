"""Nested CV: the leakage guard on pure noise, a known generating model, metrics with known values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from osteomri.errors import InputError
from osteomri.learn import baseline_cv, compare_to_baseline, nested_cv
from osteomri.learn.metrics import brier, calibration, decision_curve, threshold_metrics
from osteomri.stats import roc_analysis


@pytest.fixture(scope="module")
def noise():
    rng = np.random.default_rng(20261203)
    X = pd.DataFrame(rng.normal(size=(120, 500)), columns=[f"f{i:03d}" for i in range(500)])
    y = rng.permutation(np.r_[np.zeros(60), np.ones(60)]).astype(int)
    return X, y


def test_leakage_guard_nested_cv_is_honest_naive_is_optimistic(noise):
    """Pure noise (n = 120, 500 features): no model can beat AUC 0.5. Nested CV (selection of the 10 best
    features inside each training fold) must say so; selecting the 10 best on all data first and then
    cross-validating (the protocol of many published radiomics models) must be clearly optimistic."""
    X, y = noise
    honest = nested_cv(X, y, model="logistic", select_k=10, random_state=0)
    assert honest.auc_ci_low < 0.5 < honest.auc_ci_high
    # naive protocol, implemented here only: select on the whole cohort, then 5-fold CV
    selected = SelectKBest(f_classif, k=10).fit(X, y).transform(X)
    p = cross_val_predict(LogisticRegression(max_iter=5000), selected, y, method="predict_proba",
                          cv=StratifiedKFold(5, shuffle=True, random_state=0))[:, 1]
    naive = roc_analysis(y, p, direction="<")
    assert naive.auc_ci_low > 0.6, naive.auc  # the leak: "significant" discrimination of pure noise
    assert naive.auc - honest.auc > 0.2
    assert len(honest.fold_params) == 5 and all("clf__C" in f for f in honest.fold_params)


@pytest.fixture(scope="module")
def known_signal():
    """Outcome drawn from a known logistic model of two features (+ 8 noise features)."""
    rng = np.random.default_rng(7)
    n = 400
    X = pd.DataFrame(rng.normal(size=(n, 10)), columns=["pdff_percent", "r2star_hz", *[f"n{i}" for i in range(8)]])
    score = 1.2 * X["pdff_percent"] - 0.8 * X["r2star_hz"] - 0.5
    y = (rng.random(n) < 1 / (1 + np.exp(-score))).astype(int)
    return X, y, score


def test_known_generating_model(known_signal):
    X, y, score = known_signal
    true = roc_analysis(y, score, direction="<")
    res = nested_cv(X, y, model="logistic", n_repeats=2, n_inner=3, random_state=1)
    # the OOF AUC lies within the CI of the AUC of the true generating score (and vice versa)
    assert true.auc_ci_low <= res.auc <= true.auc_ci_high
    assert res.auc_ci_low <= true.auc <= res.auc_ci_high
    assert res.performance["calibration_slope"] == pytest.approx(1.0, abs=0.3)
    assert res.performance["calibration_intercept"] == pytest.approx(0.0, abs=0.3)
    assert len(res.repeat_aucs) == 2 and res.oof_predictions.shape == (400, 4)
    base = baseline_cv(X, y, random_state=1, n_repeats=2, n_inner=3)
    cmp = compare_to_baseline({"logistic_all": res}, base)
    # noise features add nothing: the full model is not better than the true two-feature model
    assert cmp["diff_ci_low"].iloc[0] < 0 < cmp["diff_ci_high"].iloc[0] or cmp["diff"].iloc[0] < 0
    assert cmp["baseline_auc"].iloc[0] == pytest.approx(base.auc)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["rf", "gb", "svm"])
def test_other_models_learn_the_known_signal(known_signal, model):
    X, y, score = known_signal
    true = roc_analysis(y, score, direction="<")
    res = nested_cv(X, y, model=model, n_outer=5, n_inner=3, random_state=0, importance=True,
                    importance_repeats=2)
    assert res.auc_ci_low > 0.5 and res.auc <= true.auc_ci_high
    top = set(res.importance["feature"].head(2))
    assert top == {"pdff_percent", "r2star_hz"}


def test_metrics_known_values():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.02, 0.98, 20000)
    y = (rng.random(p.size) < p).astype(int)
    slope, intercept = calibration(y, p)  # perfectly calibrated by construction
    assert slope == pytest.approx(1.0, abs=0.06) and intercept == pytest.approx(0.0, abs=0.05)
    slope2, _ = calibration(y, 1 / (1 + np.exp(-2 * np.log(p / (1 - p)))))  # too extreme: slope 1/2
    assert slope2 == pytest.approx(0.5, abs=0.04)
    assert brier(y, np.full(y.size, 0.5)) == pytest.approx(0.25)
    dc = decision_curve(y, y.astype(float), thresholds=[0.1, 0.5])  # perfect predictor: NB = prevalence
    assert np.allclose(dc["net_benefit"], y.mean())
    prev = y.mean()
    assert dc["treat_all"].iloc[1] == pytest.approx(prev - (1 - prev))
    m = threshold_metrics([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9], 0.5)
    assert (m["sensitivity"], m["specificity"], m["tp"], m["fp"]) == (0.5, 0.5, 1, 1)


@pytest.mark.parametrize("y, X, message", [
    ([0, 1, 2] * 10, None, "two classes"),
    (["a", "b"] * 15, None, "0/1"),
    ([0, 1] * 15, pd.DataFrame({"a": ["x"] * 30}), "not numeric"),
    ([0, 1] * 3, None, "patients per class"),
])
def test_bad_input(y, X, message):
    X = pd.DataFrame({"a": np.arange(len(y), dtype=float)}) if X is None else X
    with pytest.raises(InputError, match=message):
        nested_cv(X, y)
    with pytest.raises(InputError, match="unknown model"):
        nested_cv(pd.DataFrame({"a": np.arange(30.0)}), [0, 1] * 15, model="cnn")
