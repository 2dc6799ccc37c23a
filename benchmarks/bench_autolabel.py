"""Benchmark of automatic vertebra labelling: time and peak memory per volume, level accuracy and body Dice.

Run by hand (one CPU core):
    OMP_NUM_THREADS=1 OSTEOMRI_SHARED_DATA=../shared/data python benchmarks/bench_autolabel.py
Each case runs in a fresh process so the peak resident memory (ru_maxrss) is the case's own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
import numpy as np
from osteomri.io import load_image
from osteomri.errors import InputError
from osteomri.vertebrae.autolabel import AmbiguousLevelsError, label_vertebrae
img, lab, contrast = sys.argv[1], sys.argv[2], sys.argv[3]
image = load_image(img); truth = np.asarray(load_image(lab).data)
t = time.perf_counter()
try:
    pred = np.asarray(label_vertebrae(image, contrast=contrast).data); flagged = False
except AmbiguousLevelsError:
    pred = None; flagged = True
except InputError as exc:
    pred = None; flagged = "error: " + str(exc)
sec = time.perf_counter() - t
right, dice = 0, {}
if pred is not None:
    for i, code in enumerate(range(20, 25), start=1):
        m = truth == code
        v, c = np.unique(pred[m], return_counts=True)
        right += int(v[np.argmax(c)] == code)
        p = pred == code
        dice[f"L{i}"] = round(2 * float((m & p).sum()) / float(m.sum() + p.sum()), 3)
print(json.dumps({"seconds": round(sec, 2), "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "flagged": flagged, "right_levels": right, "dice": dice}))
"""


def main() -> None:
    root = Path(os.environ.get("OSTEOMRI_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    folder = root / "spine" / "lumbar_labelled"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    for img in sorted(folder.glob("*_image.nii.gz")):
        name = img.name.replace("_image.nii.gz", "")
        contrast = "water" if name.startswith("vb3") else "t2w"
        out = subprocess.run([sys.executable, "-c", CHILD, str(img), str(folder / f"{name}_labels.nii.gz"),
                              contrast], capture_output=True, text=True, env=env, check=True)
        print(name, json.loads(out.stdout.strip().splitlines()[-1]), flush=True)


if __name__ == "__main__":
    main()
