"""Shared test fixtures.

Validation data that is not ours lives outside the repository, in ``../shared/data`` by default, or
wherever ``OSTEOMRI_SHARED_DATA`` points. Under ``CI=true`` a missing folder is a failure; elsewhere the
tests that need it are skipped with a clear reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _register_test_module(name: str, path: Path) -> None:
    """Make a helper module of the test tree importable by name (``import dicom_factory``) in any import mode."""
    import importlib.util
    import sys

    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # registered before executing: its dataclasses look themselves up
        spec.loader.exec_module(module)


# synthetic DICOM series writer shared by the io, vertebrae and pipeline tests
_register_test_module("dicom_factory", REPO_ROOT / "tests" / "io" / "dicom_factory.py")


def shared_data_root() -> Path:
    return Path(os.environ.get("OSTEOMRI_SHARED_DATA", REPO_ROOT.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def shared_data():
    """Return a function ``shared_data("fatwater")`` -> Path of that validation-data folder."""

    def get(subfolder: str) -> Path:
        path = shared_data_root() / subfolder
        if not path.exists():
            msg = f"validation data folder missing: {path} (set OSTEOMRI_SHARED_DATA)"
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(msg)
            pytest.skip(msg)
        return path

    return get


def _chromium() -> str | None:
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.fixture(scope="session")
def render_html():
    """Return ``render(path) -> str``: the DOM of an HTML file after headless Chromium rendered it.

    Chromium is installed by ``scripts/setup.sh``. Missing: a failure under CI, a skip elsewhere.
    """
    import subprocess

    exe = _chromium()
    if exe is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("chromium not installed (scripts/setup.sh installs it)")
        pytest.skip("chromium not installed")

    def render(path) -> str:
        url = Path(path).resolve().as_uri()
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--no-first-run", "--virtual-time-budget=5000", "--dump-dom", url]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, f"chromium failed: {out.stderr[-2000:]}"
        return out.stdout

    return render


@pytest.fixture(scope="session")
def dciodvfy():
    """Return ``check(path) -> list of error lines`` from dicom3tools' ``dciodvfy`` (installed by
    ``scripts/setup.sh``). Missing: a failure under CI, a skip elsewhere."""
    import shutil
    import subprocess

    exe = shutil.which("dciodvfy")
    if exe is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("dciodvfy not installed (scripts/setup.sh installs dicom3tools)")
        pytest.skip("dciodvfy not installed")

    def check(path) -> list[str]:
        out = subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=300)
        return [ln for ln in (out.stdout + out.stderr).splitlines() if ln.startswith("Error")]

    return check


@pytest.fixture(scope="session")
def philips_enhanced(tmp_path_factory) -> Path:
    """nibabel's real Philips Enhanced MR Image Storage file (176 frames), decompressed (io and dicomout tests)."""
    import gzip
    import shutil

    import nibabel

    src = Path(nibabel.__file__).parent / "nicom" / "tests" / "data" / "philips_mprage.dcm.gz"
    if not src.exists():
        pytest.skip("nibabel's philips_mprage.dcm.gz test file is not installed")
    dst = tmp_path_factory.mktemp("philips") / "philips_mprage.dcm"
    with gzip.open(src) as fin, open(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout)
    return dst
