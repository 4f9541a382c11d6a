"""Validate: parity of an exported artefact against PyTorch (per output, detections, mAP), the per-module localiser.

``python -m cat_deploy.validate --ckpt model.pth --artefact out/cat.onnx`` (see ``__main__``).
"""
