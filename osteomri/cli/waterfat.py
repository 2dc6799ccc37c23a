"""``osteomri waterfat``: PDFF, R2*, field map, water, fat and residual maps from multi-echo GRE data."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import typer
from rich.console import Console

from osteomri.errors import InputError, MetadataError

console = Console()

DESCRIPTIONS = {
    "pdff_percent": ("pdff", "Proton-density fat fraction (magnitude discrimination)"),
    "r2star_hz": ("r2star", "R2* (common to water and fat)"),
    "fieldmap_hz": ("fieldmap", "B0 off-resonance field map"),
    "water": ("water", "Water signal amplitude (T1-corrected if requested)"),
    "fat": ("fat", "Fat signal amplitude (T1-corrected if requested)"),
    "residual": ("residual", "Root-mean-square fit residual relative to the rms signal"),
}


def register(app: typer.Typer) -> None:
    app.command("waterfat")(waterfat)


def waterfat(
    input: Path = typer.Argument(..., help="Multi-echo data: NIfTI (+ JSON sidecar), DICOM folder or toolbox .mat"),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder"),
    fat_spectrum: str = typer.Option("ren_marrow", help="ren_marrow | hamilton_liver | ismrm_6peak"),
    precession: str = typer.Option("meta", help="meta (from the input; auto when not recorded) | auto | "
                                                "clockwise | counterclockwise"),
    echo_times_ms: str = typer.Option("", help="Comma-separated echo times in ms when the input lacks them"),
    field_strength: float = typer.Option(0.0, help="Field strength in T when the input lacks it"),
    regularisation: float = typer.Option(100.0, help="Field-map smoothness weight (noise units)"),
    magnitude: bool = typer.Option(False, "--magnitude", help="Fit magnitude only (ignore phase)"),
    t1_correction: bool = typer.Option(False, "--t1-correction", help="Correct T1 bias (needs TR and flip angle)"),
    t1_water_s: float = typer.Option(1.2, help="Assumed water T1 (s) for --t1-correction"),
    t1_fat_s: float = typer.Option(0.38, help="Assumed fat T1 (s) for --t1-correction"),
    bipolar: bool = typer.Option(False, "--bipolar", help="Bipolar readout: estimate and remove the even echoes' "
                                                          "phase error (>= 4 uniformly spaced echoes)"),
    dicom_out: Path = typer.Option(None, "--dicom-out", help="Also write the maps as DICOM Parametric Maps "
                                   "referencing the DICOM input series."),
    anonymize: bool = typer.Option(False, "--anonymize", help="Pseudonymise the DICOM maps (PS3.15 basic "
                                   "profile; key from --anon-key-file or $OSTEOMRI_ANON_KEY)."),
    anon_key_file: Path = typer.Option(None, "--anon-key-file", help="File holding the pseudonymisation key."),
) -> None:
    """Separate water and fat; write pdff.nii.gz (%), r2star.nii.gz (1/s), fieldmap.nii.gz (Hz), water, fat,
    residual, each with a JSON sidecar (units, description, parameters, provenance)."""
    from osteomri.io.image import Image
    from osteomri.io.loader import load_image
    from osteomri.io.nifti import save_nifti
    from osteomri.io.provenance import provenance
    from osteomri.pipeline.dicom_export import cli_anonymize_key, export_maps_dicom
    from osteomri.waterfat import MAP_UNITS, T1Correction, WaterFatModel

    key = cli_anonymize_key(anonymize, anon_key_file, dicom_out)
    img = load_image(input)
    if echo_times_ms:
        img.meta["EchoTime"] = [float(v) / 1000.0 for v in echo_times_ms.split(",")]
    if field_strength > 0:
        img.meta["MagneticFieldStrength"] = field_strength
    img.require("EchoTime", "MagneticFieldStrength")
    conventions = {"meta": None, "auto": "auto", "clockwise": True, "counterclockwise": False}
    if precession not in conventions:
        raise InputError(f"--precession must be meta, auto, clockwise or counterclockwise, got {precession!r}")
    override = {} if precession == "meta" else {"precession_clockwise": conventions[precession]}
    t1 = None
    if t1_correction:
        if img.meta.get("RepetitionTime") is None or img.meta.get("FlipAngle") is None:
            raise MetadataError("--t1-correction needs RepetitionTime and FlipAngle in the input metadata")
        t1 = T1Correction(float(img.meta["RepetitionTime"]), float(img.meta["FlipAngle"]), t1_water_s, t1_fat_s)
    # from_image also checks the echo count
    model = WaterFatModel.from_image(img, fat_spectrum=fat_spectrum, regularisation=regularisation,
                                     t1_correction=t1, bipolar_correction=bipolar, **override)
    data = img.data
    if data.ndim != 4:
        raise InputError(f"expected multi-echo data [x, y, z, echo], got shape {data.shape}")
    if magnitude:
        data = np.abs(data)
    t0 = time.perf_counter()
    fit = model.fit(data)
    elapsed = time.perf_counter() - t0
    prov = provenance("osteomri waterfat", {**model.parameters(), "qc": fit.qc}, [input] if input.exists() else [])
    out.mkdir(parents=True, exist_ok=True)
    maps = fit.maps()
    for key, (name, desc) in DESCRIPTIONS.items():
        save_nifti(Image(maps[key].reshape(data.shape[:3]), img.affine), out / f"{name}.nii.gz",
                   sidecar={"Units": MAP_UNITS[key], "Description": desc, "SwapSuspected": fit.swap_suspected,
                            "Provenance": prov})
    if dicom_out is not None:
        export_maps_dicom({k: Image(maps[k].reshape(data.shape[:3]), img.affine) for k in DESCRIPTIONS}, input,
                          dicom_out, anonymize_key=key)
    flag = "[bold red]water-fat swap suspected[/]" if fit.swap_suspected else "no swap detected"
    console.print(f"waterfat: {int(fit.mask.sum())} voxels in {elapsed:.1f} s; {flag}; maps in {out}")
