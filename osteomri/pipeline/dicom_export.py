"""``--dicom-out``: an exam's results as DICOM objects that reference the exam's source series.

For an exam whose inputs came from DICOM, writes into ``DIR/<sub-XX>[/ses-YY]/``:

* ``<exam>_<suffix>_pmap.dcm`` — one Parametric Map per quantitative map (every map of the result except the
  T1w input itself), on the grid of the series it was computed from (MEGRE for water–fat maps, DWI for IVIM
  maps, the vendor series for vendor maps);
* ``<exam>_seg-<input>.dcm`` — per source grid with measured maps: a BINARY SEG of the vertebrae (label map
  on that grid) and the measurement ROIs (the same ROIs the measure stage used: same preset, strategy and
  options);
* ``<exam>_sr.dcm`` — the TID 1500 Measurement Report (per level and map: mean, median, SD, voxel count;
  VBQ; the screening estimate), every measurement referencing its ROI segment and its Parametric Map;
* ``<exam>_qc_sc.dcm`` — a Secondary Capture of the QC figure, when there is one;
* with ``--anonymize``: ``source-<input>/`` — the de-identified source images the maps reference (same keyed
  UIDs), so that a research export is complete.

Every object is built in memory first and written only when all were built (atomic per file), so a failure
leaves no partial export. With a pseudonymisation key (``--anonymize``) the source headers are de-identified
first (:class:`osteomri.io.dicomout.identity.Pseudonymizer`), so maps, SEG and SR share one pseudonymous
patient, study and set of source UIDs.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from osteomri.errors import InputError
from osteomri.io.image import Image
from osteomri.io.loader import is_dicom_source
from osteomri.pipeline.spec import ExamResult, ExamSpec, StageRecord

_NOT_EXPORTED = {"t1w_signal"}  # the T1w input itself: already in PACS
_INPUTS = ("megre", "pdff", "r2star", "dwi", "t1w")


def anonymization_key(key_file: str | os.PathLike | None) -> bytes:
    """The pseudonymisation key: the contents of ``key_file``, else ``$OSTEOMRI_ANON_KEY``; never logged."""
    if key_file is not None:
        path = Path(key_file)
        if not path.is_file():
            raise InputError(f"anonymisation key file not found: {path.name}")
        key = path.read_bytes().strip()
    else:
        key = os.environ.get("OSTEOMRI_ANON_KEY", "").encode()
    if len(key) < 8:
        raise InputError("--anonymize needs a key of at least 8 characters: --anon-key-file FILE or "
                         "the environment variable OSTEOMRI_ANON_KEY")
    return key


def cli_anonymize_key(anonymize: bool, key_file, dicom_out) -> bytes | None:
    """The key for ``--anonymize``/``--anon-key-file`` (None without them); both need ``--dicom-out``."""
    if not anonymize and key_file is None:
        return None
    if dicom_out is None:
        raise InputError("--anonymize applies to --dicom-out: give --dicom-out DIR")
    return anonymization_key(key_file)


def _spec_of(key: str):
    """The registry spec of map ``key`` (every map the pipeline makes is registered)."""
    from osteomri.models.registry import map_spec

    return map_spec(key)


#: model family of a map -> the exam input it was computed from
_SOURCE_INPUT = {"ivim": "dwi", "t1w": "t1w", "ute": "ute", "ute_mt": "ute", "ute_vfa": "ute", "ute_ratio": "ute"}


def _input_of(key: str, model: str, spec: ExamSpec) -> str | None:
    """Which exam input a map was computed from."""
    if model == "waterfat":
        if spec.megre is not None:
            return "megre"
        return {"pdff_percent": "pdff", "r2star_hz": "r2star"}.get(key.removesuffix("_sd"))
    return _SOURCE_INPUT.get(model)


def export_exam_dicom(result: ExamResult, spec: ExamSpec, folder: str | os.PathLike, *,
                      anonymize_key: bytes | str | None = None) -> dict[str, Path]:
    """Write the exam's DICOM results into ``folder`` (see the module docstring); returns ``{kind: path}``."""
    from osteomri.io.dicomout import Pseudonymizer, read_source
    from osteomri.io.dicomout.pmap import parametric_map

    sources = {}
    for name in _INPUTS:
        value = getattr(spec, name)
        if isinstance(value, (str, os.PathLike)) and is_dicom_source(value) and Path(value).exists():
            sources[name] = read_source(value, label=name)
    if not sources:
        raise InputError("--dicom-out needs inputs read from DICOM series (the results reference them); "
                         "this exam has none")
    if anonymize_key is not None:
        pseudo = Pseudonymizer(anonymize_key)
        sources = {k: s.with_pseudonyms(pseudo) for k, s in sources.items()}

    objects: dict[str, Any] = {}
    pms: dict[str, tuple[Any, Any, str]] = {}  # map key -> (spec, pm dataset, input name)
    for key, image in result.maps.items():
        if key in _NOT_EXPORTED:
            continue
        mspec = _spec_of(key)
        name = _input_of(key, mspec.model, spec)
        if name not in sources:
            continue
        if not np.isfinite(np.asarray(image.data, dtype=float)).any():
            continue
        pm = parametric_map(image, mspec, sources[name])
        pms[key] = (mspec, pm, name)
        objects[f"pmap_{mspec.suffix}"] = (pm, f"{spec.exam_id}_{mspec.suffix}_pmap.dcm")
    if not pms:
        raise InputError("no map of this exam was computed from a DICOM input: nothing to export as DICOM")

    measured = _segmentations(result, spec, pms, sources, objects)
    primary = sources[next(iter(pms.values()))[2]]
    if measured and result.vertebrae is not None:
        from osteomri.io.dicomout.sr import measurement_report

        vbq = result.scores.get("vbq")
        screen = result.scores.get("osteoporosis_screen")
        table = result.vertebrae[result.vertebrae["roi"] == result.vertebrae["roi"].iloc[0]] \
            if "roi" in result.vertebrae else result.vertebrae
        sr = measurement_report(table, measured, primary, vbq=getattr(vbq, "value", None),
                                screening=screen, extra_evidence=[d for k, s in sources.items()
                                                                  for d in s.datasets if s is not primary])
        objects["sr"] = (sr, f"{spec.exam_id}_sr.dcm")
    if "qc" in result.figures:
        objects["sc_qc"] = (_qc_capture(result.figures["qc"], primary), f"{spec.exam_id}_qc_sc.dcm")

    from osteomri.io.dicomout._common import save

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = {kind: save(ds, folder / filename) for kind, (ds, filename) in objects.items()}
    if anonymize_key is not None:  # the research export carries the de-identified images its results reference
        from osteomri.io.dicomout.identity import write_pseudonymized_series

        for name in dict.fromkeys(name for _, _, name in pms.values()):
            write_pseudonymized_series(sources[name].paths, folder / f"source-{name}", pseudo)
            written[f"source_{name}"] = folder / f"source-{name}"
    return written


