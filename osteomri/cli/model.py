"""``osteomri model train|predict``: classifiers with nested-CV performance, skops persistence and a model card.

``train COHORT.tsv --target osteoporosis --features a,b,'pdff_percent__*' --model rf --out DIR`` writes
``DIR/model.skops``, ``DIR/model_card.json``, ``DIR/model_card.html`` and ``DIR/oof_predictions.tsv``.
``predict DIR COHORT.tsv [--out predictions.tsv]`` refuses tables whose columns or units differ from the card.
Units come from a sidecar ``COHORT.json`` (column → ``{"Units": ...}``) or the column names.
"""

from __future__ import annotations

from pathlib import Path

import typer

model_app = typer.Typer(help="Train and apply classifiers (nested CV, model card).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(model_app, name="model")


@model_app.command("train")
def train_cmd(
    cohort: Path = typer.Argument(..., help="Cohort table (TSV/CSV), one row per patient."),
    target: str = typer.Option(..., "--target", help="0/1 column, or 'osteoporosis' (derived from who_group or "
                               "t_score <= -2.5 when no such column)."),
    features: list[str] = typer.Option(..., "--features", help="Feature columns: names, comma lists or patterns "
                                       "such as 'pdff_percent__*'; repeatable."),
    out: Path = typer.Option(..., "--out", help="Output folder."),
    model: str = typer.Option("rf", "--model", help="logistic, rf, gb or svm."),
    select_k: int = typer.Option(None, "--select-k", help="Keep the k best features (inside the inner loop)."),
    repeats: int = typer.Option(1, "--repeats", help="Repeats of the outer CV."),
    outer: int = typer.Option(5, "--outer", help="Outer folds."),
    inner: int = typer.Option(5, "--inner", help="Inner folds."),
    threshold: float = typer.Option(0.5, "--threshold", help="Pre-specified probability threshold for "
                                    "sensitivity/specificity."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the random_state of every split and model."),
) -> None:
    """Nested-CV evaluation, final fit, skops model and model card."""
    from osteomri.cli._common import console
    from osteomri.io.provenance import provenance, write_table_atomic
    from osteomri.learn.card import read_cohort, resolve_features, save, train
    from osteomri.report.model_card import write_model_card_html

    table, sidecar = read_cohort(cohort)
    feats = resolve_features(table, features)
    fitted, card, res = train(table, target=target, features=feats, model=model, select_k=select_k,
                              n_outer=outer, n_inner=inner, n_repeats=repeats, random_state=seed,
                              threshold=threshold, sidecar=sidecar)
    prov = provenance("osteomri model train", {"target": target, "features": feats, "model": model,
                                               "select_k": select_k, "repeats": repeats, "outer": outer,
                                               "inner": inner, "threshold": threshold, "seed": seed},
                      inputs=[cohort])
    card["provenance"] = prov
    files = save(fitted, card, out)
    oof = res.oof_predictions.copy()
    id_col = next((c for c in ("exam", "participant_id", "subject") if c in table.columns), None)
    if id_col:
        oof.insert(0, id_col, table[id_col].to_numpy())
    files.append(write_table_atomic(oof, out / "oof_predictions.tsv", "%.6g"))
    files.append(write_model_card_html(card, out / "model_card.html", prov))
    perf = res.performance
    console.print(f"{model}: out-of-fold AUC {perf['auc']:.3f} ({perf['auc_ci_low']:.3f}–{perf['auc_ci_high']:.3f}), "
                  f"{len(feats)} features, {card['target']['n']} patients; wrote {len(files)} files to {out}",
                  highlight=False)


@model_app.command("predict")
def predict_cmd(
    model_dir: Path = typer.Argument(..., help="Folder written by 'osteomri model train'."),
    cohort: Path = typer.Argument(..., help="Table (TSV/CSV) with the card's feature columns in its units."),
    out: Path = typer.Option(None, "--out", help="Predictions table (default: print to stdout)."),
) -> None:
    """Probability of the target for each row; refuses columns or units that differ from the model card."""
    from osteomri.cli._common import console
    from osteomri.io.provenance import write_table_atomic
    from osteomri.learn.card import predict, read_cohort

    table, sidecar = read_cohort(cohort)
    pred = predict(model_dir, table, sidecar)
    if out is None:
        typer.echo(pred.to_csv(sep="\t", index=False, float_format="%.4g"), nl=False)
    else:
        write_table_atomic(pred, out, "%.6g")
        console.print(f"{len(pred)} predictions written to {out}", highlight=False)
