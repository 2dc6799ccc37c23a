"""``osteomri ivim``: the exam pipeline's IVIM stage alone (same files and sidecars as ``exam``)."""

from __future__ import annotations

from pathlib import Path

import typer

from osteomri.cli._common import exam_id_for, run_single_stage
from osteomri.errors import InputError


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


def ivim(
    dwi: Path = typer.Argument(..., help="4-D multi-b DWI: NIfTI or DICOM folder (measurements on the last axis)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder; maps go to OUT/sub-XX/ (or OUT/sub-XX/ses-YY/)."),
    exam_id: str = typer.Option(None, "--exam-id", help="sub-LABEL or sub-LABEL_ses-LABEL (default: file name)."),
    exam: str = typer.Option(None, "--exam", hidden=True),
    series: list[str] = typer.Option([], "--series", help="DICOM SeriesInstanceUID to read (repeatable)."),
    bvals: Path = typer.Option(None, "--bvals", help="b-values: FSL .bval file or JSON sidecar with 'bvalues' "
                               "(default: <name>.bval beside the DWI, else the DWI's sidecar)."),
    method: str = typer.Option("full", "--method", help="full (bounded NLLS), segmented or bayesian."),
    mask: Path = typer.Option(None, "--mask", help="Mask on the DWI grid; voxels > 0 are fitted (default: voxels "
                              "with signal, not air)."),
    b_threshold: float = typer.Option(200.0, "--b-threshold", help="b (s/mm^2) from which perfusion is ignored."),
    bound: list[str] = typer.Option([], "--bound", help="KEY=LOWER,UPPER for s0 (relative to b=0), f, d_mm2_s, "
                                    "dstar_mm2_s; repeatable."),
    average: str = typer.Option("geometric", "--average", help="Repeated b-values: geometric or arithmetic."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the bayesian sampler."),
    dicom_out: Path = typer.Option(None, "--dicom-out", help="Also write the results as DICOM (Parametric Maps, "
                                   "SEG, SR) referencing the DICOM input series, into DIR/sub-XX/."),
    anonymize: bool = typer.Option(False, "--anonymize", help="Pseudonymise the DICOM results (PS3.15 basic "
                                   "profile; key from --anon-key-file or $OSTEOMRI_ANON_KEY)."),
    anon_key_file: Path = typer.Option(None, "--anon-key-file", help="File holding the pseudonymisation key."),
) -> None:
    """Fit IVIM voxel-wise: <exam>_S0, _perfusionfraction, _D, _Dstar (mm2/s), _desc-ivim_residual + sidecars."""
    from osteomri.pipeline.dicom_export import cli_anonymize_key
    from osteomri.pipeline.spec import ExamSpec

    opts = {"method": method, "bounds": _parse_bounds(bound), "b_threshold_s_mm2": b_threshold,
            "average": average, "seed": seed, **({"mask": mask} if mask is not None else {})}
    spec = ExamSpec(exam_id_for(dwi, exam_id or exam), dwi=dwi, bvals=bvals, options={"ivim": opts},
                    stages=("ivim",), series={"dwi": series} if series else {})
    run_single_stage(spec, out, "ivim", dicom_out, cli_anonymize_key(anonymize, anon_key_file, dicom_out))
