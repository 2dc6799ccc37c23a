"""Seeded Monte-Carlo of the marrow MRS fit against known truth (issue 17, "Done when").

Synthetic STEAM, 5 echoes TE 10-50 ms, 3 T and 1.5 T, PDFF 5/20/50/90 %, ndb ~ U(2.5, 3.5) with nmidb and CL
from Hamilton's adipose relations, water T2 ~ U(10, 45) ms, one fat T2, Lorentzian widths ~ U(10, 40) Hz,
random phase and shift, complex Gaussian noise at SNR 20/50/100/200 (SNR = largest peak of the first echo's
spectrum / noise SD of the real spectrum); 300 spectra a condition, seed 1000 + condition index (the order of
:data:`CONDITIONS`). Conditions and generator: :func:`osteomri.phantom.mrs.run_condition`.

Criteria (issue 17): |PDFF bias| <= 0.5 points and spread <= 1.2 x the Cramér–Rao bound (RMS over the
condition's spectra, evaluated at the truth) at SNR >= 50 except PDFF 90 % at SNR 50, |bias| <= 1.5
elsewhere; ndb within 0.3 (|bias| and RMS error) at SNR 100 where its bound allows (PDFF >= 20 % at 3 T,
>= 50 % at 1.5 T); water T2 within 5 % (|relative bias| and RMS relative error) wherever its bound allows
(relative CRB <= 2.5 %); reported SD (RMS) within 0.7-1.4 x the Monte-Carlo spread wherever the estimator
is in its efficient regime (the conditions where the spread criterion applies; for ndb those of its
criterion). At PDFF 5 % and SNR 20 the fat signal is near the noise, ndb is then not reported (fixed at 3
for the fit) and the reported SDs of those few spectra are not calibrated: only the bias criterion applies.
"""

from __future__ import annotations

import pytest

from osteomri.phantom.mrs import run_condition

N_SPECTRA = 300
CONDITIONS = [(field, pdff, snr) for field in ("3T", "1.5T") for pdff in (5, 20, 50, 90) for snr in (20, 50, 100, 200)]


def _check(field: str, pdff: int, snr: int, seed: int) -> None:
    r = run_condition(field, pdff, snr, N_SPECTRA, seed)
    tag = f"{field} PDFF {pdff} % SNR {snr}"
    strict = snr >= 50 and not (pdff == 90 and snr == 50)
    assert r["pdff_n"] == N_SPECTRA, tag
    assert abs(r["pdff_bias"]) <= (0.5 if strict else 1.5), (tag, r["pdff_bias"])
    if strict:
        assert r["pdff_spread"] <= 1.2 * r["pdff_crb"], (tag, r["pdff_spread"], r["pdff_crb"])
        assert 0.7 <= r["pdff_sd"] / r["pdff_spread"] <= 1.4, (tag, r["pdff_sd"], r["pdff_spread"])
    if r["water_t2_rel_crb"] <= 0.025:
        assert abs(r["water_t2_rel_bias"]) <= 0.05 and r["water_t2_rel_rmse"] <= 0.05, (tag, r["water_t2_rel_rmse"])
        if strict:
            assert 0.7 <= r["water_t2_sd"] / r["water_t2_spread"] <= 1.4, (tag, r["water_t2_sd"], r["water_t2_spread"])
    if snr == 100 and pdff >= (20 if field == "3T" else 50):
        assert r["ndb_n"] >= 0.95 * N_SPECTRA, (tag, r["ndb_n"])
        assert abs(r["ndb_bias"]) <= 0.3 and r["ndb_rmse"] <= 0.3, (tag, r["ndb_bias"], r["ndb_rmse"])
        assert 0.7 <= r["ndb_sd"] / r["ndb_spread"] <= 1.4, (tag, r["ndb_sd"], r["ndb_spread"])


def test_marrow_3t_pdff50_snr100():
    """One condition, quickly (the full table below is marked slow)."""
    _check("3T", 50, 100, 1000 + CONDITIONS.index(("3T", 50, 100)))


@pytest.mark.slow
@pytest.mark.parametrize("field, pdff, snr", CONDITIONS)
def test_marrow_montecarlo(field, pdff, snr):
    _check(field, pdff, snr, 1000 + CONDITIONS.index((field, pdff, snr)))
