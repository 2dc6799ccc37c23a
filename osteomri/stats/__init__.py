"""Diagnostic statistics: ROC/DeLong, agreement (ICC, Bland–Altman), group comparisons, correlation, tables.

Every function returns a dataclass or a tidy :class:`pandas.DataFrame` with the columns a paper's table
needs, and refuses bad input with :class:`~osteomri.errors.InputError`.
"""

from osteomri.stats._validate import MissingDataWarning
from osteomri.stats.roc import (
    DelongTestResult,
    RocResult,
    delong_test,
    delong_test_unpaired,
    partial_auc,
    predictive_values,
    proportion_ci,
    roc_analysis,
)

__all__ = [
    "DelongTestResult",
    "MissingDataWarning",
    "RocResult",
    "delong_test",
    "delong_test_unpaired",
    "partial_auc",
    "predictive_values",
    "proportion_ci",
    "roc_analysis",
]
