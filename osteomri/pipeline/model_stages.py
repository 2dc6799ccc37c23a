"""The model-fitting stages of the exam pipeline: water–fat separation and IVIM.

Each reads its input through the exam context, builds the model from the image (``Model.from_image``) with the
stage's options (``ExamSpec.options[stage]``), fits, and stores ``fit.maps()`` (registry names),
``fit.parameters()`` and ``fit.qc`` in the result. The single-purpose commands (``osteomri waterfat``,
``osteomri ivim``) run exactly these stages, so a map is the same file with the same sidecar from every entry
point.

Stage options beyond the model's own: water–fat ``magnitude`` (fit |data|), ``echo_times_s`` and
``field_strength_t`` (when the input lacks them), ``t1_correction`` as a dict of assumed T1s (TR and flip
angle from the image); IVIM ``mask`` (a path or Image on the DWI grid; default: voxels whose lowest-b signal
exceeds 5 % of its 99th percentile, so air is not fitted).
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from osteomri.errors import InputError, InputWarning, MetadataError
from osteomri.io.image import Image, same_grid
from osteomri.models.registry import map_spec

if TYPE_CHECKING:
    from osteomri.pipeline.spec import ExamSpec
    from osteomri.pipeline.stages import ExamContext


def signal_mask(reference: np.ndarray, fraction_of_p99: float = 0.05) -> np.ndarray:
    """Voxels whose reference (lowest-b) signal exceeds ``fraction_of_p99`` of its 99th percentile (not air)."""
    ref = np.abs(np.nan_to_num(np.asarray(reference, dtype=float)))
    if not (ref > 0).any():
        raise InputError("reference image has no signal (all zero or NaN)")
    return ref > fraction_of_p99 * np.percentile(ref[ref > 0], 99)


def check_finite(image: Image, what: str) -> None:
    if not np.isfinite(image.data).any():
        raise InputError(f"{what} has no finite values (NaN-only data)")


def store_maps(ctx: ExamContext, source: Image, maps: dict[str, np.ndarray], drop_meta: tuple[str, ...]) -> None:
    """Put a fit's maps (registry names) into the result on the grid of ``source``; acquisition keys that no
    longer describe the map (echo times, b-values) are dropped."""
    for key, arr in maps.items():
        image = source.with_data(np.asarray(arr), Units=map_spec(key).units)
        for name in drop_meta:
            image.meta.pop(name, None)
        ctx.result.maps[key] = image


def _input_name(spec: ExamSpec, name: str) -> str:
    value = getattr(spec, name)
    return os.path.basename(os.fspath(value)) if isinstance(value, (str, os.PathLike)) else name.upper()


def run_waterfat(spec: ExamSpec, ctx: ExamContext) -> str:
    from osteomri.models.waterfat import T1Correction, WaterFatModel

    img = ctx.input("megre")
    check_finite(img, "MEGRE")
    if img.data.ndim != 4:
        raise InputError(f"{_input_name(spec, 'megre')}: MEGRE must be 4-D (x, y, z, echo), got shape "
                         f"{img.data.shape}")
    opts = dict(spec.options.get("waterfat", {}))
    magnitude = bool(opts.pop("magnitude", False))
    meta = {"EchoTime": opts.pop("echo_times_s", None), "MagneticFieldStrength": opts.pop("field_strength_t", None)}
    img = img.with_data(img.data, **{k: v for k, v in meta.items() if v is not None})
    img.require("EchoTime", "MagneticFieldStrength")
    size = opts.pop("given_voxel_size_mm", None)
    if size is not None:  # a voxel size for an input without geometry (toolbox .mat)
        if not img.meta.get("VoxelSizeAssumed"):
            raise InputError(f"--voxel-size is for inputs without geometry; {_input_name(spec, 'megre')} records "
                             "its own")
        img = Image(img.data, np.diag([*map(float, size), 1.0]), {**img.meta, "VoxelSizeAssumed": False})
    t1 = opts.get("t1_correction")
    if isinstance(t1, dict) and "repetition_time_s" not in t1:
        if img.meta.get("RepetitionTime") is None or img.meta.get("FlipAngle") is None:
            raise MetadataError("T1 correction needs RepetitionTime and FlipAngle in the input metadata")
        opts["t1_correction"] = T1Correction(float(img.meta["RepetitionTime"]), float(img.meta["FlipAngle"]), **t1)
    model = WaterFatModel.from_image(img, **opts)
    fit = model.fit(np.abs(img.data) if magnitude else img.data)
    store_maps(ctx, img, fit.maps(), drop_meta=("EchoTime",))
    ctx.result.qc.update({f"waterfat_{k}": v for k, v in fit.qc.items()})
    ctx.result.parameters["waterfat"] = fit.parameters()
    swap = "water-fat swap suspected" if fit.swap_suspected else "no swap detected"
    notes = []
    if fit.qc.get("bipolar_detection", {}).get("detected") and "bipolar" in fit.qc:
        notes.append("bipolar-readout even-echo phase error detected in the data and corrected")
    if fit.qc.get("bipolar_error_uncorrected"):
        warnings.warn("the residual shows a bipolar-readout even-echo error that --monopolar left uncorrected "
                      "(rerun without --monopolar)", InputWarning, stacklevel=2)
    return "; ".join([f"{model.te_s.size} echoes at {model.field_strength_t:g} T, {int(fit.mask.sum())} voxels",
                      swap, *notes])


def run_ivim(spec: ExamSpec, ctx: ExamContext) -> str:
    from osteomri.models.ivim import IvimModel

    img = ctx.input("dwi")
    check_finite(img, "DWI")
    if img.data.ndim != 4:
        raise InputError(f"{_input_name(spec, 'dwi')}: expected a 4-D DWI (x, y, z, b), got shape {img.data.shape}")
    bvals = _bvalues(spec, img)
    opts = dict(spec.options.get("ivim", {}))
    mask_source = opts.pop("mask", None)
    if mask_source is None:
        mask = signal_mask(img.data[..., int(np.argmin(bvals))])
    else:
        mask = _mask_on_grid(mask_source, img)
    model = IvimModel(bvals, **opts)
    fit = model.fit(img.data, mask=mask)
    store_maps(ctx, img, fit.maps(), drop_meta=("bvalues",))
    ctx.result.parameters["ivim"] = fit.parameters()
    ctx.result.qc.update({f"ivim_{k}": v for k, v in fit.qc.items()})
    fitted = np.asarray(fit.mask, bool)
    if not fitted.any():
        return f"{len(bvals)} b-values, method {model.method}: no voxel could be fitted"
    return (f"{len(bvals)} b-values, method {model.method}: {int(fitted.sum())} voxels fitted, median f "
            f"{np.median(fit.f[fitted]):.3f}, D {np.median(fit.d_mm2_s[fitted]) * 1e3:.3f}e-3 mm2/s, "
            f"D* {np.median(fit.dstar_mm2_s[fitted]) * 1e3:.1f}e-3 mm2/s")


def _mask_on_grid(source: Any, image: Image) -> np.ndarray:
    from osteomri.io.loader import load_image

    m = load_image(source)
    data = m.data[..., 0] if m.data.ndim == 4 and m.data.shape[-1] == 1 else m.data
    name = os.path.basename(os.fspath(source)) if isinstance(source, (str, os.PathLike)) else "mask"
    if data.shape != image.spatial_shape or not same_grid(Image(data, m.affine), image):
        raise InputError(f"mask {name} (shape {m.data.shape}) is not on the DWI grid (shape {image.spatial_shape})")
    return np.asarray(data) > 0


def _bvalues(spec: ExamSpec, dwi: Image) -> np.ndarray:
    """b-values (s/mm^2): as given (numbers, .bval/.json file), else beside the DWI file or in its sidecar."""
    from osteomri.io.bvals import find_bvals, resolve_bvalues

    if spec.bvals is None and isinstance(spec.dwi, (str, os.PathLike)):
        b, source = find_bvals(spec.dwi, None, dwi.meta)
        if dwi.data.ndim >= 4 and dwi.data.shape[-1] != b.size:
            raise InputError(f"{b.size} b-values ({source}) for a DWI with {dwi.data.shape[-1]} volumes "
                             f"(shape {dwi.data.shape})")
        return b
    return resolve_bvalues(spec.bvals, dwi)
