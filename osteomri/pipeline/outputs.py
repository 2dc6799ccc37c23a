"""Write one exam's outputs, BIDS-derivatives style::

    <folder>/<exam>_pdff.nii.gz (+ .json)  ... one NIfTI + sidecar per map (file suffix, units and
                                           description from the map registry, osteomri.models.registry)
    <folder>/<exam>_vertebrae.tsv          tidy per-vertebra table
    <folder>/<exam>_<table>.tsv            further tables (vertebrae_summary, vertebrae_readers, agreement)
    <folder>/<exam>_scores.json            VBQ and other scores
    <folder>/<exam>_stages.tsv             stage log (status, message, seconds)
    <folder>/<exam>_exam.json              clinical columns, status, errors, provenance
    <folder>/<exam>_qc.png                 mid-sagittal maps with each level's ROI outlined (given maps:
                                           <exam>_<map>_qc.png each)
    <folder>/report.html                   self-contained exam report

Every file is written atomically; every sidecar carries the provenance block, and a map's sidecar the
complete parameters of the model that made it (``ModelParameters``: ``Model(**ModelParameters)`` rebuilds
it) and that model's QC (``QC``).
"""

from __future__ import annotations

from pathlib import Path

from osteomri.io.nifti import save_nifti
from osteomri.io.provenance import atomic_path, write_json_atomic, write_table_atomic
from osteomri.models.registry import map_spec
from osteomri.pipeline.spec import ExamResult, ExamSpec


def map_sidecar(result: ExamResult, key: str) -> dict:
    """The JSON sidecar of map ``key``: Units, Description (registry), the producing model's parameters and
    QC, and the exam's provenance."""
    spec = map_spec(key)
    sidecar: dict = {"Units": spec.units, "Description": spec.description}
    if spec.model in result.parameters:
        sidecar["ModelParameters"] = result.parameters[spec.model]
        prefix = f"{spec.model}_"
        sidecar["QC"] = {k[len(prefix):]: v for k, v in result.qc.items() if k.startswith(prefix)}
    sidecar["Provenance"] = result.provenance
    return sidecar


def write_exam_outputs(result: ExamResult, folder: Path, spec: ExamSpec | None = None) -> dict[str, Path]:
    """Write every output of ``result`` into ``folder``; returns ``{kind: path}``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = result.exam_id
    written: dict[str, Path] = {}
    for key, image in result.maps.items():
        written[key] = save_nifti(image, folder / f"{stem}_{map_spec(key).suffix}.nii.gz",
                                  sidecar=map_sidecar(result, key))
    if result.vertebrae is not None:
        written["vertebrae"] = write_table_atomic(result.vertebrae, folder / f"{stem}_vertebrae.tsv", "%.6g")
    for name, table in result.tables.items():
        written[name] = write_table_atomic(table, folder / f"{stem}_{name}.tsv", "%.6g")
    if result.scores:
        written["scores"] = write_json_atomic(folder / f"{stem}_scores.json", result.scores)
    written["stages"] = write_table_atomic(result.stage_table(), folder / f"{stem}_stages.tsv", "%.6g")
    written["exam"] = write_json_atomic(folder / f"{stem}_exam.json", {
        "exam_id": result.exam_id,
        "ok": result.ok,
        "errors": result.errors(),
        "clinical": result.clinical,
        "qc": result.qc,
        "provenance": result.provenance,
    })
    for name, fig in result.figures.items():  # ROI overlays; the report inlines them afterwards
        target = folder / f"{stem}_{name}.png"
        with atomic_path(target) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
        written[f"qc_{name}"] = target
    from osteomri.report.exam import exam_report

    written["report"] = exam_report(result, spec).write(folder / "report.html")
    return written
