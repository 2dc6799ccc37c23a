"""MR spectroscopy input: the :class:`Spectrum` object and its one loader, :func:`load_spectrum`.

Formats: NIfTI-MRS (``.nii``/``.nii.gz``, the native format; read with the ``nifti-mrs`` package, Clarke et
al., MRM 2022;88:2358) and, through ``spec2nii`` (optional extra ``pip install osteomri[mrs]``), Siemens RDA
and DICOM spectroscopy (IMA, XA enhanced MR Spectroscopy), Philips SPAR/SDAT and GE P-files, converted to
NIfTI-MRS in a temporary folder and read from there. Patient-identifying header fields are dropped.

Conventions: FIDs as NIfTI-MRS stores them (see :mod:`osteomri.models.mrs.basis`: ``fftshift(fft(fid))``
runs from low to high ppm, ``ppm = reference_ppm + f / MHz``), echo top at t = 0, receiver reference
0 Hz = 4.70 ppm unless the header gives another (``reference_ppm``). Several files (or a folder) with one
echo time each make one multi-TE series (:func:`load_series`). Coils are combined and averages frequency-
and-phase aligned and averaged (:mod:`osteomri.io.spectrum_processing`).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from osteomri.errors import InputError, MetadataError

WATER_PPM = 4.70
NIFTI_SUFFIXES = (".nii", ".nii.gz")
VENDOR_SUFFIXES = {".rda": "rda", ".ima": "dicom", ".dcm": "dicom", ".sdat": "philips", ".spar": "philips",
                   ".7": "ge"}
_IDENTIFYING = ("Patient", "InstitutionName", "DeviceSerialNumber", "OriginalFile", "ConversionTime")


@dataclass
class Spectrum:
    """One spectrum or multi-TE series (or an MRSI grid of them).

    ``fids`` complex ``[..., n_te, n_points]`` (spatial grid first for MRSI), ``te_s`` (n_te,), ``dwell_time_s``,
    ``spectrometer_mhz``, ``sequence`` (``"press"``, ``"steam"`` or ``"other"``), ``mixing_time_s`` (STEAM),
    ``averages`` (number acquired), ``tr_s``, ``voxel_position_mm`` (centre, scanner RAS+ mm from the
    NIfTI-MRS affine), ``voxel_size_mm``, ``affine`` (voxel -> RAS+ mm), ``reference_ppm`` (the receiver
    frequency's chemical shift), ``sources`` (file names), ``meta`` (non-identifying header fields),
    ``processing`` (what was done: coil combination, alignment).
    """

    fids: np.ndarray
    te_s: np.ndarray
    dwell_time_s: float
    spectrometer_mhz: float
    sequence: str = "other"
    mixing_time_s: float | None = None
    averages: int | None = None
    tr_s: float | None = None
    voxel_position_mm: tuple[float, float, float] | None = None
    voxel_size_mm: tuple[float, float, float] | None = None
    affine: np.ndarray | None = None
    reference_ppm: float = WATER_PPM
    sources: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    processing: list[str] = field(default_factory=list)

    @property
    def n_points(self) -> int:
        return int(self.fids.shape[-1])

    @property
    def grid_shape(self) -> tuple[int, ...]:
        return tuple(self.fids.shape[:-2])

    def summary(self) -> dict[str, Any]:
        """JSON-able header values (for provenance and reports)."""
        return {"te_s": self.te_s.tolist(), "dwell_time_s": self.dwell_time_s,
                "spectrometer_mhz": self.spectrometer_mhz, "sequence": self.sequence,
                "mixing_time_s": self.mixing_time_s, "averages": self.averages, "tr_s": self.tr_s,
                "n_points": self.n_points, "grid_shape": list(self.grid_shape),
                "voxel_position_mm": self.voxel_position_mm, "voxel_size_mm": self.voxel_size_mm,
                "reference_ppm": self.reference_ppm, "sources": self.sources, "processing": self.processing}


def load_spectrum(path: str | os.PathLike, *, align: bool = True) -> Spectrum:
    """Read one spectroscopy file (NIfTI-MRS or a vendor format; see the module docstring).

    A Philips ``.SDAT`` needs its ``.SPAR`` beside it (either may be named). Raises :class:`InputError`
    naming the file when it is not a spectrum or lacks dwell time, frequency or echo time."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    name = path.name.lower()
    if name.endswith(NIFTI_SUFFIXES):
        return _from_nifti_mrs(path, path.name, align=align, extra={})
    kind = VENDOR_SUFFIXES.get(path.suffix.lower())
    if kind is None and _is_dicom(path):
        kind = "dicom"
    if kind is None:
        raise InputError(f"{path.name}: not a spectroscopy file osteomri reads (NIfTI-MRS .nii/.nii.gz, Siemens "
                         f".rda/.IMA/.dcm, Philips .SPAR/.SDAT, GE P-file .7)")
    return _from_vendor(path, kind, align=align)


def load_series(paths, *, align: bool = True, align_echoes: bool = False) -> Spectrum:
    """One multi-TE series from several files (or a folder of them), sorted by echo time.

    All must share dwell time, frequency (within 1 ppm), number of points and grid; their echo times must
    differ. A single file (or a folder holding one) is returned as it is."""
    files: list[Path] = []
    for p in (paths if isinstance(paths, (list, tuple)) else [paths]):
        p = Path(p)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and _looks_like_spectrum(f))
            # a Philips pair counts once (the .SDAT)
            found = [f for f in found if f.suffix.lower() != ".spar" or not _partner(f, ".sdat")]
            if not found:
                raise InputError(f"{p}: no spectroscopy file in this folder")
            files.extend(found)
        else:
            files.append(p)
    if not files:
        raise InputError("no spectroscopy file given")
    spectra = [load_spectrum(f, align=align) for f in files]
    if len(spectra) == 1:
        return spectra[0]
    return combine_echoes(spectra, align_echoes=align_echoes)


