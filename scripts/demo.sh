#!/usr/bin/env bash
# Set up without the test browser, then run the main job on the built-in digital lumbar-spine phantom.
set -euo pipefail
cd "$(dirname "$0")/.."
OSTEOMRI_INSTALL_BROWSER=0 bash scripts/setup.sh
.venv/bin/osteomri demo --out "${1:-demo_out}"
