"""Run a UTE protocol on images and write maps (+ sidecars) and an optional per-vertebra table.

``run_ute(inputs, protocol, out)``: the images are loaded with :func:`~osteomri.io.load_image` (NIfTI,
DICOM, ...), several 3-D images are stacked in the given order as the measurement axis (they must share one
grid), the model of the protocol's ``kind`` is fitted (:mod:`osteomri.models.ute`), and every map is written
under its registered name, units and file suffix (:func:`osteomri.models.registry.map_spec`) with a provenance
block. Everything is computed and checked before the first file is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from osteomri.errors import InputError
from osteomri.io import load_image
from osteomri.io.image import Image
from osteomri.io.nifti import save_nifti
from osteomri.io.provenance import provenance, write_table_atomic
from osteomri.models.registry import map_spec
from osteomri.models.ute import (
    UteMtModel,
    UteT2starModel,
    UteVfaT1Model,
    load_protocol,
    porosity_index,
    suppression_ratio,
)


def stack_measurements(images: list[Image], names: list[str]) -> Image:
    """One image with the measurements on the last axis: a single 4-D image, or 3-D images stacked in order."""
    if len(images) == 1:
        return images[0]
    ref = images[0]
    for img, name in zip(images[1:], names[1:], strict=True):
        if img.spatial_shape != ref.spatial_shape or not np.allclose(img.affine, ref.affine, atol=1e-3):
            raise InputError(f"{name}: not on the grid of {names[0]} (shape {img.spatial_shape} vs "
                             f"{ref.spatial_shape}, or a different affine)")
        if img.data.ndim > 3 and img.data.shape[3:] != (1,):
            raise InputError(f"{name}: stacked inputs must be 3-D images (got shape {img.data.shape})")
    data = np.stack([np.asarray(i.data).reshape(ref.spatial_shape) for i in images], axis=-1)
    return ref.with_data(data)


def fit_protocol(image: Image, protocol: dict[str, Any], mask: np.ndarray | None = None,
                 extra: Image | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any], dict[str, Any], Any]:
    """Fit ``protocol`` to ``image``; returns (maps, model parameters, qc, the fit or None for image ratios)."""
    kind = protocol["kind"]
    data = np.asarray(image.data)
    if kind in ("porosity_index", "suppression_ratio"):
        if data.ndim != 4 or data.shape[-1] != 2:
            raise InputError(f"a {kind} needs two images (or one with 2 volumes), got shape {data.shape}")
        func = porosity_index if kind == "porosity_index" else suppression_ratio
        ratio = func(data[..., 0], data[..., 1], min_signal=protocol.get("min_signal"))
        return {kind: ratio}, {k: v for k, v in protocol.items() if k != "kind"}, {}, None
    if kind == "t2star":
        opts = {k: v for k, v in protocol.items() if k not in ("kind", "name", "description", "echo_times_s")}
        if opts.get("components", 2) == 3 and "field_strength_t" not in opts:
            opts["field_strength_t"] = image.meta.get("MagneticFieldStrength")
        model = UteT2starModel(protocol["echo_times_s"], **opts)
        fit = model.fit(data, mask)
        return {**fit.maps(), **fit.sd}, model.parameters(), fit.qc, fit
    if kind == "mt":
        model = UteMtModel.from_protocol(protocol)
        fit = model.fit(data, mask, m0=None if extra is None else np.abs(np.asarray(extra.data)))
        return {**fit.maps(), **fit.sd}, model.parameters(), fit.qc, fit
    if kind == "vfa":
        model = UteVfaT1Model(protocol["flip_deg"], protocol["tr_s"])
        fit = model.fit(data, mask)
        return fit.maps(), model.parameters(), fit.qc, fit
    raise InputError(f"unknown UTE protocol kind {kind!r}")


def protocol_for(image: Image, protocol: str | Path | dict[str, Any] | None, name: str) -> dict[str, Any]:
    """The checked protocol; without one, a bi-component T2* fit of the image's echo times."""
    if protocol is None:
        te = image.meta.get("EchoTime")
        if te is None or np.atleast_1d(te).size < 2:
            raise InputError(f"{name}: no UTE protocol given and no echo times in its sidecar")
        protocol = {"kind": "t2star", "echo_times_s": list(np.atleast_1d(te).astype(float))}
    return load_protocol(protocol)


#: UTE maps summarised per vertebra by the exam pipeline's measure stage
UTE_MEASURED_MAPS = ("fraction_short", "t2star_short_ms", "t2star_long_ms", "t2star_ms", "mmf_percent",
                     "t2_macromolecule_us", "porosity_index", "suppression_ratio")
_FIGURE_MAP = {"t2star": "fraction_short", "mt": "mmf_percent", "vfa": "t1_ms"}


