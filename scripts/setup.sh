#!/usr/bin/env bash
# Set up osteomri on a fresh machine (Python >= 3.11, pip, gcc): a virtual environment in .venv with the
# package and its test tools, plus the system packages the tests use (Chromium for the report check).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
want_browser=${OSTEOMRI_INSTALL_BROWSER:-1}
if [ "$want_browser" = 1 ] && ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[setup] installing Chromium (headless report check)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
  else
    echo "[setup] Chromium not found and cannot apt-get install it: the browser test will be skipped" >&2
  fi
fi
# dicom3tools' dciodvfy validates every DICOM object osteomri writes (tests run it)
if ! command -v dciodvfy >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[setup] installing dicom3tools (dciodvfy, DICOM object validation)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dicom3tools >/dev/null
  else
    echo "[setup] dciodvfy not found and cannot apt-get install dicom3tools: the DICOM validation tests will be skipped" >&2
  fi
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
# the [dl] extra's PyTorch: the CPU build (a bare "torch" requirement would fetch a multi-GB CUDA build)
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  .venv/bin/python -m pip install -q "torch==${OSTEOMRI_TORCH_VERSION:-2.13.0}" >/dev/null
fi
.venv/bin/python -m pip install -q -e ".[test]"
echo "[setup] osteomri $(.venv/bin/python -c 'import osteomri; print(osteomri.__version__)') ready in .venv"
