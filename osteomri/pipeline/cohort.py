"""``run_cohort``: map the exam pipeline over a cohort with ``dask.distributed`` — atomic outputs, resume,
error records, nothing lost when a worker dies.

- Without ``scheduler`` a :class:`dask.distributed.LocalCluster` of ``workers`` processes (one thread each)
  is started and closed; with ``scheduler="tcp://host:port"`` the exams are submitted to that cluster (the
  dataset and ``out`` must be visible to its workers at the same paths).
- Each exam runs :func:`~osteomri.pipeline.exam.run_exam` unchanged on a worker, writes into
  ``out/.osteomri-tmp/<exam>.<random>/`` and is renamed into ``out/sub-XX[/ses-YY]/`` only when complete,
  with a completion record ``<exam>_complete.json`` (software version, SHA-256 of every input, parameters).
- A rerun skips an exam whose record matches (changed inputs, parameters or version are redone); exams
  that failed deterministically (a stage failed) are skipped too unless ``retry_failed``.
- A failure never stops the others: it lands in ``out/errors.tsv`` (exam, stage, message). A worker that
  dies mid-exam loses nothing: the scheduler reruns its tasks elsewhere (``retries`` covers exceptions
  raised outside the pipeline, e.g. a lost connection).
- At the end: ``cohort_vertebrae.tsv`` (exam × level × map), ``cohort_patients.tsv`` (one row per exam:
  clinical columns and per-map means over ``levels``, default L1–L5 — the input of ``osteomri study``), ``errors.tsv``,
  ``cohort_run.json`` and the summary page ``cohort_report.html``.

Logs and records carry exam ids (pseudonymous BIDS labels) and file names, never clinical values or the
dataset's absolute paths.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from osteomri._version import __version__
from osteomri.errors import InputError, OsteoMRIError
from osteomri.io.provenance import provenance, write_json_atomic
from osteomri.pipeline.spec import ExamSpec

TMP_DIR = ".osteomri-tmp"
RECORD_SUFFIX = "_complete.json"
ERROR_COLUMNS = ["exam", "stage", "message"]
#: Outcome statuses: ``done`` (all stages fine), ``failed`` (a stage failed; outputs and record written),
#: ``skipped`` (already complete), ``lost`` (no result: the task raised or its workers kept dying).
STATUSES = ("done", "failed", "skipped", "lost")


@dataclass
class ExamOutcome:
    """What one exam's task reports back (small: the maps stay on disk)."""

    exam_id: str
    status: str
    errors: list[tuple[str, str]] = field(default_factory=list)  # (stage, message)
    ok: bool = True  # for skipped exams: whether the recorded run was ok
    seconds: float = 0.0
    worker_pid: int = 0
    peak_rss_mb: float = 0.0


@dataclass
class CohortResult:
    """Outcome of :func:`run_cohort`: per-exam outcomes, the cohort tables and the files written."""

    out_dir: Path
    outcomes: list[ExamOutcome]
    vertebrae: pd.DataFrame
    patients: pd.DataFrame
    errors: pd.DataFrame
    files: dict[str, Path]
    seconds: float = 0.0

    @property
    def counts(self) -> dict[str, int]:
        """Exams per status, plus ``total`` and ``complete`` (done or skipped-and-ok)."""
        c = {s: sum(o.status == s for o in self.outcomes) for s in STATUSES}
        c["total"] = len(self.outcomes)
        c["ok"] = sum(o.status == "done" or (o.status == "skipped" and o.ok) for o in self.outcomes)
        c["with_errors"] = sum(bool(o.errors) for o in self.outcomes)
        return c

    @property
    def ok(self) -> bool:
        return self.counts["ok"] == len(self.outcomes)


ProgressCallback = Callable[[ExamOutcome, dict[str, int]], None]


# --- the per-exam task (runs on a worker) ---------------------------------------------------------------

def completion_key(spec: ExamSpec) -> dict[str, Any]:
    """What decides whether an exam's outputs are current: version, input hashes and parameters."""
    inputs = dict(sorted(spec.input_digests().items()))
    params = {"label_preset": spec.label_preset, "roi": spec.roi, "options": spec.options}
    return {"version": __version__, "inputs": inputs, "parameters": json.loads(json.dumps(params, default=str))}


