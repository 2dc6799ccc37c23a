"""Venkatraman's permutation tests comparing two ROC curves (whole curves, not only AUCs).

**Paired** (same subjects, both markers):

Venkatraman ES, Begg CB (1996), Biometrika 83:835–848. Each marker is replaced by its ranks (ties broken
by order of appearance, as pROC's default ``ties.method="first"``). At each rank cut-point k = 1…N−1 the
number of misclassified subjects when the k lowest ranks are called negative is
e(k) = #{cases with rank ≤ k} + #{controls with rank > k}; the statistic is E = Σ_k |e_X(k) − e_Y(k)|
(an integer). Its null distribution is obtained by exchanging the two markers' ranks within randomly
chosen subjects and re-ranking (ties broken at random); the p-value is the proportion of permuted E at
least as large as the observed one. Direction: a higher value means a case (pROC direction "<"); for
markers where lower values indicate disease pass ``direction=">"``.

**Unpaired** (independent samples): Venkatraman ES (2000), Biometrics 56:1134–1138. Each test k is
standardised to its mixture distribution Ĥ_k (ranks, ties broken by order of appearance, divided by the
sample size n_k). With the pooled mixing proportion m = (cases_1 + cases_2) / (n_1 + n_2), the error curve
at mixture percentile p is e_k(p) = m·Ĝ_k(c) + (1 − m)·(1 − F̂_k(c)), c = Ĥ_k⁻¹(p) (Ĝ, F̂: empirical CDFs
of cases and controls, a case misclassified when at or below the cut-point). The statistic is
E = ∫|e_1(p) − e_2(p)| dp, taken as the mean over N = n_1 + n_2 equally spaced percentiles
p_j = j/(N − 1), j = 0…N−1, with Ĥ_k⁻¹(p) the upper order statistic ⌈p·(n_k − 1)⌉ (as pROC 1.18 computes it).
Under H0 the standardised values are exchangeable between the tests within the cases and within the
controls: the null distribution pools them per disease group, reassigns them at random to the two tests
(keeping each test's group sizes) and re-ranks with random tie-breaking.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from osteomri.errors import InputError
from osteomri.stats.roc import Direction, _auto_direction, _prepare

__all__ = ["VenkatramanResult", "venkatraman_test", "venkatraman_test_unpaired"]


@dataclass
class VenkatramanResult:
    """Venkatraman permutation test (paired or unpaired): statistic E and permutation p-value."""

    statistic: float
    p_value: float
    n_permutations: int
    n_cases: int
    n_controls: int
    n_dropped: int = 0
    paired: bool = True

    def to_frame(self) -> pd.DataFrame:
        name = "Venkatraman paired" if self.paired else "Venkatraman unpaired"
        return pd.DataFrame([{"test": name, "E": self.statistic, "p_value": self.p_value,
                              "n_permutations": self.n_permutations}])


def _e_stat(ranks_x: np.ndarray, ranks_y: np.ndarray, sign: np.ndarray) -> np.ndarray:
    """E for each row of rank matrices (1..N per row); ``sign`` is +1 for cases, −1 for controls."""
    order_x = np.argsort(ranks_x, axis=-1)
    order_y = np.argsort(ranks_y, axis=-1)
    cx = np.cumsum(sign[order_x], axis=-1)[..., :-1]
    cy = np.cumsum(sign[order_y], axis=-1)[..., :-1]
    return np.abs(cx - cy).sum(axis=-1)


def _random_tie_ranks(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ranks 1..n along the last axis, ties broken at random."""
    order = np.lexsort((rng.random(values.shape), values), axis=-1)
    return np.argsort(order, axis=-1) + 1


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
        rr, rs = _random_tie_ranks(pr, rng), _random_tie_ranks(ps, rng)
        count += int((_e_stat(rr, rs, sign) >= observed).sum())
    return VenkatramanResult(statistic=observed, p_value=count / n_permutations, n_permutations=n_permutations,
                             n_cases=int(y.is_case.sum()), n_controls=int((~y.is_case).sum()),
                             n_dropped=n_dropped)


