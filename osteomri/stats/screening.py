"""Per-exam osteoporosis risk estimate from published diagnostic cut-offs.

A marker value is classified against a published cut-off; the cut-off's sensitivity and specificity give
the likelihood ratio of the result (LR+ = Se / (1 − Sp), LR− = (1 − Se) / Sp), which turns a pre-test
probability into a post-test probability by Bayes' theorem in odds form (Deeks & Altman, BMJ 2004;329:168):

    post-test odds = pre-test odds × LR

Each marker is reported on its own: multiplying the LRs of correlated markers (PDFF and R2* are) would
overstate the evidence. The published figures carry their population and protocol; applying them elsewhere
(other field strength, scanner, population) is an extrapolation the report states.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from osteomri.errors import InputError
from osteomri.stats.roc import proportion_ci


@dataclass(frozen=True)
class PublishedCutoff:
    """A published diagnostic cut-off with the counts behind its sensitivity and specificity.

    ``positive_above``: True when values at or above ``cutoff`` are test-positive (PDFF), False when values
    at or below are (R2*).
    """

    marker: str
    cutoff: float
    positive_above: bool
    true_positives: int
    n_cases: int
    true_negatives: int
    n_controls: int
    source: str

    @property
    def sensitivity(self) -> float:
        return self.true_positives / self.n_cases

    @property
    def specificity(self) -> float:
        return self.true_negatives / self.n_controls

    def is_positive(self, value: float) -> bool:
        return value >= self.cutoff if self.positive_above else value <= self.cutoff


_SEED = ("Lumbar FF and R2* for osteoporosis (120 patients with chronic low back pain, 3 T GE IDEAL-IQ, "
         "mid-sagittal ROI of L1–L5, osteoporosis (T ≤ −2.5) vs the rest: 49 cases, 71 controls)")

# Seed study: FF cut-off 56.09 % with Se 83.70 % (41/49), Sp 83.10 % (59/71); R2* cut-off 138.31 Hz with
# Se 79.60 % (39/49), Sp 81.70 % (58/71). The counts reproduce the printed percentages.
PUBLISHED_CUTOFFS: dict[str, PublishedCutoff] = {
    "pdff_percent": PublishedCutoff("pdff_percent", 56.09, True, 41, 49, 59, 71, _SEED),
    "r2star_hz": PublishedCutoff("r2star_hz", 138.31, False, 39, 49, 58, 71, _SEED),
}
SEED_STUDY_PREVALENCE = 49 / 120


def posttest_probability(pretest_probability: float, likelihood_ratio: float) -> float:
    """Bayes' theorem in odds form: post-test odds = pre-test odds × LR."""
    if not 0.0 < pretest_probability < 1.0:
        raise InputError(f"pre-test probability must lie strictly between 0 and 1, got {pretest_probability}")
    if not np.isfinite(likelihood_ratio) or likelihood_ratio < 0:
        raise InputError(f"likelihood ratio must be finite and >= 0, got {likelihood_ratio}")
    odds = pretest_probability / (1.0 - pretest_probability) * likelihood_ratio
    return float(odds / (1.0 + odds))


def screen_markers(
    values: dict[str, float],
    pretest_probability: float = SEED_STUDY_PREVALENCE,
    cutoffs: dict[str, PublishedCutoff] | None = None,
) -> pd.DataFrame:
    """Classify each marker value against its published cut-off; one tidy row per marker.

    ``values`` maps marker names (``pdff_percent``, ``r2star_hz``) to the exam's value (e.g. the L1–L5 mean).
    Markers without a published cut-off raise :class:`InputError`; NaN values are refused.
    Columns: marker, value, cutoff, rule, positive, sensitivity (+ 95 % Clopper–Pearson CI), specificity
    (+ CI), likelihood_ratio, pretest_probability, posttest_probability, source.
    """
    cutoffs = PUBLISHED_CUTOFFS if cutoffs is None else cutoffs
    rows = []
    for marker, value in values.items():
        if marker not in cutoffs:
            raise InputError(f"no published cut-off for {marker!r}; known: {', '.join(cutoffs)}")
        if value is None or not np.isfinite(value):
            raise InputError(f"{marker} value is missing or not finite ({value})")
        c = cutoffs[marker]
        se, sp = c.sensitivity, c.specificity
        positive = c.is_positive(float(value))
        lr = se / (1.0 - sp) if positive else (1.0 - se) / sp
        se_ci = proportion_ci(c.true_positives, c.n_cases)
        sp_ci = proportion_ci(c.true_negatives, c.n_controls)
        rows.append({
            "marker": marker, "value": float(value), "cutoff": c.cutoff,
            "rule": f"{'≥' if c.positive_above else '≤'} {c.cutoff:g}", "positive": positive,
            "sensitivity": se, "sensitivity_ci_low": se_ci[0], "sensitivity_ci_high": se_ci[1],
            "specificity": sp, "specificity_ci_low": sp_ci[0], "specificity_ci_high": sp_ci[1],
            "likelihood_ratio": lr, "pretest_probability": pretest_probability,
            "posttest_probability": posttest_probability(pretest_probability, lr), "source": c.source,
        })
    return pd.DataFrame(rows)
