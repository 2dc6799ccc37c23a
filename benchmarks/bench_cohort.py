"""Cohort benchmark (issue 6): throughput with 1 and 2 workers, peak memory per worker for 10 vs 100 exams.

Usage::

    .venv/bin/python benchmarks/bench_cohort.py [--n 20] [--modalities megre,t1w] [--memory-n 10 100]
                                                [--json results.json]

- Throughput: ``--n`` phantom exams (small grid) through :func:`run_cohort` on a fresh LocalCluster of 1,
  then 2 worker processes (1 thread each); exams per minute over the run (cluster start-up excluded,
  reported apart). Target: 2 workers >= 1.6x the throughput of 1 (needs 2 idle cores).
- Memory: ``--memory-n`` cohorts (vendor maps + T1w, cheap) on 2 workers; the peak resident memory of each
  worker process (``ru_maxrss``, reported by every task, so its growth exam by exam is seen). Target: 100
  exams use no more per worker than 10.

Other engineers share the machine: the load average (``os.getloadavg``) is printed with the figures.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from osteomri.pipeline.cohort import dask_client, run_cohort  # noqa: E402
from osteomri.pipeline.synth_cohort import write_synthetic_cohort  # noqa: E402


def throughput(dataset: Path, work: Path, workers: int) -> dict:
    t0 = time.perf_counter()
    with dask_client(None, workers) as client:  # the LocalCluster that `osteomri cohort run` starts
        client.wait_for_workers(workers)
        startup = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = run_cohort(dataset, work / f"out-w{workers}", client=client, report=True)
        seconds = time.perf_counter() - t0
    n = result.counts["total"]
    assert result.counts["done"] == n, result.counts
    return {"workers": workers, "exams": n, "seconds": round(seconds, 2), "startup_s": round(startup, 2),
            "exams_per_min": round(60.0 * n / seconds, 2),
            "median_s_per_exam": round(sorted(o.seconds for o in result.outcomes)[n // 2], 2),
            "load_after": [round(x, 2) for x in os.getloadavg()]}


def memory(work: Path, n: int, seed: int) -> dict:
    dataset = work / f"mem-{n}"
    write_synthetic_cohort(dataset, n, seed=seed, modalities=("vendor", "t1w"))
    trajectory: dict[int, list[float]] = {}  # worker pid -> peak RSS after each of its exams, in order

    def on_exam(outcome, counts) -> None:
        trajectory.setdefault(outcome.worker_pid, []).append(round(outcome.peak_rss_mb, 1))

    with dask_client(None, 2) as client:
        result = run_cohort(dataset, work / f"mem-out-{n}", client=client, report=True, progress=on_exam)
    assert result.counts["done"] == n, result.counts
    peaks = {pid: max(t) for pid, t in trajectory.items()}
    return {"exams": n, "peak_rss_mb_per_worker": sorted(peaks.values()), "max_peak_rss_mb": max(peaks.values()),
            "peak_after_5_exams_per_worker": sorted(t[min(4, len(t) - 1)] for t in trajectory.values()),
            "exams_per_worker": sorted(len(t) for t in trajectory.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="exams of the throughput runs (0: memory only)")
    parser.add_argument("--modalities", default="megre,t1w")
    parser.add_argument("--memory-n", type=int, nargs="*", default=[10, 100])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    report: dict = {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_before": [round(x, 2) for x in os.getloadavg()]}
    print(f"load average before: {report['load_before']} on {report['cpus']} CPUs", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench_cohort_") as tmp:
        work = Path(tmp)
        mods = tuple(m for m in args.modalities.split(",") if m)
        if args.n > 0:  # --n 0: memory only
            t0 = time.perf_counter()
            write_synthetic_cohort(work / "ds", args.n, seed=args.seed, modalities=mods)
            print(f"{args.n} exams ({', '.join(mods)}) written in {time.perf_counter() - t0:.1f} s", flush=True)
            runs = []
            for workers in (1, 2):
                runs.append(throughput(work / "ds", work, workers))
                print(json.dumps(runs[-1]), flush=True)
            report["throughput"] = runs
            report["speedup_2_vs_1"] = round(runs[1]["exams_per_min"] / runs[0]["exams_per_min"], 2)
            print(f"speed-up 2 vs 1 workers: {report['speedup_2_vs_1']}x (target >= 1.6x)", flush=True)
        report["memory"] = []
        for n in args.memory_n:
            report["memory"].append(memory(work, n, args.seed + n))
            print(json.dumps(report["memory"][-1]), flush=True)
        if len(report["memory"]) >= 2:
            small, large = report["memory"][0], report["memory"][-1]
            report["memory_ratio_large_vs_small"] = round(large["max_peak_rss_mb"] / small["max_peak_rss_mb"], 3)
            print(f"peak RSS per worker, {large['exams']} vs {small['exams']} exams: "
                  f"{report['memory_ratio_large_vs_small']}x", flush=True)
    report["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print(f"load average after: {report['load_after']}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
