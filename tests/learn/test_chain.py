"""Known answer through the whole chain: image maps → radiomics per vertebra → nested CV → model card.

The texture cohort (:mod:`osteomri.phantom.texture`) makes marrow PDFF and texture amplitude linear in the
T-score with known noise, so the generating score is the best possible marker of osteoporosis. A model of
image features cannot beat it and should come close: the generating score's AUC must lie within each model's
out-of-fold 95 % CI, and no model may exceed the generating score's upper CI.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from osteomri.learn.card import save, train
from osteomri.phantom.texture import texture_cohort
from osteomri.radiomics.vertebrae import vertebra_features, wide_features
from osteomri.report.model_card import write_model_card_html
from osteomri.stats import roc_analysis

SETTINGS = {"discretisation": "fixed_bin_size", "bin_width": 2.0, "families": ["firstorder", "glcm"]}


@pytest.fixture(scope="module")
def cohort_features():
    c = texture_cohort((30, 41, 49), seed=0)
    long = pd.concat([vertebra_features(maps, c.labels, "spineps", roi="body", exam=exam, settings=SETTINGS,
                                        levels=["L1", "L2", "L3", "L4"]) for exam, maps in c.maps.items()])
    wide = wide_features(long, by="exam").merge(c.truth, on="exam")
    return wide, [col for col in wide.columns if col.startswith("pdff_percent__")]


@pytest.mark.slow
@pytest.mark.parametrize("model, select_k", [("logistic", 5), ("rf", None)])
def test_chain_recovers_the_known_answer(cohort_features, model, select_k, tmp_path):
    wide, feats = cohort_features
    true = roc_analysis(wide["osteoporosis"], wide["generating_score"], direction="<")
    fitted, card, res = train(wide, target="osteoporosis", features=feats, model=model, select_k=select_k,
                              n_inner=3, importance_repeats=2)
    assert res.auc_ci_low <= true.auc <= res.auc_ci_high, (res.auc, true.auc)
    assert res.auc <= true.auc_ci_high
    assert res.auc_ci_low > 0.8  # the features carry the signal
    files = save(fitted, card, tmp_path)
    write_model_card_html(card, tmp_path / "model_card.html")
    assert json.loads(files[1].read_text())["performance"]["out_of_fold"]["auc"] == pytest.approx(res.auc)
    top = card["importance"][0]["feature"]
    assert top.startswith("pdff_percent__")