def record_path(out_dir: Path, spec: ExamSpec) -> Path:
    return Path(out_dir) / spec.relative_dir() / f"{spec.exam_id}{RECORD_SUFFIX}"


def read_record(path: Path) -> dict[str, Any] | None:
    """The completion record at ``path``, or None if absent or unreadable (then the exam is redone)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def process_exam(spec: ExamSpec, out_dir: str | os.PathLike, retry_failed: bool = False,
                 dicom_out: str | os.PathLike | None = None, anonymize_key: bytes | str | None = None) -> ExamOutcome:
    """Run one exam unless its outputs are current; publish them atomically. Never raises for a bad exam.

    This is the function the cluster runs; it returns a small :class:`ExamOutcome` and keeps the maps on disk.
    ``dicom_out``/``anonymize_key``: the exam's DICOM results too (one key: pseudonyms consistent across the
    cohort).
    """
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    final = out_dir / spec.relative_dir()
    key = completion_key(spec)
    record = read_record(record_path(out_dir, spec))
    if record is not None and record.get("key") == key and (record.get("ok") or not retry_failed):
        return _outcome(spec, "skipped", [tuple(e) for e in record.get("errors", [])], bool(record.get("ok")), t0)

    tmp_root = out_dir / TMP_DIR / f"{spec.exam_id}.{uuid.uuid4().hex[:12]}"
    staging = tmp_root / spec.relative_dir()
    current = {"stage": "inputs"}

    def track(stage: str, status: str) -> None:
        current["stage"] = stage

    from osteomri.pipeline.exam import run_exam

    try:
        result = run_exam(spec, out_dir=tmp_root, progress=track, input_digests=key["inputs"], dicom_out=dicom_out,
                          anonymize_key=anonymize_key)
        errors = [(s.stage, s.message) for s in result.stages if s.status == "failed"]
        ok = result.ok
    except MemoryError:
        shutil.rmtree(tmp_root, ignore_errors=True)
        raise  # not a property of the exam: let Dask retry it
    except Exception as exc:  # noqa: BLE001 - a bug or an unexpected input error: record it, go on
        shutil.rmtree(tmp_root, ignore_errors=True)
        errors = [(current["stage"], f"{type(exc).__name__}: {exc}")]
        ok = False
        staging.mkdir(parents=True, exist_ok=True)
        write_json_atomic(staging / f"{spec.exam_id}_exam.json", {
            "exam_id": spec.exam_id, "ok": False, "errors": [f"{s}: {m}" for s, m in errors],
            "clinical": spec.clinical,
            "provenance": provenance("run_exam", inputs=[p for p in spec.input_paths().values() if p.exists()])})
    errors = [(stage, spec.scrub_paths(message)) for stage, message in errors]
    write_json_atomic(staging / f"{spec.exam_id}{RECORD_SUFFIX}", {
        "exam_id": spec.exam_id, "ok": ok, "errors": errors, "key": key,
        "seconds": round(time.perf_counter() - t0, 3),
        "finished_utc": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")})
    _publish(staging, final, out_dir / TMP_DIR)
    shutil.rmtree(tmp_root, ignore_errors=True)
    _release_memory()
    return _outcome(spec, "done" if ok else "failed", errors, ok, t0)


def _release_memory() -> None:
    """Free this exam's garbage and hand freed heap pages back to the OS (glibc ``malloc_trim``), so a
    long-lived worker's footprint does not creep up with fragmentation as the cohort grows."""
    import ctypes
    import ctypes.util
    import gc

    gc.collect()
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(libc_name).malloc_trim(0)


def _outcome(spec: ExamSpec, status: str, errors: list, ok: bool, t0: float) -> ExamOutcome:
    return ExamOutcome(spec.exam_id, status, [(str(s), str(m)) for s, m in errors], ok,
                       round(time.perf_counter() - t0, 3), os.getpid(), _peak_rss_mb())


def _peak_rss_mb() -> float:
    """Peak resident memory of this (worker) process, in MiB."""
    try:
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024
    except (ImportError, OSError):  # pragma: no cover - Windows
        return float("nan")


