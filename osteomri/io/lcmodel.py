"""LCModel ``.COORD`` output: ppm axis, phased data, LCModel's fit and background, its concentration table.

Format (Provencher, LCModel manual, Sec. "COORD file"): a concentration table (``Conc.  %SD  /ref
Metabolite``), a misc table (FWHM, S/N, data shift, phase), then blocks announced by ``NY points on ppm-axis``,
``NY phased data points follow``, ``NY points of the fit to the data follow``, ``NY background values follow``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from osteomri.errors import InputError


@dataclass
class LCModelCoord:
    """The numeric content of a COORD file (ppm decreasing, as LCModel writes it)."""

    ppm: np.ndarray
    data: np.ndarray
    fit: np.ndarray | None
    background: np.ndarray | None
    concentrations: dict[str, dict[str, float]] = field(default_factory=dict)
    fwhm_ppm: float | None = None
    snr: float | None = None
    shift_ppm: float | None = None


_BLOCKS = {"ppm": "points on ppm-axis", "data": "phased data points follow",
           "fit": "points of the fit to the data follow", "background": "background values follow"}


def load_lcmodel_coord(path: str | os.PathLike) -> LCModelCoord:
    """Read an LCModel ``.COORD`` file; :class:`InputError` naming the file if it is not one."""
    path = Path(path)
    lines = path.read_text(errors="replace").splitlines()
    blocks: dict[str, np.ndarray] = {}
    n_points = None
    for key, marker in _BLOCKS.items():
        idx = next((i for i, line in enumerate(lines) if marker in line), None)
        if idx is None:
            continue
        if key == "ppm":
            m = re.match(r"\s*(\d+)", lines[idx])
            n_points = int(m.group(1)) if m else None
        if n_points is None:
            break
        values: list[float] = []
        k = idx + 1
        while len(values) < n_points and k < len(lines):
            values.extend(float(v) for v in lines[k].split())
            k += 1
        blocks[key] = np.asarray(values[:n_points], float)
    if "ppm" not in blocks or "data" not in blocks or blocks["data"].size != blocks["ppm"].size:
        raise InputError(f"{path.name}: not an LCModel COORD file (no ppm axis and phased data blocks)")
    conc: dict[str, dict[str, float]] = {}
    row = re.compile(r"^\s*([0-9.Ee+-]+)\s+(\d+)%\s+([0-9.Ee+-]+)\s+(\S+)\s*$")
    for line in lines:
        if "lines in following misc" in line:
            break
        m = row.match(line)
        if m:
            conc[m.group(4)] = {"conc": float(m.group(1)), "sd_percent": float(m.group(2)),
                                "ratio": float(m.group(3))}
    text = "\n".join(lines[:60])

    def grab(pattern: str) -> float | None:
        m = re.search(pattern, text)
        return float(m.group(1)) if m else None

    return LCModelCoord(ppm=blocks["ppm"], data=blocks["data"], fit=blocks.get("fit"),
                        background=blocks.get("background"), concentrations=conc,
                        fwhm_ppm=grab(r"FWHM\s*=\s*([0-9.]+)"), snr=grab(r"S/N\s*=\s*([0-9.]+)"),
                        shift_ppm=grab(r"Data shift\s*=\s*([0-9.Ee+-]+)"))
