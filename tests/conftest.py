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