def _oriented_ranks(outcome: Any, marker: Any, positive: Any, direction: Direction, nan_policy: str,
                    name: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Ranks 1..n (ties by order of appearance) of a marker oriented so that higher means case."""
    y, cols, n_dropped = _prepare(outcome, {name: marker}, positive, nan_policy, "Venkatraman test")
    x = cols[name]
    d = _auto_direction(x, y.is_case) if direction == "auto" else direction
    if d not in "<>":
        raise InputError("directions must be 'auto', '<' or '>'")
    return stats.rankdata(x if d == "<" else -x, method="ordinal").astype(np.int64), y.is_case, n_dropped


def _unpaired_error_curve(ranks: np.ndarray, is_case: np.ndarray, mix: float, n_grid: int) -> np.ndarray:
    """e_k(p_j) for each row of a rank matrix [..., n_k] (ranks 1..n_k) on the grid p_j = j/(n_grid − 1)."""
    n = ranks.shape[-1]
    n_cases = int(is_case.sum())
    order = np.argsort(ranks, axis=-1)
    cases_at_or_below = np.concatenate(
        [np.zeros(ranks.shape[:-1] + (1,)), np.cumsum(is_case[order], axis=-1)], axis=-1)
    j = np.arange(n_grid)
    cut = -(-j * (n - 1) // (n_grid - 1)) + 1  # rank of the upper order statistic at p_j (exact integers)
    cases_le = cases_at_or_below[..., cut]
    controls_gt = (n - n_cases) - (cut - cases_le)
    return mix * cases_le / n_cases + (1.0 - mix) * controls_gt / (n - n_cases)


def _unpaired_stat(r1: np.ndarray, y1: np.ndarray, r2: np.ndarray, y2: np.ndarray) -> np.ndarray:
    n_grid = r1.shape[-1] + r2.shape[-1]
    mix = (y1.sum() + y2.sum()) / n_grid
    e1 = _unpaired_error_curve(r1, y1, mix, n_grid)
    e2 = _unpaired_error_curve(r2, y2, mix, n_grid)
    return np.abs(e1 - e2).mean(axis=-1)


def venkatraman_test_unpaired(
    outcome_a: Any,
    marker_a: Any,
    outcome_b: Any,
    marker_b: Any,
    *,
    n_permutations: int = 2000,
    random_state: int | np.random.Generator | None = None,
    positive: Any = None,
    direction_a: Direction = "auto",
    direction_b: Direction = "auto",
    nan_policy: Literal["omit", "raise"] = "omit",
) -> VenkatramanResult:
    """Venkatraman (2000) permutation test of two ROC curves from independent samples (module docstring).

    ``outcome_a``/``marker_a`` and ``outcome_b``/``marker_b`` are the two samples (any sizes). The
    statistic E is a mean absolute difference of error rates (0–1); the p-value is the proportion of
    permuted E at least as large as the observed one.
    """
    if n_permutations < 1:
        raise InputError(f"n_permutations must be positive, got {n_permutations}")
    r1, y1, drop1 = _oriented_ranks(outcome_a, marker_a, positive, direction_a, nan_policy, "marker_a")
    r2, y2, drop2 = _oriented_ranks(outcome_b, marker_b, positive, direction_b, nan_policy, "marker_b")
    observed = float(_unpaired_stat(r1, y1, r2, y2))
    # standardised (mixture-percentile) values, pooled per disease group for the permutations
    h1, h2 = r1 / r1.size, r2 / r2.size
    groups = []
    for group in (True, False):
        pool = np.concatenate([h1[y1 == group], h2[y2 == group]])
        groups.append((group, pool, int((y1 == group).sum())))
    rng = np.random.default_rng(random_state)
    count = 0
    chunk = max(1, 2_000_000 // (r1.size + r2.size))
    tol = 1e-12 * max(observed, 1.0)
    for start in range(0, n_permutations, chunk):
        b = min(chunk, n_permutations - start)
        v1 = np.empty((b, r1.size))
        v2 = np.empty((b, r2.size))
        for group, pool, n_in_1 in groups:
            shuffled = np.take(pool, rng.permuted(np.broadcast_to(np.arange(pool.size), (b, pool.size)), axis=1))
            v1[:, y1 == group] = shuffled[:, :n_in_1]
            v2[:, y2 == group] = shuffled[:, n_in_1:]
        perm = _unpaired_stat(_random_tie_ranks(v1, rng), y1, _random_tie_ranks(v2, rng), y2)
        count += int((perm >= observed - tol).sum())
    return VenkatramanResult(statistic=observed, p_value=count / n_permutations, n_permutations=n_permutations,
                             n_cases=int(y1.sum() + y2.sum()), n_controls=int((~y1).sum() + (~y2).sum()),
                             n_dropped=drop1 + drop2, paired=False)
