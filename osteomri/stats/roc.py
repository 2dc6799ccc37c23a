"""Receiver operating characteristic (ROC) analysis with DeLong inference, as R's pROC reports it.

Conventions (those of pROC, Robin et al. 2011, so that numbers agree with it exactly):

- ``direction="<"`` means controls have *lower* marker values than cases; an observation is called
  positive when ``marker >= threshold``. ``">"`` is the mirror (positive when ``marker <= threshold``).
  ``"auto"`` picks ``">"`` when the median of the controls exceeds the median of the cases, else ``"<"``.
- Thresholds are ``-inf``, the midpoints between consecutive distinct observed values, and ``+inf``.
- The AUC is the Mann–Whitney probability P(case > control) + ½ P(tie) (Hanley & McNeil 1982).
- Its variance is DeLong's (DeLong, DeLong & Clarke-Pearson 1988, Biometrics 44:837), computed from
  placement values by the O(n log n) algorithm of Sun & Xu (2014, IEEE Signal Process Lett 21:1389): one
  sort of the pooled values gives every placement value, so the variance costs no more than the AUC.
- The 95 % CI of the AUC is ``AUC ± z(0.975)·SE`` truncated to [0, 1] (pROC ``ci.auc``, method "delong"),
  or a stratified bootstrap percentile interval (Carpenter & Bithell 2000; pROC method "bootstrap").
- The optimal cut-off maximises Youden's index J = Se + Sp − 1 (Youden 1950, Cancer 3:32) or minimises
  the distance to the top-left corner; pROC's ``coords(ret="youden")`` column is Se + Sp (= J + 1).
- Sensitivity and specificity CIs at the cut-off are exact Clopper–Pearson intervals (Clopper & Pearson
  1934, Biometrika 26:404; what MedCalc reports), Wilson score intervals (Wilson 1927), or stratified
  bootstrap percentiles at the fixed threshold (pROC ``ci.thresholds``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from osteomri.errors import InputError
from osteomri.stats._validate import (
    MissingDataWarning,
    as_float,
    binary_outcome,
    check_not_constant,
    drop_missing,
)

Direction = Literal["auto", "<", ">"]

__all__ = [
    "RocResult",
    "DelongTestResult",
    "roc_analysis",
    "delong_test",
    "delong_test_unpaired",
    "partial_auc",
    "proportion_ci",
    "predictive_values",
    "local_maxima",
    "ci_best_coords",
    "ci_thresholds",
]


# --------------------------------------------------------------------------------------------------
# core: one sort gives the curve, the AUC and DeLong's placement values
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Core:
    values: np.ndarray  # distinct sorted marker values
    c1: np.ndarray  # number of cases at each distinct value
    c0: np.ndarray  # number of controls at each distinct value
    cum1: np.ndarray  # cases at or below each distinct value
    cum0: np.ndarray  # controls at or below each distinct value
    n1: int
    n0: int
    direction: str
    v10_u: np.ndarray  # placement value of a case at each distinct value (fraction of controls it beats)
    v01_u: np.ndarray  # placement value of a control at each distinct value (fraction of cases beating it)
    auc: float
    var: float

    def placements(self, x: np.ndarray, is_case: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-observation placement values (cases, controls) of ``x`` (the data of this core), original order."""
        order = np.argsort(x)  # the pairing across markers needs each observation's distinct-value index
        first = np.empty(x.size, dtype=bool)
        first[0] = True
        xs = x[order]
        np.not_equal(xs[1:], xs[:-1], out=first[1:])
        index = np.empty(x.size, dtype=np.int64)
        index[order] = np.cumsum(first) - 1
        return self.v10_u[index[is_case]], self.v01_u[index[~is_case]]


def _median_sorted(s: np.ndarray) -> float:
    """Median of an ascending array (as ``np.median``: the mean of the two middle values when even)."""
    m = s.size // 2
    return float(s[m]) if s.size % 2 else float(np.mean(s[m - 1:m + 1]))


def _auto_direction(x: np.ndarray, is_case: np.ndarray, sorted_cases: np.ndarray | None = None,
                    sorted_controls: np.ndarray | None = None) -> str:
    """pROC's ``direction="auto"``: ``">"`` when the controls' median exceeds the cases' median."""
    xc = np.sort(x[is_case]) if sorted_cases is None else sorted_cases
    xk = np.sort(x[~is_case]) if sorted_controls is None else sorted_controls
    return ">" if _median_sorted(xk) > _median_sorted(xc) else "<"


