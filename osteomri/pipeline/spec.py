"""What travels in and out of the exam pipeline: :class:`ExamSpec` and :class:`ExamResult`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from osteomri.errors import InputError
from osteomri.io.image import Image
from osteomri.io.loader import PathOrImage

_EXAM_ID = re.compile(r"^sub-[A-Za-z0-9]+(_ses-[A-Za-z0-9]+)?$")

STAGE_STATUSES = ("done", "skipped", "failed")
_INPUTS = ("megre", "pdff", "r2star", "t1w", "dwi", "ute", "labels", "bvals")


@dataclass
class ExamSpec:
    """Which inputs exist for one exam, plus its clinical columns.

    Every image input is a path (NIfTI, DICOM folder, toolbox ``.mat``) or an in-memory :class:`Image`.

    Attributes
    ----------
    exam_id:
        BIDS-style ``sub-<label>[_ses-<label>]``; names the output folder and files.
    megre:
        Multi-echo gradient echo (complex, or magnitude-only) for water–fat separation.
    pdff, r2star:
        Vendor parametric maps (PDFF in percent, R2* in 1/s) used when no MEGRE is given.
    t1w:
        Conventional T1-weighted image (VBQ score).
    dwi, bvals:
        Multi-b diffusion and its b-values (s/mm^2; a list, an FSL ``.bval`` file, or in the sidecar).
    ute:
        UTE series (measurements on the last axis); its protocol is ``options["ute"]["protocol"]`` (a JSON
        path or dict, :mod:`osteomri.models.ute.protocol`), else a bi-component T2* fit of the sidecar's echo
        times.
    labels, label_preset:
        Vertebra label map and the preset naming its convention (``spineps``, ``totalsegmentator``, ...).
    roi:
        ROI strategy of the measurement layer (``paper``, ``body``, ...).
    clinical:
        Clinical columns carried to the cohort table (age, sex, BMI, DXA BMD, T-score, ...).
    options:
        Per-stage options, e.g. ``{"waterfat": {"fat_spectrum": "ren_marrow"}, "ivim": {"method": "full"}}``.
    reference_values:
        Known per-level values (e.g. phantom truth, columns ``level`` + map names) shown beside the
        measurements in the report.
    stages:
        Run only these stages (by name; None: every stage that applies). The single-purpose commands
        (``osteomri waterfat``, ``ivim``) are the exam pipeline restricted to their stage.
    maps:
        Parametric maps given as inputs, by registry name or alias (``{"pdff": "sub-01_pdff.nii.gz"}``): measured
        per vertebra (``osteomri measure``), not written again.
    series:
        DICOM ``SeriesInstanceUID`` s to read per input name (``{"megre": [magnitude_uid, phase_uid]}``) when
        an input folder holds several series.
    """

    exam_id: str
    megre: PathOrImage | None = None
    pdff: PathOrImage | None = None
    r2star: PathOrImage | None = None
    t1w: PathOrImage | None = None
    dwi: PathOrImage | None = None
    ute: PathOrImage | None = None
    bvals: Any = None
    labels: PathOrImage | None = None
    label_preset: str = "spineps"
    roi: str = "paper"
    clinical: dict[str, Any] = field(default_factory=dict)
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    reference_values: pd.DataFrame | None = None
    stages: tuple[str, ...] | None = None
    series: dict[str, list[str]] = field(default_factory=dict)
    maps: dict[str, PathOrImage] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _EXAM_ID.match(self.exam_id):
            raise InputError(f"exam_id must look like 'sub-01' or 'sub-01_ses-02', got {self.exam_id!r}")

    @property
    def subject(self) -> str:
        return self.exam_id.split("_")[0]

    @property
    def session(self) -> str | None:
        parts = self.exam_id.split("_")
        return parts[1] if len(parts) > 1 else None

    def relative_dir(self) -> Path:
        """``sub-XX`` or ``sub-XX/ses-YY``: where this exam's outputs go."""
        return Path(self.subject, self.session) if self.session else Path(self.subject)

    def input_digests(self) -> dict[str, dict[str, str]]:
        """Input name -> ``{"name", "sha256"}``: files by content (``"missing"`` if absent), in-memory images by
        their data, b-value lists by their JSON. What provenance records and what decides whether outputs are
        current."""
        import hashlib
        import json

        from osteomri.io.provenance import sha256_array, sha256_file

        out: dict[str, dict[str, str]] = {}
        given = {f"map_{k}": v for k, v in self.maps.items()}
        for name, value in [(n, getattr(self, n)) for n in _INPUTS] + list(given.items()):
            if value is None:
                continue
            if isinstance(value, (str, Path)):
                path = Path(value)
                out[name] = {"name": path.name, "sha256": sha256_file(path) if path.exists() else "missing"}
            elif isinstance(value, Image):
                out[name] = {"name": f"<in-memory {name}>", "sha256": sha256_array(value.data)}
            else:
                text = json.dumps([float(v) for v in value])
                out[name] = {"name": f"<{name} list>", "sha256": hashlib.sha256(text.encode()).hexdigest()}
        return out

    def scrub_paths(self, message: str) -> str:
        """``message`` without the folders of the inputs (file names stay): no full paths in logs."""
        for path in self.input_paths().values():
            parent = str(path.parent)
            if parent not in ("", "."):
                message = message.replace(parent + "/", "").replace(parent, "")
        return message

    def input_paths(self) -> dict[str, Path]:
        """The inputs given as paths (for hashing and provenance)."""
        out = {}
        given = {f"map_{k}": v for k, v in self.maps.items()}
        for name, value in [(n, getattr(self, n)) for n in _INPUTS] + list(given.items()):
            if isinstance(value, (str, Path)):
                out[name] = Path(value)
        return out


@dataclass
class StageRecord:
    stage: str
    status: str
    message: str = ""
    seconds: float = 0.0


@dataclass
class ExamResult:
    """Everything one exam produced: maps, per-vertebra table, scores, QC flags, stage log, provenance."""

    exam_id: str
    maps: dict[str, Image] = field(default_factory=dict)
    vertebrae: pd.DataFrame | None = None
    scores: dict[str, Any] = field(default_factory=dict)
    qc: dict[str, Any] = field(default_factory=dict)
    stages: list[StageRecord] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)  # per model stage: its fit's parameters()
    clinical: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # written as <exam>_<name>.tsv
    input_maps: dict[str, Image] = field(default_factory=dict)  # given maps: measured, not written

    @property
    def ok(self) -> bool:
        """True when no stage failed."""
        return not any(s.status == "failed" for s in self.stages)

    def stage_table(self) -> pd.DataFrame:
        return pd.DataFrame([vars(s) for s in self.stages], columns=["stage", "status", "message", "seconds"])

    def errors(self) -> list[str]:
        return [f"{s.stage}: {s.message}" for s in self.stages if s.status == "failed"]
