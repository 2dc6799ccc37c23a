"""The map registry: unique names and suffixes, derived SD specs, the contract's map form."""

import numpy as np
import pytest

from osteomri.errors import OsteoMRIError
from osteomri.models.registry import MapSpec, finalise_maps, map_spec, register_maps


def test_register_is_idempotent_and_refuses_conflicts():
    spec = MapSpec("test_thing_ms", "ms", "a test map", "testthing", model="test")
    register_maps(spec)
    register_maps(spec)
    assert map_spec("test_thing_ms") is spec
    with pytest.raises(OsteoMRIError, match="registered twice"):
        register_maps(MapSpec("test_thing_ms", "s", "a test map", "testthing", model="test"))
    with pytest.raises(OsteoMRIError, match="suffix"):
        register_maps(MapSpec("test_other_ms", "ms", "another", "testthing", model="test"))


def test_sd_spec_is_derived():
    register_maps(MapSpec("test_rate_hz", "1/s", "a rate", "testrate", model="test"))
    sd = map_spec("test_rate_hz_sd")
    assert sd.units == "1/s" and sd.suffix == "desc-sd_testrate" and sd.valid_range[0] == 0
    with pytest.raises(KeyError):
        map_spec("no_such_map")
    register_maps(MapSpec("test_short_ms", "ms", "a short time", "desc-short_Testmap", model="test"))
    assert map_spec("test_short_ms_sd").suffix == "desc-shortsd_Testmap"  # one desc entity (BIDS)


def test_finalise_maps_float32_nan_outside_mask():
    mask = np.array([[True, False], [False, True]])
    out = finalise_maps({"a": np.arange(4.0).reshape(2, 2)}, mask)
    assert out["a"].dtype == np.float32
    assert np.isnan(out["a"][~mask]).all() and (out["a"][mask] == [0.0, 3.0]).all()


def test_lookups_do_not_depend_on_which_models_were_imported():
    import subprocess
    import sys

    code = ("from osteomri.models.registry import map_spec, registered_maps\n"
            "assert map_spec('r2star_hz').units == '1/s' and 'mmf_percent' in registered_maps()\n")
    subprocess.run([sys.executable, "-c", code], check=True)
