"""VBQ (Ehresman 2020) and M-score (Bandirali 2015) against values computed by hand from the phantom."""

from __future__ import annotations

import numpy as np
import pytest

from osteomri.errors import InputError, UnknownLabelError
from osteomri.io.image import Image
from osteomri.io.orientation import reoriented as reorient
from osteomri.phantom import synthesize_t1w
from osteomri.phantom.spine import LEVEL_IDS, TISSUE_PARAMETERS
from osteomri.vertebrae import m_score, phantom_labels, vbq_score


@pytest.mark.parametrize("convention", ["spineps", "spineps_subregion", "totalspineseg", "total_mr"])
def test_vbq_equals_the_hand_value(phantom, convention):
    opts = {"lowest_level": "S1"} if convention == "spineps_subregion" else {}
    labels = phantom_labels(phantom, convention)
    exact = vbq_score(phantom.maps["t1w_signal"], labels, convention, **opts)
    assert exact.value == pytest.approx(phantom.vbq_truth, rel=1e-9)
    assert exact.csf_signal == pytest.approx(TISSUE_PARAMETERS.loc["csf", "t1w_signal"])
    assert exact.csf_source.startswith("canal label" if convention in ("spineps_subregion", "totalspineseg")
                                       else "placed")
    t1w = synthesize_t1w(phantom, snr=200.0, seed=2, field_strength_t=1.5)
    noisy = vbq_score(t1w, labels, convention, **opts)
    assert noisy.value == pytest.approx(phantom.vbq_truth, rel=0.01)
    assert noisy.field_strength_t == 1.5 and noisy.cutoff == 3.05


def test_vbq_classification_cutoff_and_orientation(phantom):
    labels = phantom_labels(phantom, "spineps")
    t1w = phantom.maps["t1w_signal"]
    v = phantom.vbq_truth
    assert vbq_score(t1w, labels, cutoff=v - 0.1).classification.startswith("above")
    assert vbq_score(t1w, labels, cutoff=v + 0.1).classification.startswith("at or below")
    perm, flips = (1, 2, 0), (True, True, False)  # P, I, R storage
    r = vbq_score(reorient(t1w, perm, flips), reorient(labels, perm, flips), "spineps")
    assert r.value == pytest.approx(v, rel=1e-9)
    assert vbq_score(t1w, labels, roi="body").value == pytest.approx(v, rel=1e-9)


def test_vbq_missing_l3_or_csf_is_an_error(phantom):
    labels = phantom_labels(phantom, "spineps")
    data = np.asarray(labels.data).copy()
    data[np.isin(data, [LEVEL_IDS["L3"], 200 + LEVEL_IDS["L3"]])] = 0
    with pytest.raises(UnknownLabelError, match="L3"):
        vbq_score(phantom.maps["t1w_signal"], Image(data, labels.affine), "spineps")
    # a preset without a canal label cannot give a label-based CSF ROI
    with pytest.raises(InputError, match="no spinal canal label"):
        vbq_score(phantom.maps["t1w_signal"], labels, "spineps", csf="label")
    # a canal label that holds no CSF at L3
    tss = phantom_labels(phantom, "totalspineseg")
    no_csf = np.asarray(tss.data).copy()
    no_csf[no_csf == 2] = 0
    with pytest.raises(InputError, match="CSF ROI at L3 is empty"):
        vbq_score(phantom.maps["t1w_signal"], Image(no_csf, tss.affine), "totalspineseg", csf="label")


def test_m_score_by_hand(phantom, truth):
    labels = phantom_labels(phantom, "spineps")
    sigma = float(truth.loc["L3", "t1w_signal"]) / 50.0
    t1w = synthesize_t1w(phantom, snr=50.0, seed=4)
    signal = truth.loc[["L1", "L2", "L3", "L4"], "t1w_signal"].mean()
    ref_mean, ref_sd = 30.0, 4.0
    r = m_score(t1w, labels, ref_mean, ref_sd, noise_sd=sigma)
    assert r.signal == pytest.approx(signal, rel=0.005)
    assert r.value == pytest.approx((signal / sigma - ref_mean) / ref_sd, abs=0.05)
    # from a background (air) mask: the Rayleigh-distributed magnitude has SD = sigma * sqrt(2 - pi / 2)
    air = phantom.tissues.data == 0
    r_bg = m_score(t1w, labels, ref_mean, ref_sd, background=air)
    assert r_bg.noise_sd == pytest.approx(sigma * np.sqrt(2 - np.pi / 2), rel=0.05)
    with pytest.raises(InputError, match="noise_sd or a background"):
        m_score(t1w, labels, ref_mean, ref_sd)
    with pytest.raises(InputError, match="reference_sd positive"):
        m_score(t1w, labels, ref_mean, 0.0, noise_sd=sigma)
