#!/usr/bin/env bash
# Create .venv (once) and install cat-deploy with its test tools. Safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
if ! python -c "import cat_deploy, pytest, onnxruntime_extensions, av, ray.data, pytriton, tritonclient.grpc" 2>/dev/null; then
  python -m pip install -q --upgrade pip
  # torch/torchvision pinned to the builds this project is tested with (CPU is enough; CUDA is used when present)
  python -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
  # [ray] (Ray Data, ~0.5 GB, ~25 s) and [serve] (nvidia-pytriton with its Triton server, tritonclient; ~0.3 GB,
  # ~45 s) so CI runs infer.py --ray and a real Triton server. nvidia-pytriton requires numpy<2.
  python -m pip install -q -e ".[dev,ray,serve]"
fi
