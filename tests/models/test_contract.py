"""One contract for every registered model family (osteomri.models.registry): the same checks, one row each.

A new model (UTE, MRS, ...) adds one :class:`Case` to :data:`CASES`: how to build it directly and from an
:class:`Image`, and a small noise-free dataset with its fitted mask known.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from osteomri.io.image import Image
from osteomri.models.ivim import IvimModel, ivim_signal
from osteomri.models.registry import Fit, map_spec, registered_maps
from osteomri.models.ute import UteMtModel, UteT2starModel, UteVfaT1Model, two_pool_signal
from osteomri.models.waterfat import WaterFatModel, multiecho_signal

TE_S = 1.2e-3 + 1.0e-3 * np.arange(6)
B_S_MM2 = np.array([0, 10, 20, 50, 100, 200, 400, 600, 800.0])
AFFINE = np.diag([1.5, 1.5, 5.0, 1.0])


@dataclass(frozen=True)
class Case:
    family: str  # the registry's model family
    model_class: type
    build: Callable[[], Any]  # the model, built directly
    image: Callable[[], Image]  # the same acquisition as an Image (data + metadata)
    fit_kwargs: dict[str, Any]
    maps: tuple[str, ...] | None = None  # the maps of this configuration, when a family registers more


def _waterfat_image() -> Image:
    x = np.linspace(0, 1, 10)[:, None, None] * np.ones((10, 6, 2))
    body = np.ones(x.shape, bool)
    body[0] = False  # air: no signal -> not fitted -> NaN in every map
    s = multiecho_signal(body * (1 - x), body * x, 40.0, 30.0 * x, TE_S, 3.0)
    return Image(s.astype(np.complex64), AFFINE, {"EchoTime": TE_S.tolist(), "MagneticFieldStrength": 3.0,
                                                  "PrecessionIsClockwise": True})


def _ivim_image() -> Image:
    f = np.linspace(0.05, 0.3, 8)[:, None, None] * np.ones((8, 3, 2))
    s = ivim_signal(B_S_MM2, 500.0, f, 0.5e-3, 0.03)
    s[0, 0, 0] = 0.0  # no signal -> not fitted
    return Image(s.astype(np.float32), AFFINE, {"bvalues": B_S_MM2.tolist()})


UTE_TE_S = np.array([0.032, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.4, 1.8, 2.2, 2.8, 3.4, 4.4]) * 1e-3
MT = {"offsets_hz": np.tile([2000.0, 5000.0, 10000.0, 15000.0, 20000.0], 3).tolist(),
      "pulse_flip_deg": np.repeat([500.0, 1000.0, 1500.0], 5).tolist(), "pulse_duration_s": 8e-3, "tr_s": 0.1,
      "excitation_flip_deg": 10.0, "r1_water_hz": 8.9}
VFA_DEG, VFA_TR_S = [3.0, 8.0, 15.0, 25.0], 0.02


def _ute_image() -> Image:
    fs = np.linspace(0.6, 0.9, 8)[:, None, None] * np.ones((8, 3, 2))
    te = UTE_TE_S * 1e3
    s = fs[..., None] * np.exp(-te / 0.3) + (1 - fs[..., None]) * np.exp(-te / 3.0)
    s[0, 0, 0] = 0.0  # no signal -> not fitted
    return Image(s.astype(np.float32), AFFINE, {"EchoTime": UTE_TE_S.tolist(), "MagneticFieldStrength": 3.0})


def _ute_mt_image() -> Image:
    model = UteMtModel(**MT)
    f = np.linspace(0.3, 0.6, 6)
    s = two_pool_signal(model.offsets_hz, model.w2, 1.0, f, 9.5, 0.5e-3, 15e-6, 8.9).reshape(6, 1, 1, -1)
    s = np.repeat(s, 2, axis=1)
    s[0, 0, 0] = 0.0
    return Image(s.astype(np.float32), AFFINE, dict(MT))


def _vfa_image() -> Image:
    t1 = np.linspace(300.0, 1500.0, 6)[:, None, None] * np.ones((6, 2, 2))
    a, e = np.deg2rad(VFA_DEG), np.exp(-VFA_TR_S * 1e3 / t1)[..., None]
    s = 100 * np.sin(a) * (1 - e) / (1 - e * np.cos(a))
    s[0, 0, 0] = 0.0
    return Image(s.astype(np.float32), AFFINE, {"FlipAngle": VFA_DEG, "RepetitionTime": VFA_TR_S})


CASES = [
    Case("waterfat", WaterFatModel,
         lambda: WaterFatModel(TE_S, 3.0, precession_clockwise=True, voxel_size_mm=(1.5, 1.5, 5.0)),
         _waterfat_image, {}),
    Case("ivim", IvimModel, lambda: IvimModel(B_S_MM2, "full"), _ivim_image, {}),
    Case("ute", UteT2starModel, lambda: UteT2starModel(UTE_TE_S, field_strength_t=3.0), _ute_image, {},
         ("ute_s0", "t2star_short_ms", "t2star_long_ms", "fraction_short", "ute_residual")),
    Case("ute_mt", UteMtModel, lambda: UteMtModel(**MT), _ute_mt_image, {}),
    Case("ute_vfa", UteVfaT1Model, lambda: UteVfaT1Model(VFA_DEG, VFA_TR_S), _vfa_image, {}),
]


@pytest.fixture(scope="module", params=CASES, ids=lambda c: c.family)
def fitted(request):
    case = request.param
    image = case.image()
    model = case.build()
    return case, image, model, model.fit(image.data, **case.fit_kwargs)


def test_maps_are_the_registered_names_float32_nan_outside_the_mask(fitted):
    case, image, _, fit = fitted
    assert isinstance(fit, Fit)
    maps = fit.maps()
    assert set(maps) == set(case.maps or registered_maps(case.family))
    mask = np.asarray(fit.mask)
    assert mask.dtype == bool and mask.shape == image.spatial_shape
    assert 0 < mask.sum() < mask.size  # the no-signal voxel is not fitted
    for name, values in maps.items():
        spec = map_spec(name)
        assert values.dtype == np.float32 and values.shape == image.spatial_shape, name
        assert np.isnan(values[~mask]).all(), f"{name}: a value outside the fitted mask"
        inside = values[mask & np.isfinite(values)]
        lo, hi = spec.valid_range
        assert inside.size and inside.min() >= lo - 1e-6 and inside.max() <= hi + 1e-6, name
        assert spec.model == case.family and spec.units and spec.suffix, name
    assert isinstance(fit.qc, dict) and fit.qc.get("n_fitted_voxels") == int(mask.sum())


def test_parameters_are_json_and_rebuild_the_same_fit(fitted):
    case, image, model, fit = fitted
    params = json.loads(json.dumps(fit.parameters()))
    assert params == model.parameters()
    again = case.model_class(**params)
    assert again.parameters() == params
    refit = again.fit(image.data, **case.fit_kwargs).maps()
    for name, values in fit.maps().items():
        np.testing.assert_array_equal(refit[name], values, err_msg=name)


def test_from_image_is_the_direct_model(fitted):
    case, image, model, _ = fitted
    assert case.model_class.from_image(image).parameters() == model.parameters()


def test_predict_reproduces_noise_free_data(fitted):
    _, image, _, fit = fitted
    pred = fit.predict()
    mask = np.asarray(fit.mask)
    assert pred.shape == image.data.shape
    data = image.data[mask]
    err = np.abs(pred[mask] - data).max() / np.abs(data).max()
    assert err < 1e-3, err


def test_no_two_maps_share_a_file_name_and_names_carry_no_unit_clash():
    specs = registered_maps()
    assert len({s.suffix for s in specs.values()}) == len(specs)
    for name, spec in specs.items():  # a name ending in a unit states that unit
        for ending, unit in (("_percent", "%"), ("_hz", ("1/s", "Hz")), ("_mm2_s", "mm2/s"), ("_ms", "ms")):
            if name.endswith(ending):
                assert spec.units in (unit if isinstance(unit, tuple) else (unit,)), name
        assert not math.isnan(spec.valid_range[0])


def test_mrs_follows_the_same_contract():
    """MRS (an MRSI grid of multi-TE spectra; its acquisition comes as a Spectrum, not an Image): registered
    names, float32 NaN outside the fitted grid points, complete parameters, from_spectrum, predict."""
    from osteomri.io.spectrum import Spectrum
    from osteomri.models.mrs import MrsModel
    from osteomri.phantom.mrs import simulate_marrow_fids

    te = np.array([10.0, 20.0, 30.0]) * 1e-3
    model = MrsModel(te, 123.2, 2.5e-4, sequence="steam", mixing_time_s=0.01)
    fids, _ = simulate_marrow_fids(model, 1024, pdff_percent=np.array([10.0, 30.0, 50.0, 70.0]), ndb=2.8,
                                   water_t2_ms=30.0, fat_t2_ms=60.0, water_linewidth_hz=20.0, fat_linewidth_hz=20.0)
    grid = fids.reshape(2, 2, te.size, 1024)
    mask = np.array([[True, True], [True, False]])
    fit = model.fit(grid, mask=mask)
    maps = fit.maps()
    assert {k for k in maps if not k.endswith("_sd")} == set(registered_maps("mrs"))
    for name, values in maps.items():
        assert values.dtype == np.float32 and values.shape == (2, 2), name
        assert np.isnan(values[~mask]).all(), name
    assert fit.qc and np.asarray(fit.mask).shape == (2, 2)
    params = json.loads(json.dumps(fit.parameters()))
    assert MrsModel(**params).parameters() == model.parameters() == params
    spectrum = Spectrum(fids=grid, te_s=te, dwell_time_s=2.5e-4, spectrometer_mhz=123.2, sequence="steam",
                        mixing_time_s=0.01)
    assert MrsModel.from_spectrum(spectrum).parameters() == model.parameters()
    pred = fit.predict()
    err = np.abs(pred[mask] - grid[mask]).max() / np.abs(grid[mask]).max()
    assert err < 1e-3, err
