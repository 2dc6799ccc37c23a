"""Input/output: the :class:`Image` object, NIfTI + JSON sidecars, DICOM series, toolbox ``.mat``, provenance."""

from osteomri.io.dicom import list_dicom_series, load_dicom_series
from osteomri.io.dicom_vendor import load_vendor_map
from osteomri.io.image import Image, same_grid
from osteomri.io.loader import load_image
from osteomri.io.nifti import load_complex_pair, load_nifti, save_nifti, sidecar_path
from osteomri.io.provenance import provenance, sha256_file

__all__ = [
    "Image",
    "same_grid",
    "load_image",
    "load_dicom_series",
    "list_dicom_series",
    "load_vendor_map",
    "load_nifti",
    "load_complex_pair",
    "save_nifti",
    "sidecar_path",
    "provenance",
    "sha256_file",
]
