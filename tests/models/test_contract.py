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


CASES = [
    Case("waterfat", WaterFatModel,
         lambda: WaterFatModel(TE_S, 3.0, precession_clockwise=True, voxel_size_mm=(1.5, 1.5, 5.0)),
         _waterfat_image, {}),
    Case("ivim", IvimModel, lambda: IvimModel(B_S_MM2, "full"), _ivim_image, {}),
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
    assert set(maps) == set(registered_maps(case.family))
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
