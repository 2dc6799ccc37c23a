"""Model train/predict: skops persistence with trusted types only, the model card, refusals of bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from osteomri.cli.main import main
from osteomri.errors import InputError
from osteomri.learn.card import column_unit, load
from osteomri.phantom.cohort import synthetic_clinical_cohort


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("model")
    cohort = synthetic_clinical_cohort((20, 20, 20), random_state=3, readers=False)
    path = d / "cohort.tsv"
    cohort.to_csv(path, sep="\t", index=False)
    out = d / "out"
    rc = main(["model", "train", str(path), "--target", "osteoporosis", "--features", "pdff_percent,r2star_hz",
               "--features", "age", "--model", "logistic", "--outer", "3", "--inner", "3", "--out", str(out)])
    assert rc == 0
    return d, cohort, out


def test_train_writes_model_card_and_skops(trained):
    _, cohort, out = trained
    assert {p.name for p in out.iterdir()} >= {"model.skops", "model_card.json", "model_card.html",
                                              "oof_predictions.tsv"}
    card = json.loads((out / "model_card.json").read_text())
    assert card["target"]["n"] == 60 and card["target"]["n_positive"] == 20  # the osteoporosis group
    assert [f["unit"] for f in card["features"]] == ["%", "1/s", "a"]  # UCUM, from the map registry
    perf = card["performance"]["out_of_fold"]
    assert perf["auc_ci_low"] < perf["auc"] < perf["auc_ci_high"]
    assert perf["auc"] > 0.8  # age and PDFF separate the seed study's groups well
    assert card["performance"]["baseline_comparison"]["baseline"].startswith("logistic regression")
    assert {r["feature"] for r in card["importance"]} == {"pdff_percent", "r2star_hz", "age"}
    oof = pd.read_csv(out / "oof_predictions.tsv", sep="\t")
    assert list(oof["exam"]) == list(cohort["exam"])
    # the AUC in the card is the AUC of the written out-of-fold predictions
    from osteomri.stats import roc_analysis

    assert roc_analysis(oof["y"], oof["probability"], direction="<").auc == pytest.approx(perf["auc"])
    html = (out / "model_card.html").read_text()
    for heading in ("Data", "Performance (out of fold)", "Features", "Observed frequency", "Net benefit",
                    "Permutation importance"):
        assert heading in html


def test_predict_matches_and_refuses(trained, tmp_path, capsys):
    d, cohort, out = trained
    model, card = load(out)
    pred_path = tmp_path / "pred.tsv"
    assert main(["model", "predict", str(out), str(d / "cohort.tsv"), "--out", str(pred_path)]) == 0
    pred = pd.read_csv(pred_path, sep="\t")
    direct = model.predict_proba(cohort[["pdff_percent", "r2star_hz", "age"]].to_numpy(float))[:, 1]
    assert np.allclose(pred["probability"], direct, atol=1e-5)
    capsys.readouterr()
    # a missing column
    bad = cohort.drop(columns=["age"])
    bad.to_csv(tmp_path / "noage.tsv", sep="\t", index=False)
    assert main(["model", "predict", str(out), str(tmp_path / "noage.tsv")]) == 2
    err = capsys.readouterr().err
    assert "age" in err and len(err.strip().splitlines()) == 1
    # a unit that differs from the card (sidecar says fraction)
    cohort.to_csv(tmp_path / "frac.tsv", sep="\t", index=False)
    (tmp_path / "frac.json").write_text(json.dumps({"pdff_percent": {"Units": "1"}}))
    assert main(["model", "predict", str(out), str(tmp_path / "frac.tsv")]) == 2
    assert "pdff_percent" in capsys.readouterr().err
    # right name, wrong scale: PDFF given as a fraction
    scaled = cohort.assign(pdff_percent=cohort["pdff_percent"] / 100)
    scaled.to_csv(tmp_path / "scaled.tsv", sep="\t", index=False)
    assert main(["model", "predict", str(out), str(tmp_path / "scaled.tsv")]) == 2
    assert "training range" in capsys.readouterr().err


def test_load_refuses_untrusted_types(trained, tmp_path):
    import skops.io as sio

    _, _, out = trained
    target = tmp_path / "evil"
    target.mkdir()
    (target / "model_card.json").write_text((out / "model_card.json").read_text())
    sio.dump({"f": pd.Timestamp("2020-01-01")}, target / "model.skops")  # a non-scikit-learn type
    with pytest.raises(InputError, match="refusing to load"):
        load(target)
    with pytest.raises(InputError, match="no model.skops"):
        load(tmp_path)


def test_column_units():
    assert column_unit("pdff_percent") == "%"
    assert column_unit("r2star_hz__cm_contrast_3D_avg") == "1/s"
    assert column_unit("d_mm2_s") == "mm2/s"
    assert column_unit("x", {"x": {"Units": "ms"}}) == "ms"


def test_train_bad_input_is_one_line(trained, tmp_path, capsys):
    d, _, _ = trained
    rc = main(["model", "train", str(d / "cohort.tsv"), "--target", "osteoporosis", "--features", "nope",
               "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "nope" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
    rc = main(["model", "train", str(d / "cohort.tsv"), "--target", "sex", "--features", "age",
               "--out", str(tmp_path / "o")])
    assert rc == 2 and "0/1" in capsys.readouterr().err


@pytest.mark.browser
def test_model_card_renders_in_chromium(trained, render_html):
    _, _, out = trained
    dom = render_html(out / "model_card.html")
    assert "AUC (DeLong 95 % CI)" in dom and dom.count("<img") >= 4
