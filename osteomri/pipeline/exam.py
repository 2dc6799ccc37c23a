"""``run_exam``: one exam through every stage that applies — a pure function of its inputs.

The result holds the maps, the per-vertebra table, the scores, QC flags, a stage log and provenance;
``out_dir`` (optional) receives the BIDS-derivatives-style outputs and the HTML report. A stage that fails
is logged with its message and the others go on.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from osteomri.errors import OsteoMRIError
from osteomri.io.provenance import provenance
from osteomri.pipeline.spec import ExamResult, ExamSpec, StageRecord
from osteomri.pipeline.stages import STAGES, ExamContext

ProgressCallback = Callable[[str, str], None]


def run_exam(
    spec: ExamSpec,
    out_dir: str | os.PathLike | None = None,
    progress: ProgressCallback | None = None,
    input_digests: dict[str, dict[str, str]] | None = None,
    strict: bool = False,
    dicom_out: str | os.PathLike | None = None,
    anonymize_key: bytes | str | None = None,
) -> ExamResult:
    """Run every applicable stage for ``spec``; write outputs below ``out_dir`` if given.

    ``progress(stage, status)`` is called before and after each stage (for progress bars).
    ``input_digests``: :meth:`ExamSpec.input_digests` when the caller already computed it (not hashed again).
    Any exception in a stage is recorded as that stage's failure (messages without input folders); the
    other stages go on. ``strict`` (the single-purpose commands): a stage's error propagates instead and
    nothing is written. ``dicom_out``: also write the DICOM results below it (:mod:`.dicom_export`;
    pseudonymised with ``anonymize_key``), logged as stage ``dicom_export``.
    """
    result = ExamResult(exam_id=spec.exam_id, clinical=dict(spec.clinical))
    ctx = ExamContext(spec=spec, result=result, images={})

    def log(record: StageRecord) -> None:
        result.stages.append(record)
        if progress:
            progress(record.stage, record.status)

    for stage in STAGES:
        if not stage.applies(spec) or (spec.stages is not None and stage.name not in spec.stages):
            continue
        done = {r.stage for r in result.stages if r.status == "done"}
        left_out = {s.name for s in STAGES} - set(spec.stages) if spec.stages is not None else set()
        if unmet := stage.unmet_needs(done | left_out):  # a stage left out by spec.stages is no prerequisite
            log(StageRecord(stage.name, "skipped", f"needs {'; '.join(unmet)}, which did not succeed"))
            continue
        if progress:
            progress(stage.name, "start")
        t0 = time.perf_counter()
        try:
            record = StageRecord(stage.name, "done", stage.run(spec, ctx))
        except Exception as exc:  # noqa: BLE001 - one stage's failure, whatever it is, must not lose the exam
            if strict:
                raise
            kind = "" if isinstance(exc, OsteoMRIError) else f"{type(exc).__name__}: "
            record = StageRecord(stage.name, "failed", spec.scrub_paths(f"{kind}{exc}"))
        record.seconds = round(time.perf_counter() - t0, 3)
        log(record)
    if not result.stages:
        result.stages.append(StageRecord("inputs", "failed", "the exam names no input image"))
    if dicom_out is not None:
        from osteomri.pipeline.dicom_export import export_stage

        record = export_stage(result, spec, dicom_out, anonymize_key)
        if strict and record.status == "failed":
            raise OsteoMRIError(record.message)
        log(record)
    result.provenance = provenance(
        "run_exam", parameters={"label_preset": spec.label_preset, "roi": spec.roi, "options": spec.options,
                     "stages": list(spec.stages) if spec.stages is not None else "all"})
    result.provenance["inputs"] = list((input_digests or spec.input_digests()).values())
    if out_dir is not None:
        from osteomri.pipeline.outputs import write_exam_outputs

        write_exam_outputs(result, Path(out_dir) / spec.relative_dir(), spec)
    return result
