"""Input/output: the :class:`Image` object, NIfTI + JSON sidecars, DICOM series, toolbox ``.mat``, provenance."""

from osteomri.io.image import Image, same_grid
from osteomri.io.loader import load_image
from osteomri.io.nifti import load_complex_pair, load_nifti, save_nifti, sidecar_path
from osteomri.io.provenance import provenance, sha256_file

__all__ = [
    "Image",
    "same_grid",
    "load_image",
    "load_nifti",
    "load_complex_pair",
    "save_nifti",
    "sidecar_path",
    "provenance",
    "sha256_file",
]