def _split_sorted(x: np.ndarray, is_case: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cases' and controls' values, each sorted ascending."""
    return np.sort(x[is_case]), np.sort(x[~is_case])


def _core(x: np.ndarray, is_case: np.ndarray, direction: str,
          sorted_groups: tuple[np.ndarray, np.ndarray] | None = None) -> _Core:
    """Counts per distinct value, placement values, AUC and DeLong variance from the two sorted groups.

    Cost: one value sort per group (no full-length argsort of the raw data, no ``unique(return_inverse=True)``);
    the pooled order is a stable merge of the two sorted runs (linear), whose case flags give the cumulative
    case and control counts at each distinct value directly.
    """
    xc, xk = _split_sorted(x, is_case) if sorted_groups is None else sorted_groups
    n1, n0 = xc.size, xk.size
    runs = np.concatenate((xc, xk))
    order = np.argsort(runs, kind="stable")  # timsort: merges the two ascending runs
    pooled = runs[order]
    first = np.empty(pooled.size, dtype=bool)
    first[0] = True
    np.not_equal(pooled[1:], pooled[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    values = pooled[starts]
    last = np.append(starts[1:], pooled.size) - 1  # index of the last observation at each distinct value
    cum1 = np.cumsum(order < n1)[last]  # cases at or below each distinct value
    cum0 = last + 1 - cum1
    c1, c0 = np.diff(cum1, prepend=0), np.diff(cum0, prepend=0)
    c1f, c0f = c1.astype(float), c0.astype(float)
    # placement values; every term is an integer or a half-integer, so each form below is exact
    v10_u, v01_u = c0f * -0.5, c1f * 0.5
    if direction == "<":
        v10_u += cum0  # controls strictly below + half the ties
        v01_u += n1 - cum1  # cases strictly above + half the ties
    else:
        v10_u += n0 - cum0 + c0
        v01_u += cum1
        v01_u -= c1
    v10_u /= n0
    v01_u /= n1
    auc = float(c1f @ v10_u) / n1
    # DeLong 1988: S10 and S01 are the sample variances of the placement values (Sun & Xu 2014, eq. 3)
    s10 = float(c1f @ np.square(v10_u - auc)) / (n1 - 1) if n1 > 1 else 0.0
    s01 = float(c0f @ np.square(v01_u - auc)) / (n0 - 1) if n0 > 1 else 0.0
    return _Core(values, c1, c0, cum1, cum0, n1, n0, direction, v10_u, v01_u, auc, s10 / n1 + s01 / n0)


_CURVE_FLOATS = ("threshold", "sensitivity", "specificity", "ppv", "npv", "accuracy", "lr_pos", "lr_neg",
                 "youden_j", "closest_topleft")
_CURVE_COLUMNS = ("threshold", "sensitivity", "specificity", "tp", "fp", "tn", "fn", "ppv", "npv", "accuracy",
                  "lr_pos", "lr_neg", "youden_j", "closest_topleft")


def _thresholds(values: np.ndarray) -> np.ndarray:
    """``-inf``, the midpoints between consecutive distinct values, ``+inf`` (pROC)."""
    t = np.empty(values.size + 1)
    t[0], t[-1] = -np.inf, np.inf
    np.add(values[:-1], values[1:], out=t[1:-1])
    t[1:-1] /= 2.0
    return t


def _positives(core: _Core) -> tuple[np.ndarray, np.ndarray]:
    """True and false positives at each threshold of :func:`_thresholds` (int64)."""
    below1 = np.concatenate(([0], core.cum1))  # cases with value < threshold
    below0 = np.concatenate(([0], core.cum0))
    if core.direction == "<":  # positive: value >= threshold
        return core.n1 - below1, core.n0 - below0
    return below1, below0  # positive: value <= threshold


def _curve_frame(thresholds: np.ndarray, tp: np.ndarray, fp: np.ndarray, n1: int, n0: int) -> pd.DataFrame:
    """Counts and rates at the given thresholds (element-wise: any subset of rows gives the same numbers),
    built in one float block (no per-column copies)."""
    block = np.empty((len(_CURVE_FLOATS), thresholds.size))
    f = dict(zip(_CURVE_FLOATS, block, strict=True))
    f["threshold"][:] = thresholds
    fn, tn = n1 - tp, n0 - fp
    se, sp = f["sensitivity"], f["specificity"]
    np.divide(tp, n1, out=se)
    np.divide(tn, n0, out=sp)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(tp, tp + fp, out=f["ppv"])
        np.divide(tn, tn + fn, out=f["npv"])
        np.divide(se, 1.0 - sp, out=f["lr_pos"])
        np.divide(1.0 - se, sp, out=f["lr_neg"])
    np.divide(tp + tn, n1 + n0, out=f["accuracy"])
    np.add(se, sp, out=f["youden_j"])
    f["youden_j"] -= 1.0
    np.add((1.0 - se) ** 2, (1.0 - sp) ** 2, out=f["closest_topleft"])
    df = pd.DataFrame(block.T, columns=list(_CURVE_FLOATS), copy=False)
    for name, arr in (("tp", tp), ("fp", fp), ("tn", tn), ("fn", fn)):
        df.insert(_CURVE_COLUMNS.index(name), name, arr)
    return df


def _curve(core: _Core) -> pd.DataFrame:
    """The full coordinates table: one row per threshold (pROC ``coords(ret="all")``)."""
    tp, fp = _positives(core)
    return _curve_frame(_thresholds(core.values), tp, fp, core.n1, core.n0)


def _prepare(outcome: Any, markers: dict[str, Any], positive: Any, nan_policy: str, what: str):
    outcome_arr = np.asarray(outcome.to_numpy() if isinstance(outcome, pd.Series) else outcome)
    cols: dict[str, np.ndarray] = {"outcome": outcome_arr.astype(object) if outcome_arr.dtype.kind in "OUS"
                                   else outcome_arr}
    for name, m in markers.items():
        cols[name] = as_float(m, name)
    cols, n_dropped = drop_missing(cols, nan_policy, what)
    y = binary_outcome(cols.pop("outcome"), positive)
    for name, arr in cols.items():
        if not np.all(np.isfinite(arr)):
            raise InputError(f"{name} contains infinite values")
        check_not_constant(arr, f"marker {name!r}")
    return y, cols, n_dropped


# --------------------------------------------------------------------------------------------------
# confidence intervals for proportions and predictive values
# --------------------------------------------------------------------------------------------------
def proportion_ci(successes: int, n: int, conf_level: float = 0.95,
                  method: Literal["clopper-pearson", "wilson"] = "clopper-pearson") -> tuple[float, float]:
    """Two-sided CI of a binomial proportion.

    ``"clopper-pearson"``: exact interval from beta quantiles (Clopper & Pearson 1934), as R's
    ``binom.test`` and MedCalc report it. ``"wilson"``: score interval (Wilson 1927, JASA 22:209).
    """
    if n <= 0:
        return (np.nan, np.nan)
    alpha = 1.0 - conf_level
    if method == "clopper-pearson":
        lo = 0.0 if successes == 0 else stats.beta.ppf(alpha / 2, successes, n - successes + 1)
        hi = 1.0 if successes == n else stats.beta.ppf(1 - alpha / 2, successes + 1, n - successes)
        return float(lo), float(hi)
    if method == "wilson":
        z = stats.norm.ppf(1 - alpha / 2)
        p = successes / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        return float(centre - half), float(centre + half)
    raise InputError(f"unknown proportion CI method {method!r}; use 'clopper-pearson' or 'wilson'")


def predictive_values(sensitivity: float, specificity: float, prevalence: float) -> tuple[float, float]:
    """PPV and NPV at a given prevalence by Bayes' theorem (Altman & Bland 1994, BMJ 309:102)."""
    if not 0.0 < prevalence < 1.0:
        raise InputError(f"prevalence must lie strictly between 0 and 1, got {prevalence}")
    ppv = sensitivity * prevalence / (sensitivity * prevalence + (1 - specificity) * (1 - prevalence))
    npv = specificity * (1 - prevalence) / (specificity * (1 - prevalence) + (1 - sensitivity) * prevalence)
    return float(ppv), float(npv)


# --------------------------------------------------------------------------------------------------
# ROC analysis of one marker
# --------------------------------------------------------------------------------------------------
@dataclass
class RocResult:
    """ROC analysis of one marker (see the module docstring for the conventions)."""

    auc: float
    auc_se: float
    auc_ci_low: float
    auc_ci_high: float
    ci_method: str
    p_value: float  # two-sided z-test of AUC = 0.5 with the DeLong SE
    direction: str
    positive: Any
    n_cases: int
    n_controls: int
    n_dropped: int
    cutoff: float
    sensitivity: float
    specificity: float
    youden_j: float
    sensitivity_ci: tuple[float, float]
    specificity_ci: tuple[float, float]
    tp: int
    fp: int
    tn: int
    fn: int
    lr_pos: float
    lr_neg: float
    ppv: float  # at the sample prevalence
    npv: float
    best_method: str
    n_tied_best: int
    conf_level: float
    marker_name: str = "marker"
    bootstrap_aucs: np.ndarray | None = field(default=None, repr=False)
    _core: _Core | None = field(default=None, repr=False, compare=False)

    @cached_property
    def curve(self) -> pd.DataFrame:
        """Every threshold's counts and rates (built on first access: the analysis itself needs only Se and Sp)."""
        return _curve(self._core)

    @property
    def auc_var(self) -> float:
        """DeLong variance of the AUC."""
        return self.auc_se**2

    def predictive_values(self, prevalence: float) -> tuple[float, float]:
        """(PPV, NPV) at the chosen cut-off for a population with the given prevalence."""
        return predictive_values(self.sensitivity, self.specificity, prevalence)

    def to_frame(self) -> pd.DataFrame:
        """One tidy row: the columns of a paper's ROC table."""
        return pd.DataFrame([{
            "marker": self.marker_name, "n_cases": self.n_cases, "n_controls": self.n_controls,
            "auc": self.auc, "auc_se": self.auc_se, "auc_ci_low": self.auc_ci_low, "auc_ci_high": self.auc_ci_high,
            "p_value": self.p_value, "direction": self.direction, "cutoff": self.cutoff,
            "sensitivity": self.sensitivity, "sensitivity_ci_low": self.sensitivity_ci[0],
            "sensitivity_ci_high": self.sensitivity_ci[1], "specificity": self.specificity,
            "specificity_ci_low": self.specificity_ci[0], "specificity_ci_high": self.specificity_ci[1],
            "youden_j": self.youden_j, "lr_pos": self.lr_pos, "lr_neg": self.lr_neg, "ppv": self.ppv,
            "npv": self.npv, "n_dropped": self.n_dropped,
        }])


def _bootstrap_aucs(xc: np.ndarray, xk: np.ndarray, direction: str, n_bootstrap: int,
                    rng: np.random.Generator, max_cells: int = 4_000_000) -> np.ndarray:
    """AUCs of stratified bootstrap replicates (cases and controls resampled separately)."""
    sign = 1.0 if direction == "<" else -1.0
    xc, xk = sign * xc, sign * xk
    n1, n0 = xc.size, xk.size
    out = np.empty(n_bootstrap)
    chunk = max(1, max_cells // (n1 + n0))
    for start in range(0, n_bootstrap, chunk):
        b = min(chunk, n_bootstrap - start)
        sample = np.concatenate([xc[rng.integers(0, n1, (b, n1))], xk[rng.integers(0, n0, (b, n0))]], axis=1)
        ranks = stats.rankdata(sample, axis=1)
        out[start:start + b] = (ranks[:, :n1].sum(axis=1) - n1 * (n1 + 1) / 2.0) / (n1 * n0)
    return out


def _threshold_bootstrap(xc: np.ndarray, xk: np.ndarray, thresholds: np.ndarray, direction: str,
                         n_bootstrap: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Se and Sp at fixed thresholds in stratified bootstrap replicates: two arrays (n_bootstrap, n_thresholds).

    Cases are resampled first, then controls (one ``rng.integers`` draw each), so a given generator state
    always yields the same replicates.
    """
    case_idx = rng.integers(0, xc.size, (n_bootstrap, xc.size))
    control_idx = rng.integers(0, xk.size, (n_bootstrap, xk.size))
    if direction == "<":  # positive: value >= threshold
        case_pos = xc[:, None] >= thresholds[None, :]
        control_neg = xk[:, None] < thresholds[None, :]
    else:  # positive: value <= threshold
        case_pos = xc[:, None] <= thresholds[None, :]
        control_neg = xk[:, None] > thresholds[None, :]
    def rate(hit: np.ndarray, idx: np.ndarray) -> np.ndarray:  # replicates in chunks of ~8M gathered cells
        step = max(1, 8_000_000 // max(idx.shape[1] * thresholds.size, 1))
        return np.concatenate([hit[idx[b:b + step]].mean(axis=1) for b in range(0, n_bootstrap, step)])

    return rate(case_pos, case_idx), rate(control_neg, control_idx)


def roc_analysis(
    outcome: Any,
    marker: Any,
    *,
    positive: Any = None,
    direction: Direction = "auto",
    ci_method: Literal["delong", "bootstrap"] = "delong",
    n_bootstrap: int = 2000,
    random_state: int | np.random.Generator | None = None,
    conf_level: float = 0.95,
    best_method: Literal["youden", "closest.topleft"] = "youden",
    se_sp_ci: Literal["clopper-pearson", "wilson", "bootstrap"] = "clopper-pearson",
    nan_policy: Literal["omit", "raise"] = "omit",
    marker_name: str | None = None,
    best_within: tuple[str, tuple[float, float]] | None = None,
) -> RocResult:
    """Empirical ROC analysis of one marker against a binary outcome (pROC conventions).

    Parameters
    ----------
    outcome, marker
        Equal-length 1-D inputs. ``outcome`` is boolean, 0/1, or two labels (``positive`` names the case
        label; by default ``True``/1, or the second sorted label as R's factor levels).
    direction
        ``"<"`` controls lower than cases, ``">"`` the reverse, ``"auto"`` by the group medians (pROC).
    ci_method
        ``"delong"`` (DeLong et al. 1988) or ``"bootstrap"``: stratified percentile bootstrap of
        ``n_bootstrap`` replicates drawn with ``random_state``.
    best_method
        ``"youden"`` maximises Se + Sp − 1 (Youden 1950); ``"closest.topleft"`` minimises
        (1 − Se)² + (1 − Sp)². Ties keep the lowest threshold; ``n_tied_best`` counts them.
    se_sp_ci
        CI of sensitivity and specificity at the cut-off: exact Clopper–Pearson (default), Wilson, or the
        stratified bootstrap at the fixed threshold (pROC ``ci.thresholds``).
    best_within
        Restrict the cut-off search to a specificity or sensitivity range, e.g.
        ``("specificity", (0.99, 0.9))`` (pROC ``coords("best")`` on a ROC with ``partial.auc``).
    nan_policy
        ``"omit"`` drops observations with a missing outcome or marker, counting them in ``n_dropped`` and
        warning; ``"raise"`` refuses them.
    """
    if not 0 < conf_level < 1:
        raise InputError(f"conf_level must lie in (0, 1), got {conf_level}")
    name = marker_name or (marker.name if isinstance(marker, pd.Series) and marker.name is not None else "marker")
    y, cols, n_dropped = _prepare(outcome, {str(name): marker}, positive, nan_policy, f"ROC of {name}")
    x = cols[str(name)]
    groups = _split_sorted(x, y.is_case)  # the only sort: medians, distinct values and counts come from it
    if direction == "auto":
        direction = _auto_direction(x, y.is_case, *groups)
    elif direction not in ("<", ">"):
        raise InputError(f"direction must be 'auto', '<' or '>', got {direction!r}")
    core = _core(x, y.is_case, direction, groups)
    se_auc = float(np.sqrt(max(core.var, 0.0)))
    z = stats.norm.ppf(0.5 + conf_level / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_value = float(2 * stats.norm.sf(abs(core.auc - 0.5) / se_auc)) if se_auc > 0 else float(core.auc == 0.5)

    rng = np.random.default_rng(random_state)
    boot = None
    if ci_method == "delong":
        ci = (max(0.0, core.auc - z * se_auc), min(1.0, core.auc + z * se_auc))
    elif ci_method == "bootstrap":
        if n_bootstrap < 100:
            raise InputError(f"n_bootstrap must be at least 100 for a percentile CI, got {n_bootstrap}")
        boot = _bootstrap_aucs(x[y.is_case], x[~y.is_case], direction, n_bootstrap, rng)
        alpha = 1 - conf_level
        ci = tuple(float(q) for q in np.quantile(boot, [alpha / 2, 1 - alpha / 2]))
    else:
        raise InputError(f"ci_method must be 'delong' or 'bootstrap', got {ci_method!r}")

    tp_all, fp_all = _positives(core)
    rates = {"sensitivity": tp_all / core.n1, "specificity": (core.n0 - fp_all) / core.n0}
    allowed = None
    if best_within is not None:
        focus, (b0, b1) = best_within
        if focus not in ("specificity", "sensitivity"):
            raise InputError(f"best_within focus must be 'specificity' or 'sensitivity', got {focus!r}")
        allowed = (rates[focus] >= min(b0, b1)) & (rates[focus] <= max(b0, b1))
        if not allowed.any():
            raise InputError(f"no threshold has {focus} within {best_within[1]}")
    se_all, sp_all = rates["sensitivity"], rates["specificity"]
    if best_method == "youden":
        score = se_all + sp_all - 1.0
        if allowed is not None:
            score[~allowed] = -np.inf
        best = np.flatnonzero(np.abs(score - score.max()) <= 1e-12)
    elif best_method == "closest.topleft":
        score = (1.0 - se_all) ** 2 + (1.0 - sp_all) ** 2
        if allowed is not None:
            score[~allowed] = np.inf
        best = np.flatnonzero(np.abs(score - score.min()) <= 1e-12)
    else:
        raise InputError(f"best_method must be 'youden' or 'closest.topleft', got {best_method!r}")
    j = int(best[0])
    row = _curve_frame(_thresholds(core.values)[j:j + 1], tp_all[j:j + 1], fp_all[j:j + 1], core.n1,
                       core.n0).iloc[0]
    tp, fp, tn, fn = (int(row[k]) for k in ("tp", "fp", "tn", "fn"))
    cutoff = float(row["threshold"])
    if se_sp_ci == "bootstrap":
        se_b, sp_b = _threshold_bootstrap(x[y.is_case], x[~y.is_case], np.array([cutoff]), direction,
                                          n_bootstrap, rng)
        se_b, sp_b = se_b[:, 0], sp_b[:, 0]
        alpha = 1 - conf_level
        se_ci = tuple(float(q) for q in np.quantile(se_b, [alpha / 2, 1 - alpha / 2]))
        sp_ci = tuple(float(q) for q in np.quantile(sp_b, [alpha / 2, 1 - alpha / 2]))
    else:
        se_ci = proportion_ci(tp, tp + fn, conf_level, se_sp_ci)
        sp_ci = proportion_ci(tn, tn + fp, conf_level, se_sp_ci)

    return RocResult(
        auc=core.auc, auc_se=se_auc, auc_ci_low=float(ci[0]), auc_ci_high=float(ci[1]), ci_method=ci_method,
        p_value=p_value, direction=direction, positive=y.positive, n_cases=core.n1, n_controls=core.n0,
        n_dropped=n_dropped, cutoff=cutoff, sensitivity=float(row["sensitivity"]),
        specificity=float(row["specificity"]), youden_j=float(row["youden_j"]), sensitivity_ci=se_ci,
        specificity_ci=sp_ci, tp=tp, fp=fp, tn=tn, fn=fn, lr_pos=float(row["lr_pos"]), lr_neg=float(row["lr_neg"]),
        ppv=float(row["ppv"]), npv=float(row["npv"]), best_method=best_method, n_tied_best=int(best.size),
        conf_level=conf_level, marker_name=str(name), bootstrap_aucs=boot, _core=core,
    )


# --------------------------------------------------------------------------------------------------
# comparing AUCs
# --------------------------------------------------------------------------------------------------
@dataclass
class DelongTestResult:
    """DeLong comparison of two AUCs. Paired: ``z`` is normal; unpaired: ``z`` is pROC's D with Welch df."""

    auc_a: float
    auc_b: float
    diff: float
    diff_se: float
    diff_ci_low: float
    diff_ci_high: float
    z: float
    p_value: float
    p_greater: float  # one-sided, H1: AUC_a > AUC_b
    p_less: float
    paired: bool
    df: float | None = None  # unpaired only
    covariance: float | None = None  # paired only
    n_cases: int = 0
    n_controls: int = 0
    n_dropped: int = 0
    direction_a: str = "<"
    direction_b: str = "<"
    name_a: str = "a"
    name_b: str = "b"

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{
            "marker_a": self.name_a, "marker_b": self.name_b, "auc_a": self.auc_a, "auc_b": self.auc_b,
            "diff": self.diff, "diff_ci_low": self.diff_ci_low, "diff_ci_high": self.diff_ci_high,
            "statistic": self.z, "df": self.df, "p_value": self.p_value,
            "test": "DeLong paired" if self.paired else "DeLong unpaired",
        }])


def delong_test(
    outcome: Any,
    marker_a: Any,
    marker_b: Any,
    *,
    positive: Any = None,
    direction_a: Direction = "auto",
    direction_b: Direction = "auto",
    conf_level: float = 0.95,
    nan_policy: Literal["omit", "raise"] = "omit",
    names: tuple[str, str] = ("a", "b"),
) -> DelongTestResult:
    """DeLong test of two correlated AUCs measured on the same subjects (DeLong et al. 1988).

    Z = (AUC_a − AUC_b) / √(Var_a + Var_b − 2 Cov_ab), where the variances and covariance come from the
    placement values (structural components) of each marker (Sun & Xu 2014, eq. 5). The CI of the
    difference is diff ± z·SE (pROC ``roc.test(method="delong", paired=TRUE)``).
    """
    y, cols, n_dropped = _prepare(outcome, {names[0]: marker_a, names[1]: marker_b}, positive, nan_policy,
                                  "paired DeLong test")
    xa, xb = cols[names[0]], cols[names[1]]
    ga, gb = _split_sorted(xa, y.is_case), _split_sorted(xb, y.is_case)
    da = _auto_direction(xa, y.is_case, *ga) if direction_a == "auto" else direction_a
    db = _auto_direction(xb, y.is_case, *gb) if direction_b == "auto" else direction_b
    ca, cb = _core(xa, y.is_case, da, ga), _core(xb, y.is_case, db, gb)
    v10a, v01a = ca.placements(xa, y.is_case)
    v10b, v01b = cb.placements(xb, y.is_case)
    n1, n0 = ca.n1, ca.n0
    cov = float(np.cov(v10a, v10b, ddof=1)[0, 1] / n1 + np.cov(v01a, v01b, ddof=1)[0, 1] / n0)
    diff = ca.auc - cb.auc
    var = ca.var + cb.var - 2.0 * cov
    se = float(np.sqrt(max(var, 0.0)))
    if se == 0.0 or abs(diff) < 1e-15 and se < 1e-12:
        z = 0.0 if abs(diff) < 1e-15 else np.copysign(np.inf, diff)
    else:
        z = diff / se
    q = stats.norm.ppf(0.5 + conf_level / 2)
    return DelongTestResult(
        auc_a=ca.auc, auc_b=cb.auc, diff=diff, diff_se=se, diff_ci_low=diff - q * se, diff_ci_high=diff + q * se,
        z=float(z), p_value=float(2 * stats.norm.sf(abs(z))), p_greater=float(stats.norm.sf(z)),
        p_less=float(stats.norm.cdf(z)), paired=True, covariance=cov, n_cases=n1, n_controls=n0,
        n_dropped=n_dropped, direction_a=da, direction_b=db, name_a=names[0], name_b=names[1],
    )


def delong_test_unpaired(
    outcome_a: Any,
    marker_a: Any,
    outcome_b: Any,
    marker_b: Any,
    *,
    positive: Any = None,
    direction_a: Direction = "auto",
    direction_b: Direction = "auto",
    conf_level: float = 0.95,
    nan_policy: Literal["omit", "raise"] = "omit",
    names: tuple[str, str] = ("a", "b"),
) -> DelongTestResult:
    """Compare two AUCs from independent samples (DeLong variances, no covariance).

    D = (AUC_a − AUC_b) / √(Var_a + Var_b), referred to a t distribution with Welch–Satterthwaite degrees
    of freedom df = (Var_a + Var_b)² / (Var_a²/(N_a − 1) + Var_b²/(N_b − 1)), N = cases + controls, as in
    pROC's unpaired ``roc.test``. The CI of the difference uses the same t quantile.
    """
    ra = roc_analysis(outcome_a, marker_a, positive=positive, direction=direction_a, nan_policy=nan_policy,
                      marker_name=names[0], conf_level=conf_level)
    rb = roc_analysis(outcome_b, marker_b, positive=positive, direction=direction_b, nan_policy=nan_policy,
                      marker_name=names[1], conf_level=conf_level)
    va, vb = ra.auc_var, rb.auc_var
    na, nb = ra.n_cases + ra.n_controls, rb.n_cases + rb.n_controls
    se = float(np.sqrt(va + vb))
    diff = ra.auc - rb.auc
    df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
    d = diff / se
    q = stats.t.ppf(0.5 + conf_level / 2, df)
    return DelongTestResult(
        auc_a=ra.auc, auc_b=rb.auc, diff=diff, diff_se=se, diff_ci_low=diff - q * se, diff_ci_high=diff + q * se,
        z=float(d), p_value=float(2 * stats.t.sf(abs(d), df)), p_greater=float(stats.t.sf(d, df)),
        p_less=float(stats.t.cdf(d, df)), paired=False, df=float(df), n_cases=ra.n_cases + rb.n_cases,
        n_controls=ra.n_controls + rb.n_controls, n_dropped=ra.n_dropped + rb.n_dropped,
        direction_a=ra.direction, direction_b=rb.direction, name_a=names[0], name_b=names[1],
    )


# --------------------------------------------------------------------------------------------------
# partial AUC
# --------------------------------------------------------------------------------------------------
def partial_auc(
    roc: RocResult,
    *,
    focus: Literal["specificity", "sensitivity"] = "specificity",
    bounds: tuple[float, float] = (1.0, 0.9),
    correct: bool = False,
) -> float:
    """Area under the empirical ROC curve restricted to a specificity (or sensitivity) range.

    The curve is the polyline through the (Sp, Se) points; it is clipped exactly at the bounds by linear
    interpolation, as pROC's ``auc(partial.auc=...)``. ``correct=True`` applies McClish's standardisation
    (McClish 1989, Med Decis Making 9:190): (1 + (pAUC − min)/(max − min))/2 with ``min`` the area under the
    chance diagonal and ``max`` the width of the range; it is undefined (NaN, with a warning) when the pAUC
    lies below the diagonal.
    """
    lo, hi = sorted(float(b) for b in bounds)
    if not (0.0 <= lo < hi <= 1.0):
        raise InputError(f"partial AUC bounds must be two distinct values in [0, 1], got {bounds}")
    sp, se = roc.curve["specificity"].to_numpy(), roc.curve["sensitivity"].to_numpy()
    if focus == "specificity":
        u, v = sp, se
    elif focus == "sensitivity":
        u, v = se, sp
    else:
        raise InputError(f"focus must be 'specificity' or 'sensitivity', got {focus!r}")
    if u[0] > u[-1]:  # walk the (monotone) curve in increasing u
        u, v = u[::-1], v[::-1]
    u0, u1, v0, v1 = u[:-1], u[1:], v[:-1], v[1:]
    a, b = np.maximum(u0, lo), np.minimum(u1, hi)
    width = u1 - u0
    keep = (b > a) & (width > 0)
    slope = np.divide(v1 - v0, width, out=np.zeros_like(width), where=width > 0)
    va, vb = v0 + slope * (a - u0), v0 + slope * (b - u0)
    pauc = float(np.sum(np.where(keep, (b - a) * (va + vb) / 2.0, 0.0)))
    if not correct:
        return pauc
    max_area = hi - lo
    min_area = max_area - (hi**2 - lo**2) / 2.0
    if pauc < min_area:
        warnings.warn("partial AUC below the chance diagonal: McClish correction undefined", stacklevel=2)
        return float("nan")
    return (1.0 + (pauc - min_area) / (max_area - min_area)) / 2.0


# --------------------------------------------------------------------------------------------------
# corners of the curve and bootstrap of the optimal cut-off
# --------------------------------------------------------------------------------------------------
def local_maxima(roc: RocResult) -> pd.DataFrame:
    """Rows of ``roc.curve`` that are local maxima (upper-left corners) of the empirical ROC curve.

    With thresholds increasing, specificity never decreases and sensitivity never increases; a threshold is
    a local maximum when its specificity exceeds that of the previous threshold (or it is the first) and its
    sensitivity exceeds that of the next one (or it is the last). These are the only candidates for any
    optimal cut-off criterion monotone in Se and Sp (pROC ``coords(x = "local maximas")``).
    """
    se = roc.curve["sensitivity"].to_numpy()
    sp = roc.curve["specificity"].to_numpy()
    up = np.r_[True, sp[1:] > sp[:-1]]
    down = np.r_[se[:-1] > se[1:], True]
    return roc.curve[up & down].reset_index(drop=True)


def ci_best_coords(
    outcome: Any,
    marker: Any,
    *,
    n_bootstrap: int = 2000,
    random_state: int | np.random.Generator | None = None,
    conf_level: float = 0.95,
    best_method: Literal["youden", "closest.topleft"] = "youden",
    positive: Any = None,
    direction: Direction = "auto",
    nan_policy: Literal["omit", "raise"] = "omit",
) -> pd.DataFrame:
    """Stratified bootstrap CI of the optimal cut-off and of its Se and Sp (pROC ``ci.coords(x="best")``).

    In each replicate cases and controls are resampled separately, the ROC curve is rebuilt (direction kept
    from the full sample) and the best threshold is chosen again (lowest threshold among ties). Returns one
    row per quantity (threshold, specificity, sensitivity) with the percentile CI and the bootstrap median
    (Carpenter & Bithell 2000), columns ``ci_low``, ``median``, ``ci_high``.
    """
    if n_bootstrap < 100:
        raise InputError(f"n_bootstrap must be at least 100 for a percentile CI, got {n_bootstrap}")
    if best_method not in ("youden", "closest.topleft"):
        raise InputError(f"best_method must be 'youden' or 'closest.topleft', got {best_method!r}")
    base = roc_analysis(outcome, marker, positive=positive, direction=direction, nan_policy=nan_policy)
    y, cols, _ = _prepare(outcome, {"m": marker}, positive, nan_policy, "bootstrap of the best cut-off")
    x = cols["m"]
    xc, xk = x[y.is_case], x[~y.is_case]
    rng = np.random.default_rng(random_state)
    out = np.empty((n_bootstrap, 3))
    is_case = np.r_[np.ones(xc.size, bool), np.zeros(xk.size, bool)]
    for i in range(n_bootstrap):
        xb = np.concatenate([xc[rng.integers(0, xc.size, xc.size)], xk[rng.integers(0, xk.size, xk.size)]])
        curve = _curve(_core(xb, is_case, base.direction))
        if best_method == "youden":
            j = int(np.argmax(curve["youden_j"].to_numpy() > curve["youden_j"].max() - 1e-12))
        else:
            j = int(np.argmax(curve["closest_topleft"].to_numpy() < curve["closest_topleft"].min() + 1e-12))
        out[i] = curve["threshold"].iat[j], curve["specificity"].iat[j], curve["sensitivity"].iat[j]
    alpha = 1 - conf_level
    q = np.quantile(out, [alpha / 2, 0.5, 1 - alpha / 2], axis=0)
    return pd.DataFrame({"quantity": ["threshold", "specificity", "sensitivity"], "ci_low": q[0], "median": q[1],
                         "ci_high": q[2],
                         "estimate": [base.cutoff, base.specificity, base.sensitivity]})


def ci_thresholds(
    outcome: Any,
    marker: Any,
    thresholds: Literal["best"] | float | Sequence[float] = "best",
    *,
    n_bootstrap: int = 2000,
    random_state: int | np.random.Generator | None = None,
    conf_level: float = 0.95,
    best_method: Literal["youden", "closest.topleft"] = "youden",
    positive: Any = None,
    direction: Direction = "auto",
    nan_policy: Literal["omit", "raise"] = "omit",
) -> pd.DataFrame:
    """Stratified bootstrap CI of sensitivity and specificity at *fixed* thresholds (pROC ``ci.thresholds``).

    The thresholds are held fixed (unlike :func:`ci_best_coords`, which re-optimises the cut-off in each
    replicate). In each of the ``n_bootstrap`` replicates the ``n1`` cases and the ``n0`` controls are
    resampled with replacement separately (stratified bootstrap, Carpenter & Bithell 2000, Stat Med
    19:1141), and at every threshold ``t``

    - Se*(t) = #{resampled cases positive at t} / n1,
    - Sp*(t) = #{resampled controls negative at t} / n0,

    where "positive" is ``marker >= t`` for ``direction="<"`` and ``marker <= t`` for ``">"`` (pROC
    convention, see the module docstring). The interval is the percentile interval (quantiles
    ``(1 - conf_level)/2`` and ``(1 + conf_level)/2``, linear interpolation = R's quantile type 7) and
    ``median`` the bootstrap median — pROC prints the three as 2.5 %, 50 %, 97.5 %.

    Parameters
    ----------
    thresholds
        ``"best"`` (the cut-off :func:`roc_analysis` chooses with ``best_method``), one threshold, or a
        sequence of them, in marker units.

    Returns
    -------
    pandas.DataFrame
        Tidy long table, two rows per threshold: ``threshold``, ``quantity`` (``"specificity"``,
        ``"sensitivity"``; proportions in [0, 1]), ``estimate`` (full sample), ``ci_low``, ``median``,
        ``ci_high``. ``attrs`` holds ``n_bootstrap``, ``conf_level``, ``direction`` and ``n_dropped``.
    """
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, int | np.integer) or n_bootstrap < 100:
        raise InputError(f"n_bootstrap must be an integer of at least 100 for a percentile CI, got {n_bootstrap!r}")
    if not 0 < conf_level < 1:
        raise InputError(f"conf_level must lie in (0, 1), got {conf_level}")
    base = roc_analysis(outcome, marker, positive=positive, direction=direction, nan_policy=nan_policy,
                        best_method=best_method)
    if isinstance(thresholds, str):
        if thresholds != "best":
            raise InputError(f"thresholds must be 'best', a number or a sequence of numbers, got {thresholds!r}")
        t = np.array([base.cutoff])
    else:
        try:
            t = np.atleast_1d(np.asarray(thresholds, dtype=float))
        except (TypeError, ValueError):
            raise InputError(f"thresholds must be 'best', a number or a sequence of numbers, got {thresholds!r}") \
                from None
        if t.ndim != 1 or t.size == 0:
            raise InputError(f"thresholds must be a non-empty 1-D sequence, got shape {t.shape}")
        if np.isnan(t).any():
            raise InputError("thresholds contain NaN")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingDataWarning)  # already reported by roc_analysis above
        y, cols, n_dropped = _prepare(outcome, {"m": marker}, positive, nan_policy, "bootstrap at fixed thresholds")
    x = cols["m"]
    xc, xk = x[y.is_case], x[~y.is_case]
    rng = np.random.default_rng(random_state)
    se_b, sp_b = _threshold_bootstrap(xc, xk, t, base.direction, int(n_bootstrap), rng)
    if base.direction == "<":
        se_hat, sp_hat = (xc[:, None] >= t).mean(axis=0), (xk[:, None] < t).mean(axis=0)
    else:
        se_hat, sp_hat = (xc[:, None] <= t).mean(axis=0), (xk[:, None] > t).mean(axis=0)
    alpha = 1 - conf_level
    probs = [alpha / 2, 0.5, 1 - alpha / 2]
    q_sp, q_se = np.quantile(sp_b, probs, axis=0), np.quantile(se_b, probs, axis=0)
    rows = []
    for i, thr in enumerate(t):
        rows.append({"threshold": float(thr), "quantity": "specificity", "estimate": float(sp_hat[i]),
                     "ci_low": float(q_sp[0, i]), "median": float(q_sp[1, i]), "ci_high": float(q_sp[2, i])})
        rows.append({"threshold": float(thr), "quantity": "sensitivity", "estimate": float(se_hat[i]),
                     "ci_low": float(q_se[0, i]), "median": float(q_se[1, i]), "ci_high": float(q_se[2, i])})
    out = pd.DataFrame(rows)
    out.attrs.update(n_bootstrap=int(n_bootstrap), conf_level=conf_level, direction=base.direction,
                     n_dropped=n_dropped)
    return out
