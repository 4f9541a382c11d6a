#!/usr/bin/env bash
# The main job on the default backend: export the shipped demo detector to ONNX (with parity
# against PyTorch) and detect objects in the sample images with ONNX Runtime (CUDA if present, else CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
python export.py --ckpt assets/demo/cat_retinanet_tiny.pth --format onnx --out runs/demo_export
python infer.py --engine runs/demo_export/cat.onnx --images assets/samples --out runs/demo_infer --save-images
