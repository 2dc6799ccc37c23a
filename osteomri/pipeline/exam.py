"""``run_exam``: one exam through every stage that applies — a pure function of its inputs.

The result holds the maps, the per-vertebra table, the scores, QC flags, a stage log and provenance;
``out_dir`` (optional) receives the BIDS-derivatives-style outputs and the HTML report. A stage that fails
is logged with its message and the others go on; a stage not built yet is logged ``not_available``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from osteomri.errors import OsteoMRIError
from osteomri.io.provenance import provenance, sha256_array
from osteomri.pipeline.spec import ExamResult, ExamSpec, StageRecord
from osteomri.pipeline.stages import STAGES, ExamContext

ProgressCallback = Callable[[str, str], None]


def run_exam(
    spec: ExamSpec,
    out_dir: str | os.PathLike | None = None,
    progress: ProgressCallback | None = None,
) -> ExamResult:
    """Run every applicable stage for ``spec``; write outputs below ``out_dir`` if given.

    ``progress(stage, status)`` is called before and after each stage (for progress bars).
    """
    result = ExamResult(exam_id=spec.exam_id, clinical=dict(spec.clinical))
    ctx = ExamContext(spec=spec, result=result, images={})
    for stage in STAGES:
        if not stage.applies(spec):
            continue
        if missing := stage.missing_modules():
            result.stages.append(StageRecord(stage.name, "not_available", f"not built yet: {', '.join(missing)}"))
            if progress:
                progress(stage.name, "not_available")
            continue
        if progress:
            progress(stage.name, "start")
        t0 = time.perf_counter()
        try:
            message = stage.run(spec, ctx)
            record = StageRecord(stage.name, "done", message)
        except (OsteoMRIError, ValueError, OSError) as exc:
            record = StageRecord(stage.name, "failed", f"{type(exc).__name__}: {exc}")
        record.seconds = round(time.perf_counter() - t0, 3)
        result.stages.append(record)
        if progress:
            progress(stage.name, record.status)
    if not result.stages:
        result.stages.append(StageRecord("inputs", "failed", "the exam names no input image"))
    result.provenance = _exam_provenance(spec, ctx)
    if out_dir is not None:
        from osteomri.pipeline.outputs import write_exam_outputs

        write_exam_outputs(result, Path(out_dir) / spec.relative_dir(), spec)
    return result


def _exam_provenance(spec: ExamSpec, ctx: ExamContext) -> dict:
    prov = provenance(
        "run_exam",
        parameters={"label_preset": spec.label_preset, "roi": spec.roi, "options": spec.options},
        inputs=[p for p in spec.input_paths().values() if p.exists()],
    )
    in_memory = {name: sha256_array(img.data) for name, img in ctx.images.items()
                 if not isinstance(getattr(spec, name, None), (str, Path))}
    prov["inputs"] += [{"name": f"<in-memory {k}>", "sha256": v} for k, v in in_memory.items()]
    return prov