def combine_echoes(spectra: list[Spectrum], *, align_echoes: bool = False) -> Spectrum:
    """Stack single- or multi-TE spectra of the same acquisition along the TE axis (sorted by TE).

    ``align_echoes``: echoes acquired as separate scans may drift in frequency and zero-order phase; each is
    then registered onto their mean like an average (:func:`~osteomri.io.spectrum_processing.align_averages`;
    water and fat share an echo's phase, so the correlation phase is the echo's phase whatever its
    water/fat ratio). Single-voxel series only."""
    first = spectra[0]
    for s in spectra[1:]:
        where = f"{', '.join(s.sources)} vs {', '.join(first.sources)}"
        if s.n_points != first.n_points:
            raise InputError(f"mismatched echo series: {s.n_points} vs {first.n_points} points ({where})")
        if not np.isclose(s.dwell_time_s, first.dwell_time_s, rtol=1e-4):
            raise InputError(f"mismatched echo series: dwell time {s.dwell_time_s} vs {first.dwell_time_s} s "
                             f"({where})")
        if abs(s.spectrometer_mhz - first.spectrometer_mhz) > 1e-6 * first.spectrometer_mhz:
            raise InputError(f"mismatched echo series: {s.spectrometer_mhz} vs {first.spectrometer_mhz} MHz "
                             f"({where})")
        if s.grid_shape != first.grid_shape:
            raise InputError(f"mismatched echo series: grid {s.grid_shape} vs {first.grid_shape} ({where})")
        if s.sequence != first.sequence:
            raise InputError(f"mismatched echo series: {s.sequence} vs {first.sequence} ({where})")
    te = np.concatenate([s.te_s for s in spectra])
    if np.unique(te).size != te.size:
        raise InputError(f"mismatched echo series: repeated echo time(s) {sorted(te.tolist())} s in "
                         f"{', '.join(x for s in spectra for x in s.sources)}")
    fids = np.concatenate([s.fids for s in spectra], axis=-2)
    order = np.argsort(te)
    fids = fids[..., order, :]
    processing = sorted({p for s in spectra for p in s.processing})
    if align_echoes:
        from osteomri.io.spectrum_processing import align_averages

        if first.grid_shape:
            raise InputError("echo alignment is for single-voxel series, not MRSI grids")
        aligned, note = align_averages(fids.T.reshape(1, 1, 1, *fids.T.shape), first.dwell_time_s)
        fids = aligned.reshape(fids.T.shape).T
        processing.append(note.replace("averages", "echoes"))
    return replace(first, fids=fids, te_s=te[order], sources=[x for s in spectra for x in s.sources],
                   processing=processing)


