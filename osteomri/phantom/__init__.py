"""Digital lumbar-spine phantom and synthetic data: the test bed and the demo data of osteomri."""

from osteomri.phantom.cohort import synthetic_clinical_cohort
from osteomri.phantom.spine import (
    LEVEL_IDS,
    LUMBAR_LEVELS,
    TISSUES,
    SpinePhantom,
    draw_level_truth,
    make_spine_phantom,
)
from osteomri.phantom.synthesis import (
    SEED_PROTOCOL_TE_S,
    smooth_fieldmap_hz,
    synthesize_dwi,
    synthesize_megre,
    synthesize_t1w,
)

__all__ = [
    "LEVEL_IDS",
    "LUMBAR_LEVELS",
    "TISSUES",
    "SpinePhantom",
    "draw_level_truth",
    "make_spine_phantom",
    "SEED_PROTOCOL_TE_S",
    "smooth_fieldmap_hz",
    "synthesize_megre",
    "synthesize_t1w",
    "synthesize_dwi",
    "synthetic_clinical_cohort",
]
