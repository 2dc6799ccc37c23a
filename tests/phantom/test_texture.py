"""The texture cohort: marrow fat and texture amplitude per patient are what the generating model says."""

from __future__ import annotations

import numpy as np
import pytest

from osteomri.errors import InputError
from osteomri.phantom.texture import TEXTURE_MODEL, texture_cohort


def test_maps_follow_the_generating_model():
    c = texture_cohort((3, 3, 3), seed=4)
    assert len(c.truth) == 9 and set(c.maps) == set(c.truth["exam"])
    for _, row in c.truth.iterrows():
        v = c.maps[row["exam"]]["pdff_percent"].data[c.marrow]
        assert v.mean() == pytest.approx(row["pdff_percent"], abs=0.1)  # the field has mean 0 over the marrow
        expected_sd = np.hypot(row["texture_percent"], TEXTURE_MODEL["noise_percent"])
        assert v.std() == pytest.approx(expected_sd, rel=0.2)
    # osteoporosis is T <= -2.5 and the generating score ranks with it
    t = c.truth
    assert (t["osteoporosis"] == (t["t_score"] <= -2.5)).all()
    assert t.loc[t["osteoporosis"] == 1, "generating_score"].mean() > t.loc[t["osteoporosis"] == 0,
                                                                           "generating_score"].mean()
    assert c.marrow.sum() > 1000 and (c.labels.data[c.marrow] > 0).all()


def test_bad_parameters():
    with pytest.raises(InputError, match="unknown texture-model"):
        texture_cohort((3, 3, 3), colour=1.0)
    with pytest.raises(InputError, match="positive"):
        texture_cohort((3, 3, 3), pdff_sd=0.0)
