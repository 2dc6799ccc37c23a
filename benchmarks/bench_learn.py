"""Benchmark: nested CV of a random forest on 1000 patients × 200 features (target < 2 min).

Run: ``.venv/bin/python benchmarks/bench_learn.py [--n 1000] [--p 200] [--model rf]``. Features are Gaussian,
the outcome follows a logistic model of 5 of them; prints the wall and CPU time of
:func:`osteomri.learn.nested_cv` (5 outer × 5 inner folds, 1 repeat, Platt calibration) and the AUC.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from osteomri.learn import nested_cv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--p", type=int, default=200)
    parser.add_argument("--model", default="rf")
    parser.add_argument("--n-jobs", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(args.n, args.p)), columns=[f"f{i}" for i in range(args.p)])
    score = X.iloc[:, :5].sum(axis=1) * 0.6
    y = (rng.random(args.n) < 1 / (1 + np.exp(-score))).astype(int)
    t0, c0 = time.perf_counter(), time.process_time()
    res = nested_cv(X, y, model=args.model, n_jobs=args.n_jobs)
    print(f"nested CV of {args.model} on {args.n} x {args.p} ({args.n_jobs} job(s)): "
          f"wall {time.perf_counter() - t0:.1f} s, "
          f"CPU {time.process_time() - c0:.1f} s; OOF AUC {res.auc:.3f} ({res.auc_ci_low:.3f}-{res.auc_ci_high:.3f})")


if __name__ == "__main__":
    main()
