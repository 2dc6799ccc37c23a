"""Write small synthetic DICOM MR series for tests (classic single-frame and enhanced multi-frame).

The factory knows the truth (geometry, echo times, stored values), so tests compute their expectations from
it independently of the reader under test. Tests in ``tests/io`` import it as ``dicom_factory`` (pytest puts a
test file's folder on ``sys.path``); tests elsewhere can load it by path, e.g.
``importlib.util.spec_from_file_location("dicom_factory", REPO_ROOT / "tests/io/dicom_factory.py")``.

Volumes are given as ``{component: stored_values}`` with component codes ``"M"`` (magnitude), ``"P"``
(phase), ``"R"`` (real), ``"I"`` (imaginary) or ``""`` (plain image), each of shape (x, y, slices, echoes):
axis 0 runs along the DICOM row direction (columns of the pixel matrix), axis 1 along the column direction
(rows of the pixel matrix). Stored values must be integers within the 16-bit range chosen by ``signed``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
ENHANCED_MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4.1"
_ENHANCED_NAMES = {"M": "MAGNITUDE", "P": "PHASE", "R": "REAL", "I": "IMAGINARY", "": "MAGNITUDE"}


@dataclass
class Geometry:
    """Slice stack geometry in DICOM patient coordinates (LPS, mm)."""

    origin_lps: Sequence[float] = (-20.0, 35.0, 12.5)  # centre of voxel (0, 0, 0)
    row_dir: Sequence[float] = (1.0, 0.0, 0.0)  # direction of increasing column index (array axis 0)
    col_dir: Sequence[float] = (0.0, 1.0, 0.0)  # direction of increasing row index (array axis 1)
    pixel_spacing: Sequence[float] = (0.8, 1.1)  # DICOM PixelSpacing: (between rows, between columns)
    slice_spacing: float = 3.0

    @property
    def normal(self) -> np.ndarray:
        n = np.cross(np.asarray(self.row_dir, float), np.asarray(self.col_dir, float))
        return n / np.linalg.norm(n)

    def position(self, k: int) -> np.ndarray:
        """ImagePositionPatient of slice ``k``."""
        return np.asarray(self.origin_lps, float) + k * self.slice_spacing * self.normal

    def orientation(self) -> list[float]:
        return [*map(float, self.row_dir), *map(float, self.col_dir)]


def oblique_geometry(angle_deg: float = 20.0, **kw) -> Geometry:
    """A sagittal-oblique stack: rows along anterior-posterior tilted by ``angle_deg`` about L-R."""
    a = np.deg2rad(angle_deg)
    row = (0.0, np.cos(a), np.sin(a))
    col = (0.0, np.sin(a), -np.cos(a))
    return Geometry(row_dir=row, col_dir=col, **kw)


def _base_dataset(sop_class: str, series_uid: str, study_uid: str, frame_uid: str, manufacturer: str,
                  description: str, rows: int, cols: int, signed: bool, field_strength: float) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = frame_uid
    ds.Modality = "MR"
    ds.Manufacturer = manufacturer
    ds.SeriesDescription = description
    ds.SeriesNumber = 7
    ds.PatientName = "Synthetic^Phantom"
    ds.PatientID = "SYNTH-001"
    ds.PatientBirthDate = "19700101"
    ds.InstitutionName = "Nowhere Hospital"
    ds.MagneticFieldStrength = field_strength
    ds.ImagingFrequency = 42.577478 * field_strength
    ds.Rows = rows
    ds.Columns = cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1 if signed else 0
    return ds


def _to_pixels(arr2d: np.ndarray, signed: bool) -> bytes:
    dtype = np.int16 if signed else np.uint16
    info = np.iinfo(dtype)
    a = np.asarray(arr2d)
    if a.min() < info.min or a.max() > info.max or not np.all(np.round(a) == a):
        raise ValueError(f"stored values must be integers within {dtype.__name__} range")
    return np.ascontiguousarray(a.astype(dtype)).tobytes()


@dataclass
class SeriesSpec:
    """Common options of a synthetic series."""

    echo_times_ms: Sequence[float] | None = None
    manufacturer: str = "SIEMENS"
    description: str = "synthetic multi-echo GRE"
    series_uid: str = field(default_factory=generate_uid)
    slope: float | dict[str, float] = 1.0
    intercept: float | dict[str, float] = 0.0
    signed: bool = False
    field_strength: float = 3.0
    repetition_time_ms: float = 12.0
    flip_angle_deg: float = 5.0
    image_type: dict[str, list[str]] | None = None  # per component; default ORIGINAL\PRIMARY\<code>\ND
    ge_private: bool = False  # write GE (0043,102F) component codes and a GE-style ImageType
    write_echo_time: bool = True
    seed: int = 0
    study_uid: str | None = None  # None: a new study per series
    frame_uid: str | None = None  # None: a new frame of reference per series


def _per(value: float | dict[str, float], comp: str, default: float) -> float:
    return value.get(comp, default) if isinstance(value, dict) else value


def write_classic_series(
    folder: str | Path,
    volumes: dict[str, np.ndarray],
    geometry: Geometry | None = None,
    spec: SeriesSpec | None = None,
    edit: Callable[[Dataset, str, int, int], None] | None = None,
) -> list[Path]:
    """One single-frame MR Image Storage file per (component, slice, echo), under random file names.

    ``edit(ds, component, slice, echo)`` may alter each dataset before it is written (to build bad inputs).
    """
    geometry = geometry or Geometry()
    spec = spec or SeriesSpec()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    study_uid, frame_uid = spec.study_uid or generate_uid(), spec.frame_uid or generate_uid()
    paths: list[Path] = []
    jobs = []
    for comp, vol in volumes.items():
        vol = np.asarray(vol)
        if vol.ndim == 3:
            vol = vol[..., None]
        for k in range(vol.shape[2]):
            for e in range(vol.shape[3]):
                jobs.append((comp, vol, k, e))
    numbers = rng.permutation(len(jobs)) + 1
    for (comp, vol, k, e), inst in zip(jobs, numbers, strict=True):
        nx, ny = vol.shape[:2]
        ds = _base_dataset(MR_IMAGE_STORAGE, spec.series_uid, study_uid, frame_uid, spec.manufacturer,
                           spec.description, ny, nx, spec.signed, spec.field_strength)
        if spec.image_type and comp in spec.image_type:
            ds.ImageType = spec.image_type[comp]
        elif spec.ge_private:
            ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
        else:
            ds.ImageType = ["ORIGINAL", "PRIMARY", comp or "OTHER", "ND"]
        if spec.ge_private:
            block = ds.private_block(0x0043, "GEMS_PARM_01", create=True)
            block.add_new(0x2F, "SS", {"M": 0, "P": 1, "R": 2, "I": 3, "": 0}[comp])
        ds.InstanceNumber = int(inst)
        ds.ImagePositionPatient = [f"{v:.6f}" for v in geometry.position(k)]
        ds.ImageOrientationPatient = [f"{v:.8f}" for v in geometry.orientation()]
        ds.PixelSpacing = [f"{v:.6f}" for v in geometry.pixel_spacing]
        ds.SliceThickness = geometry.slice_spacing
        ds.RepetitionTime = spec.repetition_time_ms
        ds.FlipAngle = spec.flip_angle_deg
        ds.ScanningSequence = "GR"
        ds.MRAcquisitionType = "3D"
        if spec.echo_times_ms is not None:
            ds.EchoNumbers = e + 1
            if spec.write_echo_time:
                ds.EchoTime = f"{spec.echo_times_ms[e]:.6f}"
        ds.RescaleSlope = _per(spec.slope, comp, 1.0)
        ds.RescaleIntercept = _per(spec.intercept, comp, 0.0)
        ds.PixelData = _to_pixels(vol[:, :, k, e].T, spec.signed)
        if edit is not None:
            edit(ds, comp, k, e)
        path = folder / f"{generate_uid(prefix=None)[-20:]}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def write_enhanced_series(
    path: str | Path,
    volumes: dict[str, np.ndarray],
    geometry: Geometry | None = None,
    spec: SeriesSpec | None = None,
    frame_slopes: np.ndarray | None = None,
) -> Path:
    """One Enhanced MR Image Storage file holding every frame, in shuffled order.

    Component keys other than M/P/R/I (e.g. "W", "F", "FF") are magnitude frames; ``spec.image_type[key]``
    sets their ``FrameType`` (e.g. ``ORIGINAL\\PRIMARY\\DIXON\\FAT_FRACTION``).

    Geometry goes to the shared functional groups (orientation, pixel measures) and the per-frame groups
    (plane position), echo time to per-frame ``MREchoSequence``, component to per-frame
    ``MRImageFrameTypeSequence.ComplexImageComponent``, rescale to per-frame
    ``PixelValueTransformationSequence`` (``frame_slopes`` [n_frames], in write order before shuffling,
    overrides ``spec.slope``).
    """
    geometry = geometry or Geometry()
    spec = spec or SeriesSpec()
    rng = np.random.default_rng(spec.seed)
    jobs = []
    for comp, vol in volumes.items():
        vol = np.asarray(vol)
        if vol.ndim == 3:
            vol = vol[..., None]
        for k in range(vol.shape[2]):
            for e in range(vol.shape[3]):
                jobs.append((comp, vol, k, e, len(jobs)))
    order = rng.permutation(len(jobs))
    nx, ny = jobs[0][1].shape[:2]
    ds = _base_dataset(ENHANCED_MR_IMAGE_STORAGE, spec.series_uid, generate_uid(), generate_uid(),
                       spec.manufacturer, spec.description, ny, nx, spec.signed, spec.field_strength)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "T2_STAR", "NONE"] if not spec.image_type else ["DERIVED", "PRIMARY"]
    ds.NumberOfFrames = len(jobs)
    shared = Dataset()
    pm = Dataset()
    pm.PixelSpacing = [float(v) for v in geometry.pixel_spacing]
    pm.SliceThickness = geometry.slice_spacing
    shared.PixelMeasuresSequence = DicomSequence([pm])
    po = Dataset()
    po.ImageOrientationPatient = geometry.orientation()
    shared.PlaneOrientationSequence = DicomSequence([po])
    timing = Dataset()
    timing.RepetitionTime = spec.repetition_time_ms
    timing.FlipAngle = spec.flip_angle_deg
    shared.MRTimingAndRelatedParametersSequence = DicomSequence([timing])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    per_frame = []
    pixels = []
    for j in order:
        comp, vol, k, e, n = jobs[j]
        item = Dataset()
        pp = Dataset()
        pp.ImagePositionPatient = [float(v) for v in geometry.position(k)]
        item.PlanePositionSequence = DicomSequence([pp])
        if spec.echo_times_ms is not None:
            echo = Dataset()
            echo.EffectiveEchoTime = float(spec.echo_times_ms[e])
            item.MREchoSequence = DicomSequence([echo])
        ft = Dataset()
        ft.FrameType = (spec.image_type or {}).get(comp, ["ORIGINAL", "PRIMARY", "T2_STAR", "NONE"])
        ft.ComplexImageComponent = _ENHANCED_NAMES.get(comp, "MAGNITUDE")
        item.MRImageFrameTypeSequence = DicomSequence([ft])
        pvt = Dataset()
        pvt.RescaleSlope = float(frame_slopes[n]) if frame_slopes is not None else _per(spec.slope, comp, 1.0)
        pvt.RescaleIntercept = _per(spec.intercept, comp, 0.0)
        pvt.RescaleType = "US"
        item.PixelValueTransformationSequence = DicomSequence([pvt])
        per_frame.append(item)
        pixels.append(_to_pixels(vol[:, :, k, e].T, spec.signed))
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)
    ds.PixelData = b"".join(pixels)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def expected_affine_ras(geometry: Geometry) -> np.ndarray:
    """The voxel -> RAS+ mm affine a correct reader must return for ``geometry`` (computed from the truth)."""
    lps = np.eye(4)
    lps[:3, 0] = np.asarray(geometry.row_dir, float) * geometry.pixel_spacing[1]
    lps[:3, 1] = np.asarray(geometry.col_dir, float) * geometry.pixel_spacing[0]
    lps[:3, 2] = geometry.normal * geometry.slice_spacing
    lps[:3, 3] = geometry.origin_lps
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def multi_echo_signal(shape: tuple[int, int, int], echo_times_s: Sequence[float], seed: int = 0) -> np.ndarray:
    """A known complex multi-echo signal [x, y, z, echoes]: amplitude, R2* decay and off-resonance per voxel."""
    rng = np.random.default_rng(seed)
    te = np.asarray(echo_times_s, float)
    amp = rng.uniform(200, 1000, shape)
    r2s = rng.uniform(20, 120, shape)
    df = rng.uniform(-150, 150, shape)
    phi0 = rng.uniform(-np.pi, np.pi, shape)
    return (amp[..., None] * np.exp(-r2s[..., None] * te) *
            np.exp(1j * (phi0[..., None] + 2 * np.pi * df[..., None] * te)))


def geometry_from_affine(affine_ras: np.ndarray) -> Geometry:
    """The slice stack whose voxel -> RAS+ affine is ``affine_ras`` (slice normal along the third column)."""
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.asarray(affine_ras, float)
    size = np.linalg.norm(lps[:3, :3], axis=0)
    geo = Geometry(origin_lps=tuple(lps[:3, 3]), row_dir=tuple(lps[:3, 0] / size[0]),
                   col_dir=tuple(lps[:3, 1] / size[1]), pixel_spacing=(size[1], size[0]), slice_spacing=size[2])
    if np.dot(geo.normal, lps[:3, 2]) <= 0:
        raise ValueError("left-handed voxel axes: permute or flip the volume before writing it as DICOM")
    return geo


def write_image_series(folder: str | Path, data: np.ndarray, affine_ras: np.ndarray, spec: SeriesSpec,
                       edit: Callable[[Dataset, str, int, int], None] | None = None) -> tuple[list[Path], float]:
    """An image (x, y, z[, echoes]) as a classic series: complex data as GE-style magnitude + phase
    (milliradians), real data as magnitude; magnitudes scaled to int16. Returns the files and the magnitude
    scale (stored = value x scale)."""
    data = np.asarray(data)
    mag = np.abs(data)
    scale = 30000.0 / float(mag.max())
    vols = {"M": np.rint(mag * scale)}
    if np.iscomplexobj(data):
        vols["P"] = np.rint(np.angle(data) * 1000.0)
    spec.signed = True
    return write_classic_series(folder, vols, geometry_from_affine(affine_ras), spec, edit), scale
