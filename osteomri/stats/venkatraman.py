"""Venkatraman & Begg's permutation test comparing two paired ROC curves (whole curves, not only AUCs).

Venkatraman ES, Begg CB (1996), Biometrika 83:835–848. Each marker is replaced by its ranks (ties broken
by order of appearance, as pROC's default ``ties.method="first"``). At each rank cut-point k = 1…N−1 the
number of misclassified subjects when the k lowest ranks are called negative is
e(k) = #{cases with rank ≤ k} + #{controls with rank > k}; the statistic is E = Σ_k |e_X(k) − e_Y(k)|
(an integer). Its null distribution is obtained by exchanging the two markers' ranks within randomly
chosen subjects and re-ranking (ties broken at random); the p-value is the proportion of permuted E at
least as large as the observed one. Direction: a higher value means a case (pROC direction "<"); for
markers where lower values indicate disease pass ``direction=">"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from osteomri.errors import InputError
from osteomri.stats.roc import Direction, _auto_direction, _prepare

__all__ = ["VenkatramanResult", "venkatraman_test"]


@dataclass
class VenkatramanResult:
    """Venkatraman–Begg paired permutation test: statistic E and permutation p-value."""

    statistic: float
    p_value: float
    n_permutations: int
    n_cases: int
    n_controls: int
    n_dropped: int = 0

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"test": "Venkatraman paired", "E": self.statistic, "p_value": self.p_value,
                              "n_permutations": self.n_permutations}])


def _e_stat(ranks_x: np.ndarray, ranks_y: np.ndarray, sign: np.ndarray) -> np.ndarray:
    """E for each row of rank matrices (1..N per row); ``sign`` is +1 for cases, −1 for controls."""
    order_x = np.argsort(ranks_x, axis=-1)
    order_y = np.argsort(ranks_y, axis=-1)
    cx = np.cumsum(sign[order_x], axis=-1)[..., :-1]
    cy = np.cumsum(sign[order_y], axis=-1)[..., :-1]
    return np.abs(cx - cy).sum(axis=-1)


def venkatraman_test(
    outcome: Any,
    marker_a: Any,
    marker_b: Any,
    *,
    n_permutations: int = 2000,
    random_state: int | np.random.Generator | None = None,
    positive: Any = None,
    direction_a: Direction = "auto",
    direction_b: Direction = "auto",
    nan_policy: Literal["omit", "raise"] = "omit",
) -> VenkatramanResult:
    """Venkatraman & Begg (1996) permutation test of two paired ROC curves (see module docstring)."""
    if n_permutations < 1:
        raise InputError(f"n_permutations must be positive, got {n_permutations}")
    y, cols, n_dropped = _prepare(outcome, {"a": marker_a, "b": marker_b}, positive, nan_policy,
                                  "Venkatraman test")
    xa, xb = cols["a"], cols["b"]
    da = _auto_direction(xa, y.is_case) if direction_a == "auto" else direction_a
    db = _auto_direction(xb, y.is_case) if direction_b == "auto" else direction_b
    if da not in "<>" or db not in "<>":
        raise InputError("directions must be 'auto', '<' or '>'")
    xa = xa if da == "<" else -xa
    xb = xb if db == "<" else -xb
    r = stats.rankdata(xa, method="ordinal")
    s = stats.rankdata(xb, method="ordinal")
    sign = np.where(y.is_case, 1, -1)
    observed = float(_e_stat(r, s, sign))
    rng = np.random.default_rng(random_state)
    n = r.size
    count = 0
    chunk = max(1, 2_000_000 // n)
    for start in range(0, n_permutations, chunk):
        b = min(chunk, n_permutations - start)
        swap = rng.random((b, n)) < 0.5
        pr, ps = np.where(swap, s, r), np.where(swap, r, s)
        tie_r, tie_s = rng.random((b, n)), rng.random((b, n))
        # re-rank with random tie-breaking: sort by (value, random key)
        rr = np.argsort(np.lexsort((tie_r, pr), axis=-1), axis=-1)
        rs = np.argsort(np.lexsort((tie_s, ps), axis=-1), axis=-1)
        count += int((_e_stat(rr, rs, sign) >= observed).sum())
    return VenkatramanResult(statistic=observed, p_value=count / n_permutations, n_permutations=n_permutations,
                             n_cases=int(y.is_case.sum()), n_controls=int((~y.is_case).sum()),
                             n_dropped=n_dropped)
