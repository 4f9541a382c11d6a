#!/usr/bin/env bash
# The test command: set up (if needed) and run the whole suite. Tests that need TensorRT or a GPU skip with the reason.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
python -m pytest -q -n 2 -rs "$@"
