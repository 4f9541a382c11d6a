#!/usr/bin/env bash
# Create .venv (once) and install cat-deploy with its test tools. Safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
if ! python -c "import cat_deploy.plugins, torch, pytest, onnxruntime_extensions, av, modelopt.onnx" 2>/dev/null; then
  python -m pip install -q --upgrade pip
  # torch/torchvision pinned to the builds this project is tested with (CPU is enough; CUDA is used when present)
  python -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
  python -m pip install -q -e ".[dev]"
fi
