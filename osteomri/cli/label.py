"""``osteomri label``: find and name the lumbar vertebral bodies of a sagittal image, without a label file."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import typer
from rich.console import Console

from osteomri.errors import InputError

console = Console()

# optional outside segmenters: (python module or executable, how to install)
SEGMENTERS = {
    "totalsegmentator": ("TotalSegmentator", "pip install TotalSegmentator (weights download on first use)"),
    "totalspineseg": ("totalspineseg", "pip install totalspineseg (weights download on first use)"),
    "spineps": ("spineps", "pip install spineps (weights download on first use)"),
}


def register(app: typer.Typer) -> None:
    app.command("label")(label)


def _stem(path: Path) -> str:
    name = path.name
    for ext in (".nii.gz", ".nii"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return path.stem


def label(
    image: Path = typer.Argument(..., help="Sagittal lumbar image: NIfTI (+ JSON sidecar) or DICOM folder"),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder"),
    lowest_level: str = typer.Option("", "--lowest-level", help="Level of the body directly above the lowest "
                                     "disc (e.g. L5); needed when the sacrum is not in view"),
    contrast: str = typer.Option("auto", help="auto | water | t2w | pd | t1w | fat | pdff"),
    segmenter: str = typer.Option("", "--segmenter", help="Use an installed outside segmenter instead: "
                                  "totalsegmentator | totalspineseg | spineps"),
) -> None:
    """Write OUT/<stem>_seg-vert_msk.nii.gz (VerSe numbering, L1 = 20 … L5 = 24), a JSON sidecar with per-level
    confidence and evidence, and OUT/<stem>_seg-vert_qc.png (levels beside the bodies, mid-sagittal)."""
    from osteomri.io.loader import load_image
    from osteomri.io.nifti import save_nifti
    from osteomri.io.provenance import atomic_path, provenance
    from osteomri.vertebrae.autolabel import label_vertebrae

    if segmenter:
        key = segmenter.lower()
        if key not in SEGMENTERS:
            raise InputError(f"unknown segmenter {segmenter!r}; known: {', '.join(SEGMENTERS)}")
        mod, how = SEGMENTERS[key]
        if importlib.util.find_spec(mod.lower()) is None and shutil.which(mod) is None:
            raise InputError(f"segmenter {key} is not installed ({how}); run without --segmenter to use "
                             "osteomri's own labeller")
        raise InputError(f"segmenter {key} is installed but osteomri does not drive it yet: run it yourself and "
                         f"pass its output to 'osteomri measure --labels ... --preset {key}'")
    img = load_image(image)
    labels = label_vertebrae(img, contrast=contrast, lowest_level=lowest_level or None)
    stem = _stem(Path(image))
    out.mkdir(parents=True, exist_ok=True)
    nii = out / f"{stem}_seg-vert_msk.nii.gz"
    png = out / f"{stem}_seg-vert_qc.png"
    params = {"contrast": contrast, "lowest_level": lowest_level or None}
    with atomic_path(png) as tmp:
        qc_png(img, labels, tmp)
    inputs = [image] if Path(image).is_file() else []
    save_nifti(labels, nii, dtype=np.uint8, sidecar={
        "Description": "Vertebral bodies found and named by osteomri (automatic labels)",
        "Provenance": provenance("osteomri label", params, inputs)})
    info = labels.meta["VertebraLabelling"]
    conf = ", ".join(f"{k} {v:.2f}" for k, v in info["confidence"].items())
    console.print(f"{nii}: {conf} ({info['evidence'].get('naming', '')})", highlight=False)


def qc_png(image, labels, path: Path) -> None:
    """The QC figure (:func:`osteomri.report.figures_autolabel.autolabel_figure`) as a PNG."""
    import matplotlib.pyplot as plt

    from osteomri.report.figures_autolabel import autolabel_figure

    fig = autolabel_figure(image, labels)
    fig.savefig(path, format="png", bbox_inches="tight")
    plt.close(fig)
