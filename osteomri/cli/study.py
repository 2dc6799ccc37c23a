"""``osteomri study``: the seed study's tables and figures from one cohort table."""

from __future__ import annotations

from pathlib import Path

import typer

from osteomri.errors import InputError


def register(app: typer.Typer) -> None:
    app.command("study")(study)


def _pairs(items: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        parts = [p.strip() for p in item.split(",")]
        if len(parts) != 2 or not all(parts):
            raise InputError(f"--reader-columns takes two column names separated by a comma (A,B), got {item!r}")
        pairs.append((parts[0], parts[1]))
    return pairs


def study(
    cohort: Path = typer.Argument(None, help="Cohort CSV/TSV: one row per patient, or the per-vertebra long "
                                  "table (exam, level, map, mean, ...). Not needed with --synthetic."),
    out: Path = typer.Option(..., "--out", help="Output folder for the tables and report.html."),
    tscore: str = typer.Option(None, "--tscore", help="Column of DXA T-scores (defines the WHO groups)."),
    marker: list[str] = typer.Option([], "--marker", help="Marker column; repeatable (e.g. pdff_percent)."),
    bmd: str = typer.Option(None, "--bmd", help="BMD column (mg/cm^3) for correlations and Table 1."),
    reader_columns: list[str] = typer.Option([], "--reader-columns", help="Two columns measured by two readers, "
                                             "A,B; repeatable (ICC and Bland-Altman)."),
    levels: str = typer.Option("L1-L5", "--levels", help="Per-vertebra tables: L1-L5 (default, the seed "
                               "study's levels), L1-L4 or one level (L3)."),
    roi: str = typer.Option(None, "--roi", help="Per-vertebra tables with several ROI kinds: the one to use."),
    clinical: Path = typer.Option(None, "--clinical", help="Clinical CSV/TSV joined on 'exam' (T-score, BMD...)."),
    outcome: list[str] = typer.Option([], "--outcome", help="ROC outcome: osteoporosis (vs the rest) and/or "
                                      "low_bone_mass (vs normal); default both."),
    nan_policy: str = typer.Option("omit", "--nan-policy", help="omit: drop and count missing values; raise: "
                                   "refuse them."),
    n_bootstrap: int = typer.Option(200, "--n-bootstrap", help="Bootstrap replicates of the optimism correction."),
    synthetic: bool = typer.Option(False, "--synthetic", help="Analyse a synthetic cohort that follows the seed "
                                   "study's Table 1 (writes cohort.csv too)."),
    seed: int = typer.Option(0, "--seed", help="Random seed (synthetic cohort and bootstrap)."),
) -> None:
    """Table 1, Table 2 (ROC, DeLong, Youden cut-offs), correlations, reader agreement and report.html."""
    from osteomri.io.provenance import provenance, write_table_atomic
    from osteomri.pipeline.study import load_cohort, run_study
    from osteomri.report.study import write_study

    if nan_policy not in ("omit", "raise"):
        raise InputError(f"--nan-policy must be omit or raise, got {nan_policy!r}")
    inputs = []
    if synthetic:
        if cohort is not None:
            raise InputError("give either a COHORT file or --synthetic, not both")
        from osteomri.phantom.cohort import synthetic_clinical_cohort

        df = synthetic_clinical_cohort(random_state=seed)
        tscore = tscore or "t_score"
        marker = marker or ["pdff_percent", "r2star_hz"]
        bmd = bmd or "bmd_mg_cm3"
        reader_columns = reader_columns or ["pdff_percent_reader1,pdff_percent_reader2",
                                            "r2star_hz_reader1,r2star_hz_reader2"]
        out.mkdir(parents=True, exist_ok=True)
        write_table_atomic(df, out / "cohort.csv")
    else:
        if cohort is None:
            raise InputError("give a COHORT file (CSV/TSV) or --synthetic")
        if tscore is None:
            raise InputError("--tscore COLUMN is required (the DXA T-score defines the groups)")
        df = load_cohort(cohort, levels=levels, roi=roi, clinical=clinical)
        inputs = [cohort, *([clinical] if clinical else [])]
    result = run_study(df, tscore=tscore, markers=marker, bmd=bmd, reader_pairs=_pairs(reader_columns),
                       outcomes=outcome or ("osteoporosis", "low_bone_mass"), n_bootstrap=n_bootstrap,
                       random_state=seed, nan_policy=nan_policy)
    params = {"tscore": tscore, "markers": marker, "bmd": bmd, "reader_columns": reader_columns, "levels": levels,
              "roi": roi, "outcomes": outcome, "nan_policy": nan_policy, "n_bootstrap": n_bootstrap,
              "synthetic": synthetic, "seed": seed}
    paths = write_study(result, out, provenance("osteomri study", params, inputs))
    for name, path in paths.items():
        typer.echo(f"{name}: {path}")
    for note in result.notes:
        typer.echo(f"note: {note}", err=True)
