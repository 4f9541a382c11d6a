"""The Python-backend models of the repository written by :mod:`.triton_repo` (run inside Triton's stub).

Each ``model.py`` in the repository is one line importing a class from here as
``TritonPythonModel``, so the served code is this package's, never a copy. Triton hands
``execute`` the list of requests its dynamic batcher merged; each request has its own batch
dimension. A request that cannot be served gets an error response with one line; the others
in the batch are answered normally. They run in the serve environment (NumPy 1.x, no PyTorch):
everything they import is the torch-free runtime (``tests/test_layering.py`` checks this package's
imports; the live-server tests run them in ``.venv-serve``).

- :class:`PreprocessModel`: ``IMAGE`` BYTES [b, 1] -> ``images`` FP32 [b, 3, h, w], ``letterbox`` FP64 [b, 5].
- :class:`NetworkModel`: the network through :func:`cat_deploy.runtime.backends.open_model`'s runner,
  all merged requests in one call.
- :class:`PostprocessModel`: ``net_<output>`` + ``letterbox`` -> ``num_dets, boxes, scores, classes``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..core.optional import require
from ..core.sidecar import Sidecar
from ..runtime.backends import open_model, spec_from_sidecar
from .detector import (INPUT, NET_PREFIX, OUTPUTS, RequestError, ServeConfig, decode_request, detections,
                       letterbox_from_vector)

__all__ = ["PreprocessModel", "NetworkModel", "PostprocessModel"]


def _pb():
    """Triton's ``triton_python_backend_utils``, importable only inside its Python backend."""
    return require("triton_python_backend_utils", "the Python-backend models", "they run inside Triton's Python backend")


class _Model:
    """Reads the model's config, its ``serve_config`` parameter and the sidecar in its version folder."""

    def initialize(self, args: dict[str, Any]) -> None:
        self.pb = _pb()
        self.config = json.loads(args["model_config"])
        self.version_dir = Path(args["model_repository"]) / str(args["model_version"])
        params = self.config.get("parameters", {})
        text = params.get("serve_config", {}).get("string_value")
        self.serve = ServeConfig.from_json(text) if text else ServeConfig()
        sidecar_file = self.version_dir / "sidecar.json"
        if sidecar_file.is_file():
            sidecar = Sidecar.from_json(sidecar_file.read_text(), f"sidecar '{sidecar_file}'")
            self.spec = spec_from_sidecar(sidecar_file, sidecar, "triton")

    def _error(self, message: str):
        return self.pb.InferenceResponse(output_tensors=[], error=self.pb.TritonError(message))


class PreprocessModel(_Model):
    def initialize(self, args):
        super().initialize(args)
        self.input_name = self.spec.input_name

    def execute(self, requests):
        responses = []
        for k, request in enumerate(requests):
            data = self.pb.get_input_tensor_by_name(request, INPUT).as_numpy().reshape(-1)
            try:
                decoded = [decode_request(d, self.spec, self.serve, f"image {i} of the request")
                           for i, d in enumerate(data)]
            except RequestError as e:
                responses.append(self._error(str(e)))
                continue
            images = np.stack([t for t, _, _ in decoded])
            boxes = np.stack([v for _, v, _ in decoded])
            responses.append(self.pb.InferenceResponse(output_tensors=[self.pb.Tensor(self.input_name, images),
                                                                       self.pb.Tensor("letterbox", boxes)]))
        return responses


class NetworkModel(_Model):
    """The network file in the version folder (``model.onnx`` / ``model.plan`` + sidecar) through cat_deploy's runner."""

    def initialize(self, args):
        super().initialize(args)
        files = [p for p in self.version_dir.iterdir() if p.name.startswith("model.") and p.suffix in
                 (".onnx", ".plan", ".engine")]
        if len(files) != 1:
            raise RuntimeError(f"{self.version_dir}: expected one model.onnx or model.plan, found {len(files)}")
        runner, self.spec = open_model(files[0])
        self.runner = runner.__enter__()
        self.outputs = [o["name"] for o in self.config["output"]]

    def execute(self, requests):
        xs = [self.pb.get_input_tensor_by_name(r, self.spec.input_name).as_numpy() for r in requests]
        sizes = [len(x) for x in xs]
        outputs = self.runner.infer({self.spec.input_name: np.ascontiguousarray(np.concatenate(xs))})
        responses, start = [], 0
        for n in sizes:
            tensors = [self.pb.Tensor(name, np.ascontiguousarray(outputs[name][start:start + n])) for name in self.outputs]
            responses.append(self.pb.InferenceResponse(output_tensors=tensors))
            start += n
        return responses

    def finalize(self):
        self.runner.__exit__(None, None, None)


class PostprocessModel(_Model):
    def initialize(self, args):
        super().initialize(args)
        self.inputs = {i["name"][len(NET_PREFIX):]: i["name"] for i in self.config["input"]
                       if i["name"].startswith(NET_PREFIX)}

    def execute(self, requests):
        responses = []
        for request in requests:
            raw = {k: self.pb.get_input_tensor_by_name(request, name).as_numpy() for k, name in self.inputs.items()}
            lbs = [letterbox_from_vector(v, self.spec)
                   for v in self.pb.get_input_tensor_by_name(request, "letterbox").as_numpy()]
            out = detections(raw, lbs, self.spec, self.serve)
            responses.append(self.pb.InferenceResponse(output_tensors=[self.pb.Tensor(k, out[k]) for k in OUTPUTS]))
        return responses
