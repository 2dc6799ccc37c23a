"""The ROC core sorts each group once and builds the coordinates table only when asked (issue #13, item 17);
its numbers equal the quadratic (all case-control pairs) definitions, ties and both directions included."""

import numpy as np
import pytest

from osteomri.stats import delong_test, roc_analysis
from osteomri.stats import roc as roc_module


def _quadratic(y, x, direction):
    """AUC, DeLong variance and placement values from every case-control pair (DeLong et al. 1988)."""
    xc, xk = (x[y], x[~y]) if direction == "<" else (-x[y], -x[~y])
    psi = (xc[:, None] > xk[None, :]) + 0.5 * (xc[:, None] == xk[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    auc = psi.mean()
    return auc, v10.var(ddof=1) / xc.size + v01.var(ddof=1) / xk.size, v10, v01


@pytest.mark.parametrize("direction", ["<", ">"])
@pytest.mark.parametrize("decimals", [0, 1, 6])  # heavy ties ... none
def test_auc_variance_and_curve_equal_the_pairwise_definitions(direction, decimals):
    rng = np.random.default_rng(decimals)
    y = rng.random(300) < 0.35
    x = np.round(rng.normal(size=300) * 2 + (1 if direction == "<" else -1) * y, decimals)
    r = roc_analysis(y, x, direction=direction)
    auc, var, _, _ = _quadratic(y, x, direction)
    assert r.auc == pytest.approx(auc, rel=1e-12)
    assert r.auc_var == pytest.approx(var, rel=1e-9)
    # every threshold's sensitivity and specificity by direct counting
    t = r.curve["threshold"].to_numpy()
    pos = x[None, :] >= t[:, None] if direction == "<" else x[None, :] <= t[:, None]
    np.testing.assert_array_equal(r.curve["tp"], pos[:, y].sum(axis=1))
    np.testing.assert_array_equal(r.curve["tn"], (~pos[:, ~y]).sum(axis=1))
    assert len(t) == np.unique(x).size + 1
    j = int(np.argmax(r.curve["youden_j"].to_numpy()))
    assert r.cutoff == t[j] and (r.tp, r.fp) == (r.curve["tp"][j], r.curve["fp"][j])


def test_paired_delong_covariance_equals_the_pairwise_definition():
    rng = np.random.default_rng(3)
    y = rng.random(250) < 0.4
    a = np.round(rng.normal(size=250) + y, 1)
    b = np.round(rng.normal(size=250) + 0.6 * y + 0.4 * a, 1)
    t = delong_test(y, a, b)
    _, va, v10a, v01a = _quadratic(y, a, "<")
    _, vb, v10b, v01b = _quadratic(y, b, "<")
    cov = np.cov(v10a, v10b)[0, 1] / y.sum() + np.cov(v01a, v01b)[0, 1] / (~y).sum()
    assert t.covariance == pytest.approx(cov, rel=1e-9)
    assert t.diff_se == pytest.approx(np.sqrt(va + vb - 2 * cov), rel=1e-9)


def test_roc_analysis_sorts_each_group_once_and_builds_the_table_lazily(monkeypatch):
    """No ``unique(return_inverse)`` or full-length argsort of the raw data, no coordinates table until read."""
    rng = np.random.default_rng(0)
    y = rng.random(20_000) < 0.3
    x = rng.normal(size=20_000) + y
    calls = {"curve": 0, "unique": 0, "argsort_unstable": 0}
    real_curve, real_unique, real_argsort = roc_module._curve, np.unique, np.argsort

    def curve(core):
        calls["curve"] += 1
        return real_curve(core)

    def unique(*args, **kwargs):
        calls["unique"] += 1
        return real_unique(*args, **kwargs)

    def argsort(a, *args, kind=None, **kwargs):
        if kind != "stable":  # a stable argsort of the two pre-sorted runs is a linear merge
            calls["argsort_unstable"] += 1
        return real_argsort(a, *args, kind=kind, **kwargs)

    monkeypatch.setattr(roc_module, "_curve", curve)
    monkeypatch.setattr(np, "unique", unique)
    monkeypatch.setattr(np, "argsort", argsort)
    r = roc_analysis(y, x)
    assert calls == {"curve": 0, "unique": 0, "argsort_unstable": 0}
    assert len(r.curve) == 20_001 and calls["curve"] == 1
    r.curve  # noqa: B018  (cached)
    assert calls["curve"] == 1
