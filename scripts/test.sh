#!/usr/bin/env bash
# The test command: set up (if needed) and run the whole suite. Tests that need TensorRT or a GPU skip with the reason.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
# The live Triton tests start the server in .venv-serve (NumPy<2); naming it makes a missing one fail, not skip.
export CAT_DEPLOY_SERVE_PYTHON="$PWD/.venv-serve/bin/python"
# setup.sh builds the compiled ONNX Runtime operators; here their tests fail, not skip, when it could not.
export CAT_DEPLOY_REQUIRE_ORT_OPS=1
python -m pytest -q -n 2 -rs "$@"
