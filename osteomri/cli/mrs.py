"""``osteomri mrs``: marrow MR spectroscopy fit (PDFF, water/fat T2, fat composition) of one spectrum, a
multi-TE series (several files or a folder) or an MRSI grid; TSV + JSON of every parameter with its SD, a PNG
of the fit, provenance. Everything is computed before anything is written; each file is written atomically."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console

console = Console()


def register(app: typer.Typer) -> None:
    app.command("mrs")(mrs)


def mrs(
    spectra: list[Path] = typer.Argument(..., help="Spectroscopy file(s): NIfTI-MRS, Siemens .rda/.IMA/.dcm, "
                                         "Philips .SDAT(+.SPAR), GE .7; several files or a folder = one multi-TE "
                                         "series."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    t2: bool = typer.Option(None, "--t2/--no-t2", help="Fit water and fat T2 and T2-correct the fat fraction. "
                            "Default: when the series has at least 2 echo times (single TE: not T2-corrected, "
                            "said in a warning)."),
    fat_model: str = typer.Option("triglyceride", "--fat-model", help="triglyceride (fits ndb) or a fixed "
                                  "spectrum: ren_marrow | hamilton_liver | ismrm_6peak."),
    conjugate: str = typer.Option("auto", "--conjugate", help="auto | yes | no: data in the mirrored sign "
                                  "convention."),
    no_align: bool = typer.Option(False, "--no-align", help="Average without frequency/phase alignment."),
    align_echoes: bool = typer.Option(True, "--align-echoes/--no-align-echoes", help="Register the echoes of a "
                                      "series of separate files (separate scans) onto each other in frequency and "
                                      "zero-order phase (drift between scans)."),
    water_ref: Path = typer.Option(None, "--water-ref", help="Water reference of the same voxel (water "
                                   "must dominate it): eddy-current correction (Klose 1990)."),
    prefix: str = typer.Option("", "--prefix", help="File name prefix (default: the first input's stem)."),
) -> None:
    """Fit the water + triglyceride model to every echo together; write <prefix>_mrs.tsv, _mrs.json, _mrs.png."""
    import warnings

    import numpy as np
    import pandas as pd

    from osteomri.errors import InputError, InputWarning
    from osteomri.io.provenance import provenance, write_json_atomic, write_table_atomic
    from osteomri.io.spectrum import load_series
    from osteomri.models.mrs import MAP_NAMES, MrsModel
    from osteomri.models.registry import map_spec
    from osteomri.report.figures_mrs import mrs_fit_png

    t0 = time.perf_counter()
    conj = {"auto": "auto", "yes": True, "no": False}.get(conjugate.lower())
    if conj is None:
        raise InputError(f"--conjugate takes auto, yes or no, got {conjugate!r}")
    spec = load_series(list(spectra), align=not no_align, align_echoes=align_echoes)
    if water_ref is not None:
        from dataclasses import replace

        from osteomri.io.spectrum import load_spectrum
        from osteomri.io.spectrum_processing import eddy_current_correct

        ref = load_spectrum(water_ref, align=not no_align)
        ref_fid = ref.fids[..., 0, :] if ref.fids.shape[:-2] == spec.fids.shape[:-2] else None
        if (ref_fid is None or ref.n_points != spec.n_points
                or not np.isclose(ref.dwell_time_s, spec.dwell_time_s, rtol=1e-4)
                or abs(ref.spectrometer_mhz - spec.spectrometer_mhz) > 1e-5 * spec.spectrometer_mhz):
            raise InputError(f"{water_ref.name}: water reference ({ref.fids.shape}, dwell {ref.dwell_time_s} s, "
                             f"{ref.spectrometer_mhz} MHz) does not match the spectra ({spec.fids.shape}, dwell "
                             f"{spec.dwell_time_s} s, {spec.spectrometer_mhz} MHz)")
        fids, note = eddy_current_correct(spec.fids, ref_fid)
        spec = replace(spec, fids=fids, processing=[*spec.processing, note])
    if t2 is None:
        t2 = np.unique(spec.te_s).size >= 2
        if not t2:
            warnings.warn(f"{', '.join(spec.sources) or 'the spectrum'}: a single echo time "
                          f"({float(spec.te_s[0]) * 1e3:g} ms): the fat fraction is not T2-corrected", InputWarning,
                          stacklevel=1)
    model = MrsModel.from_spectrum(spec, t2_correction=t2, fat_model=fat_model, conjugate=conj)
    fit = model.fit(spec.fids)
    bad = fit.implausible()
    fitted = int(np.count_nonzero(fit.mask))
    if bad.any() and int(bad.sum()) == fitted:
        values = ", ".join(f"{v:.3g}" for v in np.asarray(fit.values["mrs_pdff_percent"])[bad][:3])
        raise InputError(f"{', '.join(spec.sources)}: the spectrum does not read as marrow water + fat (PDFF "
                         f"{values} %, outside 0-100 %): a water-suppressed or non-marrow spectrum?")
    if bad.any():
        warnings.warn(f"{int(bad.sum())} of {fitted} spectra do not read as water + fat (PDFF outside 0-100 %)",
                      InputWarning, stacklevel=1)
    fit.qc["n_implausible"] = int(bad.sum())
    rows = []
    for r in fit.table():
        for name in MAP_NAMES:
            ms = map_spec(name)
            rows.append({"index": ",".join(str(i) for i in r["index"]) or "0", "parameter": name, "value": r[name],
                         "sd": r[f"{name}_sd"], "units": ms.units, "description": ms.description})
    table = pd.DataFrame(rows)
    first = tuple(int(i) for i in np.argwhere(fit.mask)[0]) if fit.mask.ndim else ()
    stem = prefix or _stem(spectra[0])
    png = mrs_fit_png(fit, spec.fids, first, title=f"{stem}: {', '.join(spec.sources)}")
    inputs = [p for p in spectra if p.is_file()] + [f for p in spectra if p.is_dir() for f in sorted(p.iterdir())
                                                    if f.is_file()] + ([water_ref] if water_ref else [])
    prov = provenance("osteomri mrs", parameters=model.parameters(), inputs=inputs)
    summary = {"acquisition": spec.summary(), "qc": fit.qc, "results": fit.table(),
               "units": {k: map_spec(k).units for k in MAP_NAMES}, "provenance": prov,
               "conventions": "NIfTI-MRS FIDs (ppm = reference + f/MHz on numpy's FFT axis); PDFF = 100 F/(W+F) "
                              "of the TE = 0 amplitudes of all fat peaks; SDs are Cramer-Rao bounds at the fit."}
    out.mkdir(parents=True, exist_ok=True)
    write_table_atomic(table, out / f"{stem}_mrs.tsv", float_format="%.6g")
    write_json_atomic(out / f"{stem}_mrs.json", summary)
    from osteomri.io.provenance import atomic_path

    with atomic_path(out / f"{stem}_mrs.png", suffix=".png") as tmp:
        tmp.write_bytes(png)
    if fit.qc.get("n_at_bound"):
        console.print(f"[yellow]warning:[/] {fit.qc['n_at_bound']} spectra have a T2 or linewidth at its bound "
                      f"(poor fit: check the phase/frequency consistency of the echoes and the SNR)", highlight=False)
    ok = np.isfinite(fit.pdff_percent) & fit.mask
    if ok.sum() == 1:
        v = {k: float(np.asarray(fit.values[k])[first]) for k in ("mrs_pdff_percent", "water_t2_ms", "ndb")}
        s = {k: float(np.asarray(fit.sd[f"{k}_sd"])[first]) for k in v}
        console.print(f"PDFF {v['mrs_pdff_percent']:.3g} ± {s['mrs_pdff_percent']:.2g} %, water T2 "
                      f"{v['water_t2_ms']:.3g} ± {s['water_t2_ms']:.2g} ms, ndb {v['ndb']:.3g} ± {s['ndb']:.2g}",
                      highlight=False)
    console.print(f"{int(ok.sum())} spectra fitted ({len(spec.te_s)} echo times); wrote {stem}_mrs.tsv, .json, .png "
                  f"to {out} in {time.perf_counter() - t0:.1f} s", highlight=False)


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".nii", ".rda", ".IMA", ".ima", ".dcm", ".SDAT", ".sdat", ".SPAR", ".spar"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem
