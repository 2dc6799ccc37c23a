"""Find the exams of a cohort: a BIDS-like folder or a manifest CSV/TSV -> a list of :class:`ExamSpec`.

BIDS-like folder::

    DATASET/participants.tsv                       optional clinical columns (participant_id, age, sex, ...)
    DATASET/sub-XX/[ses-YY/]anat/sub-XX[_ses-YY]_MEGRE.nii.gz   (+ .json sidecars)
                                 ..._T1w.nii.gz, ..._pdff.nii.gz, ..._r2star.nii.gz (vendor maps)
                                 ..._seg-vert_msk.nii.gz / ..._dseg.nii.gz   (vertebra labels, optional)
    DATASET/sub-XX/[ses-YY/]dwi/sub-XX[_ses-YY]_dwi.nii.gz      (+ .bval)
    DATASET/sub-XX/sub-XX_sessions.tsv             optional per-session clinical columns
    DATASET/derivatives/<pipeline>/sub-XX/[ses-YY/]anat/...     label maps and ``*_truth.tsv`` reference values

Manifest (``.csv`` or ``.tsv``): one row per exam; column ``exam`` (or ``participant_id`` [+ ``session``])
names it, columns ``megre, pdff, r2star, t1w, dwi, bvals, labels`` name its inputs (paths relative to the
manifest's folder; empty cells mean absent), optional ``label_preset`` and ``roi``; every other column is
clinical (age, sex, BMI, DXA BMD, T-score, ...).

Discovery checks the dataset's structure (exam names, duplicates, ambiguous files) and raises
:class:`~osteomri.errors.InputError` with the offending names; a missing or broken input *file* is left for
the exam pipeline to report, so that one bad exam never stops the others.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pandas as pd

from osteomri.errors import InputError
from osteomri.io.provenance import to_jsonable
from osteomri.pipeline.spec import ExamSpec

INPUT_COLUMNS = ("megre", "pdff", "r2star", "t1w", "dwi", "bvals", "labels")
_SPEC_COLUMNS = (*INPUT_COLUMNS, "label_preset", "roi")
_NIFTI = r"\.nii(\.gz)?$"
# input name -> (datatype folders, file-name suffix regex after the entities)
BIDS_PATTERNS: dict[str, tuple[tuple[str, ...], str]] = {
    "megre": (("anat",), r"_MEGRE" + _NIFTI),
    "t1w": (("anat",), r"_T1w" + _NIFTI),
    "pdff": (("anat",), r"_(pdff|PDFF)" + _NIFTI),
    "r2star": (("anat",), r"_(r2star|R2star|R2starmap)" + _NIFTI),
    "dwi": (("dwi",), r"_dwi" + _NIFTI),
    "labels": (("anat",), r"_(seg-vert_msk|seg-vert_dseg|dseg)" + _NIFTI),
}
_LABEL = re.compile(r"^[A-Za-z0-9]+$")


def discover_exams(
    dataset: str | os.PathLike,
    *,
    label_preset: str = "spineps",
    roi: str = "paper",
    options: dict[str, dict[str, Any]] | None = None,
) -> list[ExamSpec]:
    """The exams of ``dataset`` (a BIDS-like folder or a manifest ``.csv``/``.tsv``), sorted by exam id.

    Input paths are absolute, so that workers with another working directory find them."""
    path = Path(dataset).expanduser().absolute()
    if not path.exists():
        raise InputError(f"dataset not found: {path}")
    if path.is_dir():
        specs = _from_bids(path, label_preset, roi, options or {})
    elif path.suffix.lower() in (".csv", ".tsv"):
        specs = _from_manifest(path, label_preset, roi, options or {})
    else:
        raise InputError(f"dataset must be a BIDS-like folder or a manifest .csv/.tsv, got {path.name}")
    if not specs:
        raise InputError(f"no exam found in {path.name}: expected sub-*/[ses-*/]anat|dwi/ folders with images"
                         if path.is_dir() else f"manifest {path.name} has no rows")
    return sorted(specs, key=lambda s: s.exam_id)


# --- BIDS-like folders --------------------------------------------------------------------------------

def _from_bids(root: Path, label_preset: str, roi: str, options: dict) -> list[ExamSpec]:
    participants = _read_clinical(root / "participants.tsv", "participant_id")
    specs = []
    for sub_dir in sorted(p for p in root.glob("sub-*") if p.is_dir()):
        sub = sub_dir.name
        _check_label(sub, sub_dir)
        sessions = sorted(p for p in sub_dir.glob("ses-*") if p.is_dir())
        session_table = _read_clinical(sub_dir / f"{sub}_sessions.tsv", "session_id")
        for exam_dir in sessions or [sub_dir]:
            ses = exam_dir.name if sessions else None
            if ses:
                _check_label(ses, exam_dir)
            exam_id = f"{sub}_{ses}" if ses else sub
            inputs = _bids_inputs(root, exam_dir, exam_id, sub, ses)
            if not any(inputs.get(k) for k in ("megre", "pdff", "r2star", "t1w", "dwi")):
                continue
            clinical = {**participants.get(sub, {}), **(session_table.get(ses, {}) if ses else {})}
            truth = _find_derivative(root, sub, ses, exam_id, r"_truth\.tsv$")
            specs.append(ExamSpec(
                exam_id, **inputs, label_preset=label_preset, roi=roi, clinical=clinical,
                options=options, reference_values=pd.read_csv(truth, sep="\t") if truth else None))
    return specs


def _check_label(name: str, folder: Path) -> None:
    if not _LABEL.match(name.split("-", 1)[1]):
        raise InputError(f"folder {folder.name}: BIDS labels must be alphanumeric (e.g. sub-01, ses-02)")


def _bids_inputs(root: Path, exam_dir: Path, exam_id: str, sub: str, ses: str | None) -> dict[str, Path | None]:
    inputs: dict[str, Path | None] = {}
    for name, (datatypes, suffix) in BIDS_PATTERNS.items():
        found = [f for dt in datatypes for f in sorted((exam_dir / dt).glob(f"{sub}*"))
                 if f.is_file() and re.search(suffix, f.name)]
        if name == "labels" and not found:
            found = [p for p in [_find_derivative(root, sub, ses, exam_id, suffix)] if p]
        if len(found) > 1:
            raise InputError(f"exam {exam_id}: {len(found)} candidate {name} images "
                             f"({', '.join(f.name for f in found)}); keep one or use a manifest CSV")
        inputs[name] = found[0] if found else None
    inputs["bvals"] = None  # the exam pipeline finds the sibling .bval (or the sidecar's b-values)
    return inputs


def _find_derivative(root: Path, sub: str, ses: str | None, exam_id: str, suffix: str) -> Path | None:
    deriv = root / "derivatives"
    if not deriv.is_dir():
        return None
    rel = Path(sub, ses) if ses else Path(sub)
    hits = sorted(f for f in deriv.glob(f"*/{rel}/**/{sub}*") if f.is_file() and re.search(suffix, f.name)
                  and (ses is None or f"_{ses}" in f.name or ses in f.parts))
    if len(hits) > 1:
        raise InputError(f"exam {exam_id}: several derivative files match {suffix!r}: "
                         f"{', '.join(h.name for h in hits)}")
    return hits[0] if hits else None


def _read_clinical(path: Path, id_column: str) -> dict[str, dict[str, Any]]:
    """``participants.tsv`` / ``sessions.tsv`` -> {id: {column: value}} with 'n/a' as missing."""
    if not path.exists():
        return {}
    table = pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=True)
    if id_column not in table.columns:
        raise InputError(f"{path.name} needs a '{id_column}' column, has {list(table.columns)}")
    dup = table[id_column][table[id_column].duplicated()].tolist()
    if dup:
        raise InputError(f"{path.name}: duplicated {id_column} {dup}")
    return {str(row.pop(id_column)): to_jsonable(row)
            for row in table.to_dict(orient="records")}


# --- manifests ------------------------------------------------------------------------------------------

def _from_manifest(path: Path, label_preset: str, roi: str, options: dict) -> list[ExamSpec]:
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        table = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"cannot read manifest {path.name}: {exc}") from None
    table.columns = [c.strip() for c in table.columns]
    if "exam" not in table.columns:
        if "participant_id" not in table.columns:
            raise InputError(f"manifest {path.name} needs an 'exam' column (sub-XX or sub-XX_ses-YY) or "
                             f"'participant_id' [+ 'session'], has {list(table.columns)}")
        ses = table["session"] if "session" in table.columns else pd.Series("", index=table.index)
        table.insert(0, "exam", [f"{p}_{s}" if s else p for p, s in zip(table["participant_id"], ses, strict=True)])
        table = table.drop(columns=[c for c in ("participant_id", "session") if c in table.columns])
    if not any(c in table.columns for c in INPUT_COLUMNS):
        raise InputError(f"manifest {path.name} names no input column; use some of {', '.join(INPUT_COLUMNS)}")
    dup = table["exam"][table["exam"].duplicated()].tolist()
    if dup:
        raise InputError(f"manifest {path.name}: duplicated exam(s) {dup}")
    clinical_cols = [c for c in table.columns if c not in ("exam", *_SPEC_COLUMNS)]
    specs = []
    for i, row in enumerate(table.to_dict(orient="records"), start=2):
        exam_id = row["exam"].strip()
        try:
            inputs = {k: _manifest_path(path.parent, row.get(k, "")) for k in INPUT_COLUMNS}
            specs.append(ExamSpec(
                exam_id, **inputs, label_preset=row.get("label_preset") or label_preset, roi=row.get("roi") or roi,
                clinical={c: _clinical_value(row[c]) for c in clinical_cols}, options=options))
        except InputError as exc:
            raise InputError(f"manifest {path.name} line {i}: {exc}") from None
    return specs


def _manifest_path(base: Path, cell: str) -> Path | None:
    cell = (cell or "").strip()
    if not cell:
        return None
    p = Path(cell).expanduser()
    return p if p.is_absolute() else base / p


def _clinical_value(cell: str) -> Any:
    """Manifest cells are read as text: numbers become numbers, blanks and 'n/a' become missing."""
    cell = cell.strip()
    if cell in ("", "n/a", "NA", "NaN", "nan"):
        return None
    for cast in (int, float):
        try:
            return cast(cell)
        except ValueError:
            pass
    return cell
