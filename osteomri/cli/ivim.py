"""``osteomri ivim``: IVIM maps (S0, f, D, D*, residual) from a multi-b DWI NIfTI."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from osteomri.errors import InputError

console = Console()
err_console = Console(stderr=True)

# file suffixes of the maps (BIDS-derivatives style; the same names as the exam pipeline's outputs)
FILE_SUFFIXES = {
    "s0": "S0",
    "f": "perfusionfraction",
    "d_mm2_s": "D",
    "dstar_mm2_s": "Dstar",
    "residual": "desc-ivim_residual",
}


def register(app: typer.Typer) -> None:
    app.command("ivim")(ivim)


def _parse_bounds(items: list[str]) -> dict[str, tuple[float, float]]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        parts = value.split(",")
        if not sep or len(parts) != 2:
            raise InputError(f"--bound takes KEY=LOWER,UPPER (e.g. f=0,0.7), got {item!r}")
        try:
            out[key.strip()] = (float(parts[0]), float(parts[1]))
        except ValueError as exc:
            raise InputError(f"--bound {item!r}: LOWER and UPPER must be numbers") from exc
    return out


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".nii"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name[: -len("_dwi")] if name.endswith("_dwi") else name


def _file_suffix(key: str) -> str:
    if key.endswith("_sd"):
        return f"desc-sd_{FILE_SUFFIXES[key[:-3]]}"
    return FILE_SUFFIXES[key]


def ivim(
    dwi: Path = typer.Argument(..., help="4-D multi-b DWI NIfTI (measurements on the last axis)."),
    out: Path = typer.Option(..., "--out", help="Output folder for the maps and their JSON sidecars."),
    bvals: Path = typer.Option(None, "--bvals", help="b-values: FSL .bval file or JSON sidecar with 'bvalues' "
                               "(default: <name>.bval beside the DWI, else the DWI's sidecar)."),
    method: str = typer.Option("full", "--method", help="full (bounded NLLS), segmented or bayesian."),
    mask: Path = typer.Option(None, "--mask", help="Mask NIfTI on the DWI grid; voxels > 0 are fitted."),
    b_threshold: float = typer.Option(200.0, "--b-threshold", help="b (s/mm^2) from which perfusion is ignored "
                                      "in the segmented step."),
    bound: list[str] = typer.Option([], "--bound", help="KEY=LOWER,UPPER for s0 (relative to b=0), f, d_mm2_s, "
                                    "dstar_mm2_s; repeatable."),
    average: str = typer.Option("geometric", "--average", help="Averaging of repeated b-values: geometric or "
                                "arithmetic."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the bayesian sampler."),
) -> None:
    """Fit the IVIM model voxel-wise and write S0, f, D, D* and residual maps with sidecars."""
    from osteomri.io.bvals import find_bvals
    from osteomri.io.image import Image, same_grid
    from osteomri.io.nifti import load_nifti, save_nifti
    from osteomri.io.provenance import provenance
    from osteomri.ivim import IvimModel
    from osteomri.models.ivim import MAP_DESCRIPTIONS, MAP_UNITS

    t0 = time.perf_counter()
    image = load_nifti(dwi)
    if image.data.ndim != 4:
        raise InputError(f"{dwi.name}: expected a 4-D DWI (x, y, z, b), got shape {image.data.shape}")
    b, b_source = find_bvals(dwi, bvals, image.meta)
    model = IvimModel(b, method, bounds=_parse_bounds(bound), b_threshold_s_mm2=b_threshold,
                      average=average, seed=seed)
    if image.data.shape[-1] != b.size:
        raise InputError(f"{b.size} b-values ({b_source}) for a DWI with {image.data.shape[-1]} volumes "
                         f"(shape {image.data.shape})")
    mask_data = None
    if mask is not None:
        mask_img = load_nifti(mask)
        mdata = mask_img.data[..., 0] if mask_img.data.ndim == 4 and mask_img.data.shape[-1] == 1 else mask_img.data
        if mdata.shape != image.spatial_shape or not same_grid(Image(mdata, mask_img.affine), image):
            raise InputError(f"mask {mask.name} (shape {mask_img.data.shape}) is not on the DWI grid "
                             f"(shape {image.spatial_shape})")
        mask_data = np.asarray(mdata) > 0

    n_fit = int(mask_data.sum()) if mask_data is not None else int(np.prod(image.spatial_shape))
    progress = Progress(TextColumn(f"[bold]IVIM {method}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("voxels"), TimeElapsedColumn(), console=err_console)
    with progress:
        task = progress.add_task("fit", total=max(n_fit, 1))
        fit = model.fit(image.data, mask=mask_data,
                        progress=lambda done, total: progress.update(task, completed=done, total=max(total, 1)))

    inputs = [dwi] + ([bvals] if bvals is not None else []) + ([mask] if mask is not None else [])
    prov = provenance("osteomri ivim", parameters={**model.parameters(), "bvalues_source": b_source},
                      inputs=inputs)
    stem = _stem(dwi)
    written = []
    for key, values in fit.maps().items():
        sidecar = {"Units": MAP_UNITS[key], "Description": MAP_DESCRIPTIONS[key], "Method": method,
                   "Bounds": model.bounds.as_dict(), "Provenance": prov}
        path = out / f"{stem}_{_file_suffix(key)}.nii.gz"
        written.append(save_nifti(Image(values.astype(np.float32), image.affine), path, sidecar=sidecar))

    fitted = np.isfinite(fit.f)
    if fitted.any():
        console.print(
            f"{int(fitted.sum())} voxels fitted ({method}): median f {np.median(fit.f[fitted]):.3f}, "
            f"D {np.median(fit.d_mm2_s[fitted]) * 1e3:.3f}e-3 mm^2/s, "
            f"D* {np.median(fit.dstar_mm2_s[fitted]) * 1e3:.1f}e-3 mm^2/s",
            highlight=False,
        )
    else:
        err_console.print("[yellow]warning:[/] no voxel could be fitted (all masked, zero or non-finite)")
    console.print(f"wrote {len(written)} maps to {out} in {time.perf_counter() - t0:.1f} s", highlight=False)
