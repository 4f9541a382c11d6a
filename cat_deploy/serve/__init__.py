"""Serving the detector behind Triton Inference Server.

- :mod:`.detector`: what a request goes through (JPEG bytes -> letterboxed tensor; raw outputs ->
  detections in the image's pixels), built on the runtime's decoding, pre- and post-processing.
- :mod:`.triton_repo`: ``export.py --triton-repo DIR`` writes a Triton model repository (the network
  on ``onnxruntime``/``tensorrt_plan``/``python``, pre/post-processing as Python-backend models, an ensemble).
- :mod:`.triton_models`: the Python-backend models of that repository.
- :mod:`.server`: runs the Triton server that ships inside ``nvidia-pytriton`` on a repository
  (loopback only), in the serve environment (NumPy<2, ``.venv-serve``); ``python -m cat_deploy.serve --repo DIR``.
- :mod:`.client`: ``tritonclient`` HTTP/gRPC calls; :mod:`.loadtest`: the bounded load test.

The package sits above the runtime and imports no PyTorch (``tests/test_layering.py``): the models
run in the serve environment, which is ``cat-deploy[runtime]`` plus nvidia-pytriton. tritonclient,
nvidia-pytriton and Triton's ``triton_python_backend_utils`` are optional, imported on first use.
"""