def _looks_like_spectrum(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(NIFTI_SUFFIXES) or path.suffix.lower() in VENDOR_SUFFIXES


def _partner(path: Path, suffix: str) -> Path | None:
    for cand in path.parent.iterdir():
        if cand.stem == path.stem and cand.suffix.lower() == suffix:
            return cand
    return None


def _is_dicom(path: Path) -> bool:
    with contextlib.suppress(OSError):
        with open(path, "rb") as fh:
            head = fh.read(132)
        return len(head) == 132 and head[128:132] == b"DICM"
    return False


def _from_vendor(path: Path, kind: str, *, align: bool) -> Spectrum:
    try:
        import spec2nii  # noqa: F401
    except ImportError:
        raise InputError(f"{path.name}: reading {kind} spectroscopy files needs spec2nii "
                         f"(pip install 'osteomri[mrs]')") from None
    extra: dict[str, Any] = {}
    if kind == "philips":
        sdat = path if path.suffix.lower() == ".sdat" else _partner(path, ".sdat")
        spar = path if path.suffix.lower() == ".spar" else _partner(path, ".spar")
        if sdat is None or spar is None:
            raise InputError(f"{path.name}: a Philips spectrum needs both its .SDAT and .SPAR files")
        args = ["philips", str(sdat), str(spar)]
        extra = _spar_values(spar)
        shown = sdat.name
    elif kind == "rda":
        args, shown = ["rda", str(path)], path.name
        extra = _rda_values(path)
    elif kind == "dicom":
        sub, extra = _dicom_kind(path)
        args, shown = [sub, str(path)], path.name
    else:
        args, shown = ["ge", str(path)], path.name
    with tempfile.TemporaryDirectory(prefix="osteomri-spec2nii-") as tmp:
        cmd = [sys.executable, "-c", "import sys; from spec2nii.spec2nii import main; sys.exit(main())",
               *args, "-o", tmp, "-f", "converted"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        outs = sorted(Path(tmp).glob("*.nii*"))
        if proc.returncode != 0 or not outs:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise InputError(f"{shown}: not a spectrum spec2nii can read ({last})")
        return _from_nifti_mrs(outs[0], shown, align=align, extra=extra)


def _from_nifti_mrs(path: Path, shown: str, *, align: bool, extra: dict[str, Any]) -> Spectrum:
    try:
        from nifti_mrs.nifti_mrs import NIFTI_MRS
    except ImportError:
        raise InputError(f"{shown}: reading NIfTI-MRS needs the nifti-mrs package "
                         f"(pip install 'osteomri[mrs]')") from None

    from osteomri.io.spectrum_processing import align_averages, combine_coils

    try:
        img = NIFTI_MRS(str(path))
    except Exception as exc:  # the package raises its own types for a non-MRS NIfTI
        raise InputError(f"{shown}: not a NIfTI-MRS spectrum ({type(exc).__name__}: {exc})") from None
    data = np.asarray(img[:])
    if not np.iscomplexobj(data):
        raise InputError(f"{shown}: NIfTI-MRS data must be complex, got {data.dtype}")
    hdr = img.hdr_ext.to_dict() if hasattr(img.hdr_ext, "to_dict") else dict(img.hdr_ext)
    dwell = float(img.dwelltime) if img.dwelltime else float("nan")
    freq = img.spectrometer_frequency
    mhz = float(freq[0]) if freq else float("nan")
    if not np.isfinite(dwell) or dwell <= 0:
        raise MetadataError(f"{shown}: no dwell time in the header")
    if not np.isfinite(mhz) or mhz <= 0:
        raise MetadataError(f"{shown}: no spectrometer frequency in the header")
    if not np.all(np.isfinite(data)):
        raise InputError(f"{shown}: the FIDs hold NaN or infinite values")
    tags = list(img.dim_tags)
    processing: list[str] = []
    te_axis_values = None
    # higher dimensions 5-7: coils combined, averages aligned and averaged, echo times kept, others refused
    for axis in range(len(tags) - 1, -1, -1):
        dim = 4 + axis
        if dim >= data.ndim:
            continue
        tag = tags[axis]
        dhdr = hdr.get(f"dim_{dim + 1}_header", {}) or {}
        if isinstance(dhdr, dict) and "EchoTime" in dhdr:
            te_axis_values = _header_list(dhdr["EchoTime"], data.shape[dim])
            data = np.moveaxis(data, dim, -1)
            continue
        if tag == "DIM_COIL":
            data, note = combine_coils(np.moveaxis(data, dim, -1))
            processing.append(note)
        elif tag in ("DIM_DYN", "DIM_MEAS") or data.shape[dim] == 1:
            moved = np.moveaxis(data, dim, -1)
            if moved.shape[-1] > 1 and align:
                moved, note = align_averages(moved, dwell)
                processing.append(note)
            data = moved.mean(-1)
        else:
            raise InputError(f"{shown}: higher dimension {tag} ({data.shape[dim]} entries) is not supported")
    # data: (x, y, z, n_points[, n_te])
    if te_axis_values is not None:
        fids = np.moveaxis(data, -1, -2)
        te = np.asarray(te_axis_values, float)
    else:
        te_hdr = hdr.get("EchoTime")
        if te_hdr is None:
            raise MetadataError(f"{shown}: no echo time (EchoTime) in the header")
        fids = data[..., None, :]
        te = np.atleast_1d(np.asarray(te_hdr, float))
    spatial = fids.shape[:3]
    if all(n == 1 for n in spatial):
        fids = fids.reshape(fids.shape[3:])
    affine = np.asarray(img.getAffine("voxel", "world"), float)
    zooms = tuple(float(z) for z in img.header.get_zooms()[:3])
    centre = affine @ np.array([(spatial[0] - 1) / 2, (spatial[1] - 1) / 2, (spatial[2] - 1) / 2, 1.0])
    seq_name = str(hdr.get("SequenceName", "") or hdr.get("PulseSequenceFile", "") or extra.get("sequence", ""))
    sequence = extra.get("sequence") or _sequence(seq_name, hdr)
    mixing = hdr.get("MixingTime", extra.get("mixing_time_s"))
    mixing = float(mixing) if mixing not in (None, 0, 0.0) else None
    ref_ppm = WATER_PPM
    if hdr.get("SpecFreqChemShift") is not None:  # NIfTI-MRS: chemical shift of the receiver frequency
        ref_ppm = float(np.atleast_1d(hdr["SpecFreqChemShift"])[0])
    meta = {k: v for k, v in hdr.items()
            if not k.startswith("dim_") and not any(k.startswith(p) for p in _IDENTIFYING)}
    return Spectrum(fids=fids.astype(np.complex128), te_s=te, dwell_time_s=dwell, spectrometer_mhz=mhz,
                    sequence=sequence, mixing_time_s=mixing, averages=extra.get("averages"),
                    tr_s=float(hdr["RepetitionTime"]) if hdr.get("RepetitionTime") else None,
                    voxel_position_mm=tuple(float(v) for v in centre[:3]), voxel_size_mm=zooms, affine=affine,
                    reference_ppm=ref_ppm, sources=[shown], meta=meta, processing=processing)


def _header_list(value, n: int) -> list[float]:
    if isinstance(value, dict):  # {"start": ..., "increment": ...} form of NIfTI-MRS
        return [float(value["start"]) + i * float(value["increment"]) for i in range(n)]
    return [float(v) for v in value]


def _sequence(name: str, hdr: dict) -> str:
    s = name.lower()
    if "steam" in s or "svs_st" in s or "_st_" in s:
        return "steam"
    if "press" in s or "svs_se" in s or "_se" in s:
        return "press"
    return "other"


def _rda_values(path: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with open(path, "rb") as fh:
        text = fh.read(20000).decode("latin-1", errors="replace")
    for line in text.split("\n"):
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "NumberOfAverages":
            with contextlib.suppress(ValueError):
                out["averages"] = int(float(value))
        elif key == "MixingTime":
            with contextlib.suppress(ValueError):
                if float(value) > 0:
                    out["mixing_time_s"] = float(value) / 1000
        if "End of header" in line:
            break
    return out


def _spar_values(path: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for line in path.read_text(errors="replace").splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip().strip('"')
        if key == "averages":
            with contextlib.suppress(ValueError):
                out["averages"] = int(float(value))
        elif key in ("scan_id", "spec_sequence_name", "seq_name") and ("press" in value.lower()
                                                                        or "steam" in value.lower()):
            out["sequence"] = "steam" if "steam" in value.lower() else "press"
        elif key == "mixing_time":
            with contextlib.suppress(ValueError):
                if float(value) > 0:
                    out["mixing_time_s"] = float(value) / 1000
    return out


def _dicom_kind(path: Path) -> tuple[str, dict[str, Any]]:
    import pydicom

    try:
        ds = pydicom.dcmread(str(path), stop_before_pixels=True)
    except Exception as exc:
        raise InputError(f"{path.name}: not a readable DICOM file ({exc})") from None
    manufacturer = str(ds.get("Manufacturer", "")).lower()
    extra: dict[str, Any] = {}
    averages = ds.get("NumberOfAverages")
    if averages is None:
        for group in ("SharedFunctionalGroupsSequence",):
            with contextlib.suppress(AttributeError, IndexError, KeyError, TypeError):
                averages = ds[group][0].MRAveragesSequence[0].NumberOfAverages
    if averages is not None:
        with contextlib.suppress(TypeError, ValueError):
            extra["averages"] = int(float(averages))
    is_mrs = ("SpectroscopyData" in ds or str(ds.get("SOPClassUID", "")) == "1.2.840.10008.5.1.4.1.1.4.2"
              or (0x7FE1, 0x0010) in ds or _has_csa_spectro(path))
    if not is_mrs:
        raise InputError(f"{path.name}: a DICOM file but not a spectroscopy object "
                         f"({ds.get('Modality', '?')} {ds.get('SOPClassUID', '')})")
    if "philips" in manufacturer:
        return "philips_dcm", extra
    if "uih" in manufacturer or "united imaging" in manufacturer:
        return "uih", extra
    return "dicom", extra


def _has_csa_spectro(path: Path) -> bool:
    with open(path, "rb") as fh:
        blob = fh.read()
    return b"SPECTROSCOPY" in blob or b"Spectroscopy" in blob
