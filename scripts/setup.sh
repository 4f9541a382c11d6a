#!/usr/bin/env bash
# Create .venv (once) and install cat-deploy with its test tools; create .venv-serve (once) for the Triton
# server. Safe to rerun: each environment is installed only when its imports fail.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
if ! python -c "import cat_deploy.plugins, torch, pytest, onnxruntime_extensions, av, modelopt.onnx, ray.data, tritonclient.grpc" 2>/dev/null; then
  python -m pip install -q --upgrade pip
  # torch/torchvision pinned to the builds this project is tested with (CPU is enough; CUDA is used when present)
  python -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
  python -m pip install -q -e ".[dev]"
fi
deactivate
# The compiled ONNX Runtime CPU operators of the fused CAT nodes (plugins/cpp -> plugins/lib; rebuilt only when the
# sources change). Without a compiler, ONNX Runtime's headers or the network to fetch them, the build says so in one
# line and the runtime uses the Python twin instead: the setup goes on (scripts/test.sh then fails their tests).
.venv/bin/python -m cat_deploy.plugins.build || true
# The Triton server bundled with nvidia-pytriton needs NumPy<2, so it gets an environment of its own: the
# torch-free runtime its Python-backend models import, and nvidia-pytriton. .venv keeps NumPy 2.
if [ ! -x .venv-serve/bin/python ]; then
  "$PY" -m venv .venv-serve
fi
# checked from / so that this checkout's folder does not stand in for the install
if ! (cd / && "$OLDPWD/.venv-serve/bin/python" -c "import sys, pytriton, cat_deploy.serve.triton_models as m; sys.exit(not m.__file__.startswith(sys.argv[1]))" "$OLDPWD/") 2>/dev/null; then
  .venv-serve/bin/python -m pip install -q -e ".[serve]"
fi
