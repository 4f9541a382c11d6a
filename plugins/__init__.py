"""Custom kernels and TensorRT plugins of cat-deploy (not part of the installed package; see docs/plugin.md)."""
