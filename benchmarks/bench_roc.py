"""Benchmark: one ROC analysis with DeLong CI on 1,000,000 observations (target < 2 s).

Run: ``.venv/bin/python benchmarks/bench_roc.py [--n 1000000] [--repeat 3]``. Prints the best wall time of
``roc_analysis`` (AUC, DeLong variance and CI, full curve, Youden cut-off, Clopper–Pearson CIs) and of the
paired DeLong test of two markers, and checks the AUC against scikit-learn.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from osteomri.stats import delong_test, roc_analysis


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    y = rng.random(args.n) < 0.3
    a = rng.normal(0.0, 1.0, args.n) + 0.8 * y
    b = rng.normal(0.0, 1.0, args.n) + 0.5 * y + 0.3 * a

    def best(fn):
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
        return min(times), out

    t_roc, r = best(lambda: roc_analysis(y, a))
    t_test, t = best(lambda: delong_test(y, a, b))
    print(f"n = {args.n:,}  ({int(y.sum()):,} cases)")
    print(f"roc_analysis with DeLong CI: {t_roc:.3f} s  (AUC {r.auc:.6f}, CI {r.auc_ci_low:.6f}-{r.auc_ci_high:.6f}, "
          f"{len(r.curve):,} thresholds)")
    print(f"paired DeLong test:          {t_test:.3f} s  (z = {t.z:.3f})")
    try:
        from sklearn.metrics import roc_auc_score

        t0 = time.perf_counter()
        ref = roc_auc_score(y, a)
        print(f"sklearn roc_auc_score:       {time.perf_counter() - t0:.3f} s  (|dAUC| = {abs(ref - r.auc):.2e})")
    except ImportError:  # pragma: no cover
        pass
    print("target < 2 s:", "PASS" if t_roc < 2.0 else "FAIL")


if __name__ == "__main__":
    main()
