"""Diagnostic statistics: ROC/DeLong, agreement (ICC, Bland–Altman), group comparisons, correlation, tables.

Every function returns a dataclass or a tidy :class:`pandas.DataFrame` with the columns a paper's table
needs, and refuses bad input with :class:`~osteomri.errors.InputError`.
"""

from osteomri.stats._validate import MissingDataWarning
from osteomri.stats.agreement import BlandAltmanResult, bland_altman, icc, icc_wide, repeatability
from osteomri.stats.combined import CombinedMarkerResult, combined_marker
from osteomri.stats.correlation import CorrelationResult, correlation
from osteomri.stats.groups import (
    WHO_GROUPS,
    GroupComparisonResult,
    anova_oneway,
    bartlett_test,
    chi_square_test,
    fisher_exact_test,
    group_comparison,
    kruskal_wallis,
    qct_category,
    tukey_hsd,
    welch_anova,
    who_category,
)
from osteomri.stats.power import (
    PowerResult,
    binormal_auc_covariance,
    binormal_auc_variance,
    cov_obuchowski,
    power_roc_test,
    power_roc_test_paired,
    power_roc_test_params,
    power_roc_test_roc,
    var_obuchowski,
    var_theta_obuchowski,
)
from osteomri.stats.roc import (
    DelongTestResult,
    RocResult,
    ci_best_coords,
    ci_thresholds,
    delong_test,
    delong_test_unpaired,
    local_maxima,
    partial_auc,
    predictive_values,
    proportion_ci,
    roc_analysis,
)
from osteomri.stats.smooth import SmoothRocResult, binormal_fit, smooth_roc
from osteomri.stats.tables import Table2, format_p, table1, table2
from osteomri.stats.venkatraman import VenkatramanResult, venkatraman_test, venkatraman_test_unpaired

__all__ = [
    "WHO_GROUPS",
    "BlandAltmanResult",
    "CombinedMarkerResult",
    "CorrelationResult",
    "GroupComparisonResult",
    "anova_oneway",
    "bland_altman",
    "chi_square_test",
    "combined_marker",
    "correlation",
    "fisher_exact_test",
    "format_p",
    "group_comparison",
    "icc",
    "icc_wide",
    "kruskal_wallis",
    "qct_category",
    "repeatability",
    "tukey_hsd",
    "welch_anova",
    "who_category",
    "DelongTestResult",
    "MissingDataWarning",
    "RocResult",
    "delong_test",
    "delong_test_unpaired",
    "partial_auc",
    "predictive_values",
    "proportion_ci",
    "roc_analysis",
    "PowerResult",
    "SmoothRocResult",
    "binormal_fit",
    "cov_obuchowski",
    "binormal_auc_covariance",
    "binormal_auc_variance",
    "power_roc_test",
    "power_roc_test_paired",
    "power_roc_test_params",
    "power_roc_test_roc",
    "smooth_roc",
    "var_obuchowski",
    "var_theta_obuchowski",
    "VenkatramanResult",
    "bartlett_test",
    "ci_best_coords",
    "ci_thresholds",
    "local_maxima",
    "venkatraman_test",
    "venkatraman_test_unpaired",
    "table1",
    "Table2",
    "table2",
]
