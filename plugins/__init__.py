"""Fused CAT pooling kernels, installed as ``cat_deploy.plugins`` (see docs/plugin.md).

* :mod:`.cat_pool_triton` -- the Triton kernels (PyTorch on a GPU; PTX for the TensorRT plugin);
* :mod:`.cat_pool_trt` -- the TensorRT ahead-of-time plugin ``cat_deploy::FusedCatPool``;
* ``cpp/cat_ort_ops.cc`` -- the ONNX Runtime CPU operators of the fused nodes (C++), built by :mod:`.build`
  into ``lib/`` and registered by :mod:`.ort_library` (torch-free);
* :mod:`.cat_pool_ort` -- the ONNX Runtime CPU twin of the pooling node (Python; the fallback).

The sources live in the repository's top-level ``plugins/`` folder; ``pyproject.toml`` maps it
to ``cat_deploy.plugins`` in wheels, and the symlink ``cat_deploy/plugins`` does the same in a
source checkout that is not installed. Import it as ``cat_deploy.plugins`` only. The modules
import their heavy dependencies (PyTorch, Triton, TensorRT) themselves: import a module, not
this package, to use it.
"""
