"""A synthetic image cohort whose marrow fat *and texture* depend on the T-score in a known way.

For patient ``i`` with DXA T-score ``t_i`` (drawn like the seed study, :func:`synthetic_clinical_cohort`):

- marrow PDFF (%) ``f_i = f0 + f1·t_i + N(0, sf²)`` (defaults 45 − 5·t, SD 6: fat rises as bone is lost);
- marrow texture: a Gaussian random field (unit SD inside the marrow, Gaussian correlation length
  ``corr_mm``) of amplitude ``a_i = a0 + a1·t_i + N(0, sa²)`` PDFF points (defaults 4 − 0.8·t, SD 0.6: a
  coarser, more heterogeneous marrow as trabeculae are lost) added to the PDFF map in every vertebra's marrow;
- measurement noise N(0, ``noise_percent``²) on the whole map (a fitted map's noise).

The outcome is osteoporosis (``t ≤ −2.5``, WHO 1994). Because each marker is linear in ``t`` with Gaussian
noise, the likelihood of ``t`` depends on the markers only through ``s = f1/sf²·f + a1/sa²·a`` (sign flipped so
that larger = more likely osteoporotic); by the monotone likelihood ratio, ``P(osteoporosis | f, a)`` is
monotone in ``s`` whatever the prior of ``t``. ``s`` is therefore the best score of the true marker values —
its AUC (column ``generating_score``) is the ceiling a model of image features can reach.

The geometry is the digital spine phantom (:func:`make_spine_phantom`), built once and shared; only the maps
differ per patient. Nothing here changes the defaults of the existing phantom or cohort generators.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter

from osteomri.errors import InputError
from osteomri.io.image import Image
from osteomri.phantom.cohort import synthetic_clinical_cohort
from osteomri.phantom.spine import TISSUES, make_spine_phantom

TEXTURE_MODEL = {"pdff_intercept": 45.0, "pdff_per_tscore": -5.0, "pdff_sd": 6.0, "texture_intercept": 4.0,
                 "texture_per_tscore": -0.8, "texture_sd": 0.6, "corr_mm": 4.0, "noise_percent": 1.0}


@dataclass
class TextureCohort:
    """``truth``: one row per patient (exam, t_score, who_group, osteoporosis, pdff_percent, texture_percent,
    generating_score); ``maps``: exam → {"pdff_percent": Image}; ``labels``: the shared vertebra label map
    (SPINEPS convention); ``model``: the generating parameters; ``marrow``: the marrow voxels (bool)."""

    truth: pd.DataFrame
    maps: dict[str, dict[str, Image]]
    labels: Image
    model: dict[str, float]
    marrow: np.ndarray


def texture_cohort(n_per_group: tuple[int, int, int] = (30, 41, 49), *, seed: int = 0,
                   shape: tuple[int, int, int] = (8, 96, 128),
                   voxel_size_mm: tuple[float, float, float] = (4.0, 2.2, 2.25),
                   **model: float) -> TextureCohort:
    """Draw the cohort (see the module docstring); ``model`` overrides :data:`TEXTURE_MODEL` entries."""
    unknown = sorted(set(model) - set(TEXTURE_MODEL))
    if unknown:
        raise InputError(f"unknown texture-model parameter(s) {unknown}; known: {sorted(TEXTURE_MODEL)}")
    m = {**TEXTURE_MODEL, **model}
    if m["pdff_sd"] <= 0 or m["texture_sd"] <= 0 or m["corr_mm"] <= 0:
        raise InputError("pdff_sd, texture_sd and corr_mm must be positive")
    clinical = synthetic_clinical_cohort(n_per_group, random_state=seed, readers=False)
    rng = np.random.default_rng([seed, 15])
    t = clinical["t_score"].to_numpy(float)
    n = t.size
    pdff = np.clip(m["pdff_intercept"] + m["pdff_per_tscore"] * t + rng.normal(0, m["pdff_sd"], n), 2.0, 95.0)
    amp = np.clip(m["texture_intercept"] + m["texture_per_tscore"] * t + rng.normal(0, m["texture_sd"], n), 0.05, None)
    score = -(m["pdff_per_tscore"] / m["pdff_sd"] ** 2 * pdff + m["texture_per_tscore"] / m["texture_sd"] ** 2 * amp)
    ph = make_spine_phantom(shape, voxel_size_mm, seed=seed)
    marrow = ph.tissues.data == TISSUES["marrow"]
    base = ph.maps["pdff_percent"].data
    sigma_vox = m["corr_mm"] / np.asarray(voxel_size_mm, float) / np.sqrt(2.0)
    maps: dict[str, dict[str, Image]] = {}
    for i, exam in enumerate(clinical["exam"]):
        field = gaussian_filter(rng.standard_normal(ph.shape), sigma_vox)
        field = (field - field[marrow].mean()) / field[marrow].std()
        data = base.copy()
        data[marrow] = pdff[i] + amp[i] * field[marrow]
        data = data + rng.normal(0.0, m["noise_percent"], data.shape)
        maps[exam] = {"pdff_percent": Image(data.astype(np.float32), ph.affine, {"Units": "percent"})}
    truth = pd.DataFrame({"exam": clinical["exam"], "t_score": t, "who_group": clinical["who_group"].astype(str),
                          "osteoporosis": (t <= -2.5).astype(int), "pdff_percent": pdff, "texture_percent": amp,
                          "generating_score": score})
    return TextureCohort(truth, maps, ph.levels, m, marrow)
