"""IVIM benchmark (issue 5): single-core fit speed, a 128x128x30 volume through the CLI, Monte-Carlo on marrow.

Usage::

    .venv/bin/python benchmarks/bench_ivim.py [--voxels 200000] [--json results.json] [--skip-cli]

Targets: on one core with 18 b-values, ``segmented`` >= 100,000 voxels/s and ``full`` >= 20,000 voxels/s;
a 128 x 128 x 30 volume end to end through ``osteomri ivim`` (a fresh process: import, read, fit, write)
in < 30 s. BLAS/OpenMP threads are pinned to 1 before NumPy is imported.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from osteomri.ivim import IvimModel, ivim_signal  # noqa: E402

B18 = np.array([0, 1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 250, 350, 400, 550, 700, 850, 1000.0])
MARROW = {"f": 0.145, "d_mm2_s": 0.43e-3, "dstar_mm2_s": 0.05}


def synthetic(n: int, snr: float = 50.0, seed: int = 1) -> np.ndarray:
    """``n`` marrow-like voxels (f 0.05-0.4, D 0.3-1.5e-3, D* 0.01-0.1 mm^2/s), S0 1000, Gaussian noise."""
    rng = np.random.default_rng(seed)
    f = rng.uniform(0.05, 0.4, n)
    d = rng.uniform(0.3e-3, 1.5e-3, n)
    ds = rng.uniform(0.01, 0.1, n)
    return 1000.0 * (ivim_signal(B18, 1.0, f, d, ds) + rng.normal(0, 1 / snr, (n, B18.size)))


def speed(method: str, n: int, repeats: int = 3) -> float:
    signal = synthetic(n)
    model = IvimModel(B18, method)
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        model.fit(signal)
        best = min(best, time.perf_counter() - t)
    return n / best


def monte_carlo(snr: float, n_real: int = 300, seed: int = 0) -> dict[str, dict[str, float]]:
    rng = np.random.default_rng(seed)
    clean = ivim_signal(B18, 1.0, MARROW["f"], MARROW["d_mm2_s"], MARROW["dstar_mm2_s"])
    signal = clean + rng.normal(0, 1 / snr, (n_real, B18.size))
    out = {}
    for method in ("full", "segmented", "bayesian"):
        fit = IvimModel(B18, method).fit(signal)
        row = {}
        for key, truth in MARROW.items():
            v = getattr(fit, key)
            row[f"{key}_bias"] = float(v.mean() - truth)
            row[f"{key}_sd"] = float(v.std())
        out[method] = row
    return out


def cli_volume(shape=(128, 128, 30)) -> dict[str, float]:
    from osteomri.io import Image, save_nifti

    n = int(np.prod(shape))
    data = synthetic(n).reshape(shape + (B18.size,)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        save_nifti(Image(data, np.diag([1.0, 1.0, 4.0, 1.0])), tmp / "vol_dwi.nii.gz")
        (tmp / "vol_dwi.bval").write_text(" ".join(f"{b:g}" for b in B18) + "\n")
        t_write = time.perf_counter() - t
        code = "import sys; from osteomri.cli.main import main; sys.exit(main(sys.argv[1:]))"
        result = {"voxels": n, "input_write_s": t_write}
        for method in ("segmented", "full"):
            cmd = [sys.executable, "-c", code, "ivim", str(tmp / "vol_dwi.nii.gz"), "--bvals",
                   str(tmp / "vol_dwi.bval"), "--out", str(tmp / f"out_{method}"), "--method", method]
            t = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
            elapsed = time.perf_counter() - t
            if proc.returncode != 0:
                raise RuntimeError(f"CLI failed: {proc.stderr[-2000:]}")
            result[f"{method}_s"] = elapsed
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voxels", type=int, default=200_000)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--skip-cli", action="store_true")
    args = parser.parse_args()

    res: dict = {"machine": platform.processor() or platform.machine(), "python": platform.python_version(),
                 "numpy": np.__version__, "n_b": int(B18.size)}
    for method, target in (("segmented", 100_000), ("full", 20_000)):
        vps = speed(method, args.voxels)
        res[f"{method}_voxels_per_s"] = vps
        print(f"{method:10s} {vps:12,.0f} voxels/s  (target >= {target:,})  {'OK' if vps >= target else 'MISS'}")
    vps = speed("bayesian", 2000, repeats=1)
    res["bayesian_voxels_per_s"] = vps
    print(f"{'bayesian':10s} {vps:12,.0f} voxels/s  (2,500-step chain per voxel; no target)")
    if not args.skip_cli:
        cli = cli_volume()
        res["cli_128x128x30"] = cli
        for method in ("segmented", "full"):
            s = cli[f"{method}_s"]
            print(f"CLI 128x128x30x18 {method:10s} {s:6.1f} s end to end (target < 30 s) {'OK' if s < 30 else 'MISS'}")
    for snr in (100, 30):
        mc = monte_carlo(snr)
        res[f"marrow_mc_snr{snr}"] = mc
        print(f"marrow Monte-Carlo, SNR {snr}, 300 realisations, seed 0 (bias / SD):")
        for method, row in mc.items():
            print(f"  {method:10s} f {row['f_bias']:+.4f} / {row['f_sd']:.4f}   "
                  f"D {row['d_mm2_s_bias'] * 1e3:+.4f}e-3 / {row['d_mm2_s_sd'] * 1e3:.4f}e-3   "
                  f"D* {row['dstar_mm2_s_bias']:+.4f} / {row['dstar_mm2_s_sd']:.4f}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