def _publish(staging: Path, final: Path, tmp_dir: Path) -> None:
    """Move a finished exam folder into place with renames (an old version is swapped out, then removed)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if final.exists():
        old = tmp_dir / f"old.{final.name}.{uuid.uuid4().hex[:12]}"
        os.replace(final, old)
        if not final.name.startswith("ses-"):  # keep the subject's session folders, if any
            for child in old.glob("ses-*"):
                os.replace(child, staging / child.name)
    os.replace(staging, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# --- the driver (runs on the client) --------------------------------------------------------------------

@contextlib.contextmanager
def dask_client(scheduler: str | None = None, workers: int = 2, memory_limit: str | float | None = "auto",
                connect_timeout: float = 30.0):
    """A ``dask.distributed.Client``: to ``scheduler`` if given (waiting ``connect_timeout`` seconds at most),
    else to a fresh LocalCluster of ``workers`` processes with one thread each (closed on exit)."""
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout=f"{connect_timeout}s")
        except (OSError, TimeoutError) as exc:
            raise InputError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        with client:
            yield client
        return
    if int(workers) < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    import dask

    # No dashboard, so no statistical profiler: it costs time on short tasks and its history grows the
    # workers' memory for an hour (measured: +0.5 MB per exam); without it memory stays flat.
    with dask.config.set({"distributed.worker.profile.enabled": False}):
        cluster = LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None, memory_limit=memory_limit)
    with cluster, Client(cluster) as client:
        yield client


def run_cohort(
    exams: str | os.PathLike | Sequence[ExamSpec],
    out_dir: str | os.PathLike,
    *,
    scheduler: str | None = None,
    workers: int = 2,
    client: Any = None,
    retries: int = 2,
    retry_failed: bool = False,
    progress: ProgressCallback | None = None,
    report: bool = True,
    label_preset: str = "spineps",
    roi: str = "paper",
    connect_timeout: float = 30.0,
    levels: str | None = None,
    dicom_out: str | os.PathLike | None = None,
    anonymize_key: bytes | str | None = None,
) -> CohortResult:
    """Run every exam of ``exams`` (a dataset folder/manifest, or ExamSpecs) and write the cohort outputs.

    ``client`` (a ``distributed.Client``) takes precedence over ``scheduler`` and ``workers``. ``progress``
    is called on the client after each exam with its :class:`ExamOutcome` and running counts
    (``done``, ``failed``, ``skipped``, ``lost``, ``remaining``, ``total``). ``levels``: the level set of the
    per-patient means in ``cohort_patients.tsv`` (default L1–L5, :data:`~osteomri.vertebrae.measure.DEFAULT_LEVEL_SET`).
    ``dicom_out``: each exam's DICOM results below it (pseudonymised with ``anonymize_key``, the same key for
    every exam).
    """
    t0 = time.perf_counter()
    if isinstance(exams, (str, os.PathLike)):
        from osteomri.pipeline.dataset import discover_exams

        dataset_name = Path(exams).name
        specs = discover_exams(exams, label_preset=label_preset, roi=roi)
    else:
        dataset_name = "<ExamSpecs>"
        specs = list(exams)
    ids = [s.exam_id for s in specs]
    if len(set(ids)) != len(ids):
        raise InputError(f"duplicated exam id(s): {sorted({i for i in ids if ids.count(i) > 1})}")
    out_dir = Path(out_dir).absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out_dir / TMP_DIR, ignore_errors=True)  # leftovers of an interrupted run
    (out_dir / TMP_DIR).mkdir()

    if client is not None:
        outcomes = _map_exams(client, specs, out_dir, retries, retry_failed, progress, dicom_out, anonymize_key)
    else:
        with dask_client(scheduler, workers, connect_timeout=connect_timeout) as c:
            outcomes = _map_exams(c, specs, out_dir, retries, retry_failed, progress, dicom_out, anonymize_key)
    shutil.rmtree(out_dir / TMP_DIR, ignore_errors=True)
    return finish_cohort(specs, outcomes, out_dir, dataset_name=dataset_name, seconds=time.perf_counter() - t0,
                         scheduler=scheduler, report=report, levels=levels)


def _map_exams(client: Any, specs: list[ExamSpec], out_dir: Path, retries: int, retry_failed: bool,
               progress: ProgressCallback | None, dicom_out: str | os.PathLike | None = None,
               anonymize_key: bytes | str | None = None) -> list[ExamOutcome]:
    from distributed import as_completed

    counts = {s: 0 for s in STATUSES} | {"remaining": len(specs), "total": len(specs)}
    run_id = uuid.uuid4().hex[:8]
    dicom = None if dicom_out is None else str(Path(dicom_out).absolute())
    futures = [client.submit(process_exam, spec, str(out_dir), retry_failed, dicom, anonymize_key,
                             key=f"exam-{spec.exam_id}-{run_id}", pure=False, retries=retries) for spec in specs]
    exam_of = {fut.key: spec.exam_id for fut, spec in zip(futures, specs, strict=True)}
    pending = as_completed(futures)
    del futures  # as_completed holds them; each is released once its outcome is in
    outcomes: dict[str, ExamOutcome] = {}
    for fut in pending:
        exam_id = exam_of[fut.key]
        try:
            outcome = fut.result()
        except Exception as exc:  # noqa: BLE001 - KilledWorker, lost connection, a bug: record, go on
            outcome = ExamOutcome(exam_id, "lost", [("worker", f"{type(exc).__name__}: {exc}")], ok=False)
        fut.release()
        outcomes[exam_id] = outcome
        counts[outcome.status] += 1
        counts["remaining"] -= 1
        if progress is not None:
            progress(outcome, dict(counts))
    return [outcomes[s.exam_id] for s in specs]


# --- cohort tables and files ----------------------------------------------------------------------------

def finish_cohort(specs: Sequence[ExamSpec], outcomes: Sequence[ExamOutcome], out_dir: Path, *,
                  dataset_name: str = "", seconds: float = 0.0, scheduler: str | None = None,
                  report: bool = True, levels: str | None = None) -> CohortResult:
    """Gather the per-exam outputs on disk into the cohort tables, errors.tsv, the run record and the page.

    ``cohort_vertebrae.tsv`` holds the exams that completed without a failed stage; a failed exam keeps its
    partial outputs (e.g. the T1w measured when the PDFF map was corrupt) in its own folder only.
    """
    from osteomri.io.provenance import write_table_atomic

    vert_frames, rows, measured, failures = [], [], set(), []
    for spec, outcome in zip(specs, outcomes, strict=True):
        folder = out_dir / spec.relative_dir()
        exam_json = read_record(folder / f"{spec.exam_id}_exam.json") if outcome.status != "lost" else None
        vert = _read_vertebrae(folder / f"{spec.exam_id}_vertebrae.tsv", spec.exam_id) if exam_json else None
        scores = read_record(folder / f"{spec.exam_id}_scores.json") if exam_json else None
        try:
            row, names = _patient_row(spec, outcome, exam_json, vert, scores, levels)
        except (OsteoMRIError, KeyError, ValueError, TypeError) as exc:  # recorded, never a silent empty row
            kind = "" if isinstance(exc, OsteoMRIError) else f"{type(exc).__name__}: "
            failures.append((spec.exam_id, "cohort_aggregation", f"{spec.exam_id}_vertebrae.tsv: {kind}{exc}"))
            row, names = _patient_row(spec, outcome, exam_json, None, scores, levels)
            row.update(status="failed", n_errors=row["n_errors"] + 1)
            vert = None
        if vert is not None and outcome.ok:  # a failed exam's partial table stays in its own folder
            vert_frames.append(vert)
        rows.append(row)
        measured.update(names)
    vertebrae = (pd.concat(vert_frames, ignore_index=True) if vert_frames
                 else pd.DataFrame(columns=["exam", "level", "map", "roi", "n_voxels", "mean", "median", "sd"]))
    patients = pd.DataFrame(rows)
    patients.attrs["measured"] = sorted(measured)
    errors = pd.DataFrame([(o.exam_id, s, m) for o in outcomes for s, m in o.errors] + failures,
                          columns=ERROR_COLUMNS)
    files = {
        "vertebrae": write_table_atomic(vertebrae, out_dir / "cohort_vertebrae.tsv", "%.6g"),
        "patients": write_table_atomic(patients, out_dir / "cohort_patients.tsv", "%.6g"),
        "errors": write_table_atomic(errors, out_dir / "errors.tsv", "%.6g"),
    }
    result = CohortResult(out_dir, list(outcomes), vertebrae, patients, errors, files, round(seconds, 3))
    files["run"] = write_json_atomic(out_dir / "cohort_run.json", {
        "dataset": dataset_name, "counts": result.counts, "seconds": result.seconds,
        "executor": "distributed scheduler" if scheduler else "LocalCluster",
        "outcomes": [asdict(o) for o in outcomes],
        "provenance": provenance("osteomri cohort run", {"dataset": dataset_name})})
    if report:
        from osteomri.report.cohort import cohort_report

        files["report"] = cohort_report(result).write(out_dir / "cohort_report.html")
    return result


def _read_vertebrae(path: Path, exam_id: str) -> pd.DataFrame | None:
    if not path.exists():
        return None
    table = pd.read_csv(path, sep="\t")
    if "exam" not in table.columns:
        table.insert(0, "exam", exam_id)
    else:
        table["exam"] = exam_id
    return table


def _patient_row(spec: ExamSpec, outcome: ExamOutcome, exam_json: dict | None, vert: pd.DataFrame | None,
                 scores: dict | None, levels: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """One row of cohort_patients.tsv (ids, status, clinical columns, per-map means over ``levels`` (default
    :data:`~osteomri.vertebrae.measure.DEFAULT_LEVEL_SET`, named in the ``levels`` column), scores, QC flags)
    and the names of its measured columns."""
    from osteomri.vertebrae.measure import DEFAULT_LEVEL_SET

    levels = levels or DEFAULT_LEVEL_SET
    row: dict[str, Any] = {"exam": spec.exam_id, "subject": spec.subject, "session": spec.session or "",
                           "status": outcome.status if outcome.status != "skipped" else
                           ("done" if outcome.ok else "failed"),
                           "n_errors": len(outcome.errors)}
    aggregates = _level_aggregates(vert, spec.roi, levels)
    if aggregates:
        row["levels"] = levels
    for name, value in spec.clinical.items():
        key = f"clinical_{name}" if name in aggregates or name in row else name
        row[key] = value
    row.update(aggregates)
    measured = [k for k in aggregates if k != "n_levels"]
    for name, value in (scores or {}).items():
        if isinstance(value, list):  # per-marker records (e.g. the screening estimate): flag and probability
            for rec in (r for r in value if isinstance(r, dict) and "marker" in r):
                for fld in ("positive", "posttest_probability"):
                    if fld in rec:
                        row[f"{name}_{rec['marker']}_{fld}"] = rec[fld]
            continue
        value = value.get("value") if isinstance(value, dict) else value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            row[name] = value
            measured.append(name)
    for name, value in ((exam_json or {}).get("qc") or {}).items():
        if isinstance(value, (bool, int, float, str)) or value is None:
            row[f"qc_{name}"] = value
    return row, measured


def _level_aggregates(vert: pd.DataFrame | None, roi: str, levels: str) -> dict[str, float]:
    """Per map the mean over ``levels`` of the per-level means (``<map>``) and ``n_levels``: the measurement
    layer's own aggregation (:func:`osteomri.vertebrae.measure.aggregate_levels`), one exam at a time."""
    if vert is None or vert.empty:
        return {}
    import warnings

    from osteomri.vertebrae.measure import aggregate_levels

    has_roi = "roi" in vert.columns and (vert["roi"] == roi).any()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fewer levels than asked for show in n_levels
        wide = aggregate_levels(vert, levels, roi if has_roi else None)  # raises on a malformed table
    if wide.empty:
        return {}
    row = wide.iloc[0]
    maps = sorted(vert["map"].dropna().astype(str).unique())
    out = {m: float(row[m]) for m in maps if m in row.index}
    if "n_levels" in row.index:
        out["n_levels"] = int(row["n_levels"])
    return out