def _segmentations(result: ExamResult, spec: ExamSpec, pms: dict, sources: dict, objects: dict) -> dict:
    """One SEG per source grid with measured maps; returns map key -> MeasuredMap for the SR."""
    from osteomri.io.dicomout.seg import Segment, segmentation
    from osteomri.io.dicomout.sr import MeasuredMap
    from osteomri.io.loader import load_image
    from osteomri.pipeline.measure_stage import MEASURED_MAPS
    from osteomri.vertebrae.labels import resolve_labels
    from osteomri.vertebrae.rois import place_rois, select_levels

    table = result.vertebrae
    if table is None or spec.labels is None or spec.roi not in ("paper", "body"):
        return {}
    labels = load_image(spec.labels)
    options = dict(spec.options.get("measure", {}))
    label_opts = {k: options.pop(k) for k in ("subregion", "lowest_level", "vein", "min_component_mm3")
                  if k in options}
    levels_opt = options.pop("levels", None)
    measured = {}
    for input_name in dict.fromkeys(name for key, (_, _, name) in pms.items() if key in MEASURED_MAPS):
        keys = [k for k, (_, _, n) in pms.items() if n == input_name and k in MEASURED_MAPS
                and (table["map"] == k).any()]
        if not keys:
            continue
        grid: Image = result.maps[keys[0]]
        vl = resolve_labels(labels, spec.label_preset, reference=grid, **label_opts)
        rois = place_rois(vl, spec.roi, select_levels(vl, levels_opt), **options)
        segments, roi_numbers = [], {}
        for level in rois.levels:
            body, roi = vl.vertebra(level), rois.masks[level]
            if body.any():
                segments.append(Segment(f"{level} vertebra", body, level))
            if roi.any():
                segments.append(Segment(f"{level} ROI", roi, level, "roi", f"{spec.roi} ROI"))
                roi_numbers[level] = len(segments)
        if not segments:
            continue
        seg = segmentation(segments, sources[input_name], algorithm=f"osteomri ROI {spec.roi}")
        objects[f"seg_{input_name}"] = (seg, f"{spec.exam_id}_seg-{input_name}.dcm")
        for k in keys:
            mspec, pm, _ = pms[k]
            measured[k] = MeasuredMap(mspec, pm, seg, roi_numbers, sources[input_name].series_uids[0])
    return measured


def _qc_capture(figure, source):
    from osteomri.io.dicomout.sc import secondary_capture

    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / "qc.png"
        figure.savefig(png, dpi=110, format="png")
        return secondary_capture(png, source)


def export_stage(result: ExamResult, spec: ExamSpec, folder: str | os.PathLike,
                 anonymize_key: bytes | str | None = None) -> StageRecord:
    """The export as a stage record of the exam (``done`` with what was written, or ``failed``)."""
    import time

    t0 = time.perf_counter()
    try:
        written = export_exam_dicom(result, spec, Path(folder) / spec.relative_dir(), anonymize_key=anonymize_key)
        kinds = sorted(written)
        record = StageRecord("dicom_export", "done", f"{len(written)} objects: {', '.join(kinds)}")
    except Exception as exc:  # noqa: BLE001 - reported as the stage's failure, like every stage
        from osteomri.errors import OsteoMRIError

        kind = "" if isinstance(exc, OsteoMRIError) else f"{type(exc).__name__}: "
        record = StageRecord("dicom_export", "failed", spec.scrub_paths(f"{kind}{exc}"))
    record.seconds = round(time.perf_counter() - t0, 3)
    return record
