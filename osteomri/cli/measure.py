"""``osteomri measure``: per-vertebra statistics of parametric maps, VBQ, reader agreement and QC figures.

Writes into ``--out``: ``<stem>_vertebrae.tsv`` (tidy long table), ``<stem>_vertebrae_summary.tsv`` (one
row: each level and the L1–L4 / L1–L5 means), with ``--t1w`` ``<stem>_vbq.json``, with several
``--reader-roi`` ``<stem>_vertebrae_readers.tsv`` and ``<stem>_agreement.tsv`` (ICC, Bland–Altman), and one
``<stem>_<map>_qc.png`` per map. The library functions are those of the exam pipeline
(:mod:`osteomri.vertebrae`).
"""

from __future__ import annotations

from pathlib import Path

import typer

from osteomri.errors import InputError

# short names accepted by --map -> the map keys used everywhere else
MAP_ALIASES = {"pdff": "pdff_percent", "ff": "pdff_percent", "r2star": "r2star_hz", "r2s": "r2star_hz",
               "t1w": "t1w_signal", "d": "d_mm2_s", "dstar": "dstar_mm2_s", "f": "f"}


def register(app: typer.Typer) -> None:
    app.command("measure")(measure)


def _parse_maps(items: list[str]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise InputError(f"--map takes NAME=PATH (e.g. pdff=sub-01_pdff.nii.gz), got {item!r}")
        key = MAP_ALIASES.get(name.strip().lower(), name.strip())
        if key in out:
            raise InputError(f"--map {key} given twice")
        out[key] = Path(path.strip())
    return out


def _parse_levels(text: str | None) -> str | list[str] | None:
    if text is None:
        return None
    from osteomri.vertebrae.measure import LEVEL_SETS

    if text in LEVEL_SETS:
        return list(LEVEL_SETS[text])
    return "all" if text == "all" else [s.strip() for s in text.split(",") if s.strip()]


def _parse_readers(items: list[str]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for i, item in enumerate(items, start=1):
        name, sep, path = item.partition("=")
        if not sep:
            name, path = f"reader{i}", item
        out[name.strip()] = Path(path.strip())
    return out


def measure(
    map_: list[str] = typer.Option(..., "--map", help="NAME=PATH of a map NIfTI (pdff, r2star, t1w, d, dstar, f "
                                   "or any name); repeatable."),
    out: Path = typer.Option(..., "--out", help="Output folder."),
    labels: Path = typer.Option(None, "--labels", help="Vertebra label map NIfTI (not needed with --seed)."),
    preset: str = typer.Option("spineps", "--preset", help="Label convention: spineps, spineps_subregion, "
                               "totalsegmentator (vertebrae_mr), total_mr, totalspineseg, or a JSON mapping."),
    roi: str = typer.Option("paper", "--roi", help="ROI strategy: paper, body, seed, roi (reader ROIs)."),
    exam: str = typer.Option("", "--exam", help="Exam id written in the table and used as file stem."),
    levels: str = typer.Option(None, "--levels", help="L1-L4, L1-L5, all, or a list such as L1,L2 "
                               "(default: L1–L5 present)."),
    subregion: Path = typer.Option(None, "--subregion", help="SPINEPS subregion mask (with --preset spineps)."),
    lowest_level: str = typer.Option(None, "--lowest-level", help="Level of the lowest vertebra for one-class "
                                     "label maps (total_mr without sacrum, spineps_subregion)."),
    t1w: Path = typer.Option(None, "--t1w", help="T1-weighted NIfTI: compute the VBQ score."),
    vbq_cutoff: float = typer.Option(3.05, "--vbq-cutoff", help="VBQ cut-off (depends on field strength)."),
    reader_roi: list[str] = typer.Option([], "--reader-roi", help="[NAME=]PATH of a reader's ROI mask (NIfTI "
                                         "or DICOM SEG); repeatable."),
    seed: list[str] = typer.Option([], "--seed", help="LEVEL=x,y,z world RAS mm seed (with --roi seed); "
                                   "repeatable."),
    margin_mm: float = typer.Option(None, "--margin-mm", help="ROI margin from cortex and endplates (mm)."),
    qc: bool = typer.Option(True, "--qc/--no-qc", help="Write a QC PNG per map."),
    resample_labels: bool = typer.Option(False, "--resample-labels", help="Resample labels that are not on a "
                                         "map's grid by world coordinates (else refused: misregistration?)."),
) -> None:
    """Per-vertebra statistics (mean, median, SD, IQR, P5, P95, volume) of each map in each level's ROI."""
    from osteomri.cli._common import console
    from osteomri.io.nifti import load_nifti
    from osteomri.io.provenance import write_table_atomic
    from osteomri.vertebrae import measure_readers, measure_vertebrae, summarize_levels, vbq_score

    maps = {k: load_nifti(p) for k, p in _parse_maps(map_).items()}
    label_img = load_nifti(labels) if labels is not None else None
    roi = "reader" if roi == "roi" else roi
    if roi == "reader" and not reader_roi:
        raise InputError("--roi roi needs at least one --reader-roi PATH")
    if reader_roi and roi != "reader":
        raise InputError("--reader-roi is used with --roi roi")
    if seed and roi != "seed":
        raise InputError("--seed is used with --roi seed")
    opts: dict = {}
    if subregion is not None:
        opts["subregion"] = load_nifti(subregion)
    if lowest_level is not None:
        opts["lowest_level"] = lowest_level
    if resample_labels:
        opts["resample"] = True
    roi_opts = {"margin_mm": margin_mm} if margin_mm is not None and roi in ("paper", "body") else {}
    level_sel = _parse_levels(levels)
    stem = exam or "measure"
    if t1w is not None and label_img is None:
        raise InputError("--t1w (VBQ) needs --labels")
    # every computation that can refuse the input runs before the first write (which makes the folder)
    res = vbq_score(load_nifti(t1w), label_img, preset, cutoff=vbq_cutoff, **opts) if t1w is not None else None
    written = []
    if roi == "reader":
        readers = measure_readers(maps, label_img, _parse_readers(reader_roi), preset=preset, exam=exam,
                                  levels=level_sel, **opts)
        long = readers.averaged
        written.append(write_table_atomic(readers.per_reader, out / f"{stem}_vertebrae_readers.tsv", "%.6g"))
        if len(readers.icc):
            agreement = readers.icc.copy()
            for map_name, ba in readers.bland_altman.items():
                sel = agreement["map"] == map_name
                agreement.loc[sel, "ba_bias"] = ba.bias
                agreement.loc[sel, "ba_loa_low"] = ba.loa_low
                agreement.loc[sel, "ba_loa_high"] = ba.loa_high
            written.append(write_table_atomic(agreement, out / f"{stem}_agreement.tsv", "%.6g"))
    else:
        long = measure_vertebrae(maps, label_img, preset, roi, exam=exam, levels=level_sel, seeds=seed or None,
                                 **opts, **roi_opts)
    written.append(write_table_atomic(long, out / f"{stem}_vertebrae.tsv", "%.6g"))
    written.append(write_table_atomic(summarize_levels(long), out / f"{stem}_vertebrae_summary.tsv", "%.6g"))
    if t1w is not None:
        from osteomri.io.provenance import write_json_atomic

        written.append(write_json_atomic(out / f"{stem}_vbq.json", vars(res)))
        console.print(f"VBQ = {res.value:.3f} ({res.classification}; cut-off {res.cutoff:g}, "
                      f"{res.field_strength_t if res.field_strength_t is not None else 'unknown'} T)",
                      highlight=False)
    if qc:
        written.extend(_qc(maps, label_img, preset, roi, level_sel, seed, opts, roi_opts,
                           _parse_readers(reader_roi), stem, out))
    n_levels = long["level"].nunique()
    console.print(f"{n_levels} levels x {len(maps)} maps ({roi} ROI); wrote {len(written)} files to {out}",
                  highlight=False)


def _qc(maps, label_img, preset, roi, level_sel, seed, opts, roi_opts, reader_paths, stem, out) -> list[Path]:
    """One QC PNG per map: the ROIs measured (for reader ROIs, the first reader's)."""
    from osteomri.report.figures import save_qc_figures
    from osteomri.vertebrae.labels import get_preset, resolve_labels
    from osteomri.vertebrae.measure import rois_for
    from osteomri.vertebrae.rois import load_reader_roi, parse_seed, reader_rois, seed_rois

    written: list[Path] = []
    for name, image in maps.items():
        if roi in ("seed", "reader"):
            vl = resolve_labels(label_img, preset, reference=image, **opts) if label_img is not None else None
            if roi == "seed":
                rois = seed_rois(image, dict(parse_seed(s) for s in seed), labels=vl)
            else:
                reader, path = next(iter(reader_paths.items()))
                rois = reader_rois(load_reader_roi(path), image.affine, image.spatial_shape, vl, None,
                                   get_preset(preset).vertebrae or None, name=reader)
        else:
            rois = rois_for(image, label_img, preset, roi, level_sel, **opts, **roi_opts)
        written.extend(save_qc_figures({name: image}, rois, out, stem).values())
    return written
