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
    bipolar: bool = typer.Option(None, "--bipolar/--monopolar", show_default=False,
                                 help="Readout polarity. Default: as the metadata records it, else detected from the "
                                      "data (>= 4 uniformly spaced echoes). --bipolar: estimate and remove the even "
                                      "echoes' phase error; --monopolar: never"),
    voxel_size: str = typer.Option("", "--voxel-size", help="Voxel size in mm 'x,y,z' for inputs without geometry "
                                                            "(toolbox .mat); 1 mm isotropic is assumed otherwise"),
) -> None:
    """Separate water and fat; write pdff.nii.gz (%), r2star.nii.gz (1/s), fieldmap.nii.gz (Hz), water, fat,
    residual, each with a JSON sidecar (units, description, parameters, provenance)."""
    from osteomri.io.image import Image
    from osteomri.io.loader import load_image
    from osteomri.io.nifti import save_nifti
    from osteomri.io.provenance import provenance
    from osteomri.waterfat import MAP_UNITS, T1Correction, WaterFatModel

    img = load_image(input)
    img = _apply_voxel_size(img, voxel_size, input)
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
                                     t1_correction=t1, **override,
                                     **({} if bipolar is None else {"bipolar_correction": bipolar}))
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
    flag = "[bold red]water-fat swap suspected[/]" if fit.swap_suspected else "no swap detected"
    if fit.qc.get("bipolar_detection", {}).get("detected") and "bipolar" in fit.qc:
        console.print("waterfat: bipolar-readout even-echo phase error detected in the data and corrected")
    if fit.qc.get("bipolar_error_uncorrected"):
        console.print("[yellow]warning:[/] the residual shows a bipolar-readout even-echo error that --monopolar "
                      "left uncorrected (rerun without --monopolar)")
    if fit.qc.get("precession", {}).get("source", "").startswith("data (stated"):
        console.print("[yellow]warning:[/] the recorded precession convention does not fit the data; "
                      "the data's convention was used")
    console.print(f"waterfat: {int(fit.mask.sum())} voxels in {elapsed:.1f} s; {flag}; maps in {out}")


def _apply_voxel_size(img, voxel_size: str, input: Path):
    """``img`` with the ``--voxel-size`` (mm) for an input without geometry; a warning when it stays assumed."""
    from osteomri.io.image import Image

    if not voxel_size:
        if img.meta.get("GeometryAssumed"):
            console.print(f"[yellow]warning:[/] {input.name} records no voxel size; 1 mm isotropic assumed "
                          "(give --voxel-size x,y,z in mm)")
        return img
    try:
        size = [float(v) for v in voxel_size.split(",")]
    except ValueError:
        size = []
    if len(size) != 3 or not all(np.isfinite(v) and v > 0 for v in size):
        raise InputError(f"--voxel-size must be three positive numbers in mm 'x,y,z', got {voxel_size!r}")
    if not img.meta.get("GeometryAssumed"):
        raise InputError(f"--voxel-size is for inputs without geometry; {input.name} records its own")
    affine = np.eye(4)
    affine[:3, :3] = np.diag(size)
    return Image(img.data, affine, {**img.meta, "GeometryAssumed": False})
