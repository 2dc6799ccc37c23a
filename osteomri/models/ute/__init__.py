"""Ultrashort-echo-time (UTE) bone MRI (Model/Fit pairs following :mod:`osteomri.models.registry`).

* :class:`UteT2starModel` — mono-, bi- (bound/pore water) and tri-component (with fat) T2*.
* :func:`porosity_index`, :func:`suppression_ratio` — dual-echo and long-T2-suppressed image ratios.
* :class:`UteMtModel` — two-pool UTE magnetization transfer: macromolecular fraction, T2 of the
  macromolecular pool, exchange rate (Ramani 2002; Ma 2018).
* :class:`UteVfaT1Model` — T1 from variable-flip-angle UTE (the observed R1 the MT model can take).
* :func:`load_protocol` — protocols as JSON data.
"""

from osteomri.models.ute.mt import UteMtFit, UteMtModel, cw_power_equivalent, super_lorentzian, two_pool_signal
from osteomri.models.ute.protocol import load_protocol
from osteomri.models.ute.ratios import porosity_index, suppression_ratio
from osteomri.models.ute.t2star import UteT2starFit, UteT2starModel
from osteomri.models.ute.vfa import UteVfaT1Fit, UteVfaT1Model

__all__ = ["UteMtFit", "UteMtModel", "UteT2starFit", "UteT2starModel", "UteVfaT1Fit", "UteVfaT1Model",
           "cw_power_equivalent", "load_protocol", "porosity_index", "super_lorentzian", "suppression_ratio",
           "two_pool_signal"]
