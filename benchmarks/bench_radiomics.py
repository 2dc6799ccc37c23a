"""Benchmark: radiomics of 5 vertebrae × 4 maps of one exam (target < 2 s per exam).

Run: ``.venv/bin/python benchmarks/bench_radiomics.py [--roi body|paper] [--repeat 3] [--full]``. Builds the
digital spine phantom (default grid 16 × 128 × 160 of 3.0 × 1.6 × 1.8 mm; ``--small`` the cohort grid), adds
noise to four maps (PDFF, R2*, T1w, PD) and times :func:`osteomri.radiomics.vertebrae.vertebra_features`
(ROI placement + shape once per level + all texture families per map, fixed bin number 32). Prints the best
wall time and the CPU time of the process.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from osteomri.io.image import Image
from osteomri.phantom import make_spine_phantom
from osteomri.radiomics.vertebrae import vertebra_features


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--roi", default="body")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--small", action="store_true")
    args = parser.parse_args()
    kw = {"shape": (8, 96, 128), "voxel_size_mm": (4.0, 2.2, 2.25)} if args.small else {}
    ph = make_spine_phantom(**kw, heterogeneity_percent=5.0)
    rng = np.random.default_rng(0)
    maps = {k: Image(ph.maps[k].data + rng.normal(0, 0.02 * np.nanmax(ph.maps[k].data), ph.shape), ph.affine)
            for k in ("pdff_percent", "r2star_hz", "t1w_signal", "pd")}
    vertebra_features(maps, ph.levels, "spineps", roi=args.roi)  # warm-up (imports)
    wall, cpu = [], []
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        table = vertebra_features(maps, ph.levels, "spineps", roi=args.roi)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    n_vox = table[(table["map"] == "mask") & (table["ibsi_tag"] == "morph_vol_approx")]
    print(f"{table['level'].nunique()} vertebrae x {len(maps)} maps, {args.roi} ROI "
          f"({len(table)} values; grid {ph.shape}; ROI volume {n_vox['value'].mean():.0f} mm3): "
          f"best wall {min(wall):.2f} s, CPU {min(cpu):.2f} s per exam")


if __name__ == "__main__":
    main()