def run_ute_stage(spec: Any, ctx: Any) -> str:
    """The exam pipeline's UTE stage: fit ``spec.ute`` with ``options["ute"]["protocol"]``, add the maps, and
    (with labels) a figure of each level's median voxel: data, fit and residual."""
    from osteomri.pipeline.model_stages import check_finite, store_maps

    img = ctx.input("ute")
    check_finite(img, "UTE")
    name = Path(spec.ute).name if isinstance(spec.ute, (str, Path)) else "UTE"
    proto = protocol_for(img, spec.options.get("ute", {}).get("protocol"), name)
    maps, parameters, qc, fit = fit_protocol(img, proto)
    store_maps(ctx, img, {k: v for k, v in maps.items() if not k.endswith("_sd")}, drop_meta=("EchoTime",))
    ctx.result.parameters["ute"] = parameters
    ctx.result.qc.update({f"ute_{k}": v for k, v in qc.items() if isinstance(v, (bool, int, float))})
    shown = _FIGURE_MAP.get(proto["kind"])
    if fit is not None and spec.labels is not None and shown in maps:
        figure = _median_voxel_figure(spec, ctx, img, fit, maps[shown], proto)
        if figure is not None:
            ctx.result.figures["ute_fit"] = figure
    return f"UTE {proto['kind']}: {int(qc.get('n_fitted_voxels', 0))} voxels"


def _median_voxel_figure(spec: Any, ctx: Any, img: Image, fit: Any, values: np.ndarray, proto: dict[str, Any]):
    """Each level's voxel (body ROI) whose ``values`` is the ROI median: its data, fit and residual."""
    from osteomri.report.figures_ute import ute_fit_figure
    from osteomri.vertebrae.measure import rois_for

    rois = rois_for(img.with_data(np.asarray(values)), ctx.input("labels"), spec.label_preset, "body")
    data, pred = np.abs(np.asarray(img.data, dtype=float)), np.asarray(fit.predict(), dtype=float)
    curves = {}
    for level in rois.levels:
        inside = rois.masks[level] & np.isfinite(values)
        if not inside.any():
            continue
        idx = np.argwhere(inside)
        vals = values[inside]
        pick = tuple(idx[int(np.argsort(vals)[len(vals) // 2])])
        curves[level] = (data[pick], pred[pick])
    if not curves:
        return None
    if proto["kind"] == "t2star":
        x, x_label = np.asarray(proto["echo_times_s"], dtype=float) * 1e3, "Echo time (ms)"
    else:
        x, x_label = np.arange(data.shape[-1]), "Measurement"
    return ute_fit_figure(x, curves, x_label=x_label, title=f"{spec.exam_id} UTE: median voxel of each level")


def run_ute(inputs: list[str | Path], protocol: str | Path | dict[str, Any] | None, out: str | Path, *,
            exam_id: str = "ute", labels: str | Path | None = None, preset: str = "spineps", roi: str = "body",
            m0: str | Path | None = None, command: str = "osteomri ute") -> dict[str, Path]:
    """Fit, then write ``out/<exam_id>_<suffix>.nii.gz`` per map, ``<exam_id>_ute_vertebrae.tsv`` with labels."""
    if not inputs:
        raise InputError("no UTE input given")
    paths = [Path(p) for p in inputs]
    images = [load_image(p) for p in paths]
    image = stack_measurements(images, [p.name for p in paths])
    proto = protocol_for(image, protocol, paths[0].name)
    extra = load_image(m0) if m0 is not None else None
    maps, parameters, qc, _ = fit_protocol(image, proto, extra=extra)
    table = None
    if labels is not None:
        from osteomri.vertebrae import measure_vertebrae

        label_img = load_image(labels)
        main = {k: image.with_data(v) for k, v in maps.items() if not k.endswith("_sd")}
        table = measure_vertebrae(main, label_img, preset, roi, exam=exam_id)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    hashed = [p for p in paths + [Path(x) for x in (m0, labels) if x is not None] if p.is_file()]
    prov = provenance(command, {"protocol": proto, "model": parameters, "qc": qc}, hashed)
    written: dict[str, Path] = {}
    for name, arr in maps.items():
        spec = map_spec(name)
        sidecar = {"Units": spec.units, "Description": spec.description, "Provenance": prov}
        written[name] = save_nifti(Image(np.asarray(arr, dtype=np.float32), image.affine), out /
                                   f"{exam_id}_{spec.suffix}.nii.gz", sidecar=sidecar)
    if table is not None:
        written["vertebrae"] = write_table_atomic(table, out / f"{exam_id}_ute_vertebrae.tsv", "%.6g")
    return written


