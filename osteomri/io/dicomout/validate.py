"""``dciodvfy`` (David Clunie's dicom3tools; Debian package ``dicom3tools``) on written objects."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from osteomri.errors import InputError


def dciodvfy_path() -> str | None:
    return shutil.which("dciodvfy")


def dciodvfy(path: str | Path) -> tuple[list[str], list[str]]:
    """(errors, warnings) that ``dciodvfy`` reports for the DICOM file ``path``."""
    exe = dciodvfy_path()
    if exe is None:
        raise InputError("dciodvfy not found: install the Debian package dicom3tools (scripts/setup.sh does)")
    out = subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=300)
    lines = (out.stdout + out.stderr).splitlines()
    errors = [ln for ln in lines if ln.startswith("Error")]
    warnings = [ln for ln in lines if ln.startswith("Warning")]
    return errors, warnings
