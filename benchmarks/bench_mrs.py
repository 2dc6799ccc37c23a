"""Marrow MRS benchmark (issue 17): single-core fit speed and the Monte-Carlo table against known truth.

Usage::

    .venv/bin/python benchmarks/bench_mrs.py [--spectra 10000] [--n-mc 300] [--skip-mc] [--json out.json]

Targets: on one core, >= 1 000 five-echo spectra per second (1024 points, 3 T) and a 10 000-spectrum MRSI grid
(100 x 100) in < 20 s. Both wall-clock and process CPU time are printed (on a shared machine the CPU time is
the one-core figure). BLAS/OpenMP threads are pinned to 1 before NumPy is imported. The Monte-Carlo covers
3 T and 1.5 T x PDFF 5/20/50/90 % x SNR 20/50/100/200, seeds 1000 + condition index.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from osteomri.models.mrs import MrsModel  # noqa: E402
from osteomri.phantom.mrs import MC_DWELL_S, MC_N_POINTS, MC_TE_S, run_condition, simulate_marrow_fids  # noqa: E402

PDFFS, SNRS, FIELDS = (5, 20, 50, 90), (20, 50, 100, 200), ("3T", "1.5T")


def conditions():
    i = 0
    for field in FIELDS:
        for pdff in PDFFS:
            for snr in SNRS:
                yield field, pdff, snr, 1000 + i
                i += 1


def speed(n_spectra: int) -> dict:
    model = MrsModel(MC_TE_S, 127.74, MC_DWELL_S)
    rng = np.random.default_rng(0)
    n = n_spectra
    fids, _ = simulate_marrow_fids(
        model, MC_N_POINTS, pdff_percent=rng.uniform(5, 90, n), ndb=rng.uniform(2.5, 3.5, n),
        water_t2_ms=rng.uniform(10, 45, n), fat_t2_ms=rng.uniform(50, 70, n),
        water_linewidth_hz=rng.uniform(10, 40, n), fat_linewidth_hz=rng.uniform(10, 40, n),
        phase_rad=rng.uniform(-np.pi, np.pi, n), shift_hz=rng.uniform(-0.1, 0.1, n) * 127.74, snr=50, rng=rng)
    side = int(np.sqrt(n))
    grid = fids[: side * side].reshape(side, side, *fids.shape[1:])
    model.fit(grid[:2, :2])  # warm-up
    c0, t0 = time.process_time(), time.perf_counter()
    fit = model.fit(grid)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    return {"grid": list(grid.shape[:2]), "n_spectra": side * side, "cpu_s": cpu, "wall_s": wall,
            "spectra_per_cpu_s": side * side / cpu, "converged": fit.qc["n_converged"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spectra", type=int, default=10000)
    ap.add_argument("--n-mc", type=int, default=300)
    ap.add_argument("--skip-mc", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    out: dict = {"speed": speed(args.spectra)}
    s = out["speed"]
    print(f"MRSI grid {s['grid']}: {s['n_spectra']} spectra in {s['wall_s']:.1f} s wall, {s['cpu_s']:.1f} s CPU "
          f"({s['spectra_per_cpu_s']:.0f} spectra per CPU second); {s['converged']} converged")
    if not args.skip_mc:
        rows = []
        print("field pdff snr | PDFF bias  spread/CRB  sd/spread | T2w rel.bias rel.CRB spread/CRB sd/spread | "
              "ndb bias  RMSE  CRB  sd/spread  n")
        for field, pdff, snr, seed in conditions():
            r = run_condition(field, pdff, snr, args.n_mc, seed)
            rows.append(r)
            print(f"{field:4s} {pdff:4d} {snr:4d} | {r['pdff_bias']:+.3f} {r['pdff_spread'] / r['pdff_crb']:.2f} "
                  f"{r['pdff_sd'] / r['pdff_spread']:.2f} | {100 * r['water_t2_rel_bias']:+.2f}% "
                  f"{100 * r['water_t2_rel_crb']:.2f}% {r['water_t2_spread'] / r['water_t2_crb']:.2f} "
                  f"{r['water_t2_sd'] / r['water_t2_spread']:.2f} | {r['ndb_bias']:+.3f} {r['ndb_rmse']:.3f} "
                  f"{r['ndb_crb']:.3f} {r['ndb_sd'] / r['ndb_spread']:.2f} {r['ndb_n']}", flush=True)
        out["montecarlo"] = rows
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
