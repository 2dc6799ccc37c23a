"""Compare PyRadiomics (pyradiomics-bhklab) and MIRP on the IBSI-1 digital phantom (run by hand).

    OSTEOMRI_SHARED_DATA=../shared/data python benchmarks/ibsi_library_comparison.py

Prints, per library, how many IBSI digital-phantom reference values (3-D and first-order/morphology
features) it computes, how many match within tolerance (IBSI rule: |value - ref| <= tol, or equal after
rounding to 3 significant digits), the failures, and the wall time. MIRP is optional (``pip install mirp``);
its result feeds ``docs/radiomics.md``.
"""

from __future__ import annotations

import os
import re
import time
import warnings
from pathlib import Path

from osteomri.io import load_image
from osteomri.radiomics import extract_features
from osteomri.radiomics.ibsi import ALIASES, load_reference, matches_reference

ROOT = Path(os.environ.get("OSTEOMRI_SHARED_DATA", "../shared/data")) / "ibsi"
IMAGE = ROOT / "ibsi_1_digital_phantom/nifti/image/phantom.nii.gz"
MASK = ROOT / "ibsi_1_digital_phantom/nifti/mask/mask.nii.gz"
REF = load_reference(ROOT / "reference_values/ibsi_1_reference_values_digital_phantom.csv")


def in_scope(tag: str) -> bool:
    """3-D and non-texture features (the scope osteomri uses)."""
    return not re.search(r"_(2D|2_5D)(_|$)", tag)


def pyradiomics_values() -> dict[str, float]:
    table = extract_features(load_image(IMAGE), load_image(MASK), settings="ibsi_digital_phantom")
    out = {}
    for tag, value in zip(table["ibsi_tag"], table["value"], strict=True):
        if tag:
            out[tag] = value
            for stem, aliases in ALIASES.items():
                if tag.startswith(stem + "_3D") or tag == stem:
                    out.update({a + tag[len(stem):]: value for a in aliases})
    return out


def mirp_values() -> dict[str, float]:
    from mirp import extract_features as mirp_extract

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = mirp_extract(
            write_features=False, export_features=True, image=str(IMAGE), mask=str(MASK),
            base_discretisation_method="none", ibsi_compliant=True,
            glcm_spatial_method=["3d_average", "3d_volume_merge"],
            glrlm_spatial_method=["3d_average", "3d_volume_merge"], glszm_spatial_method="3d",
            gldzm_spatial_method="3d", ngtdm_spatial_method="3d", ngldm_spatial_method="3d",
            ivh_discretisation_method="none")[0]
    out = {}
    for col in table.columns:
        tag = col.replace("_d1", "").replace("_a0.0", "").replace("_v_mrg", "_comb").replace("_3d", "_3D")
        if tag in REF:
            out[tag] = float(table[col].iloc[0])
    return out


def report(name: str, values: dict[str, float], seconds: float) -> None:
    scope = {t: v for t, v in REF.items() if in_scope(t)}
    common = [t for t in scope if t in values]
    fails = [t for t in common if not matches_reference(values[t], *scope[t])]
    print(f"{name}: {len(common)} of {len(scope)} 3-D reference values computed, {len(common) - len(fails)} match, "
          f"{len(fails)} outside tolerance; {seconds:.2f} s")
    for t in fails:
        print(f"   {t}: {values[t]:.5g} vs {scope[t][0]:.5g} ± {scope[t][1]:g}")


if __name__ == "__main__":
    t0 = time.perf_counter()
    report("pyradiomics-bhklab", pyradiomics_values(), time.perf_counter() - t0)
    try:
        t0 = time.perf_counter()
        values = mirp_values()
        report("mirp", values, time.perf_counter() - t0)
    except ImportError:
        print("mirp: not installed")
