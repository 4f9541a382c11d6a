"""Ask a Triton server for detections with ``tritonclient`` (HTTP or gRPC).

    python -m cat_deploy.serve.client --url 127.0.0.1:8001 --protocol grpc street.jpg other.png

Each image goes as its encoded file bytes (``IMAGE``, BYTES [1]); the answer is the padded
``num_dets, boxes, scores, classes`` of :mod:`cat_deploy.serve.detector`, unpadded here.
Needs ``tritonclient`` (``pip install 'cat-deploy[serve-client]'``; it works with NumPy 2, so the
clients run in the project's main environment, not the server's).
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .. import cli
from ..core.errors import MissingDependency
from ..core.optional import lazy_import, require
from .detector import INPUT, OUTPUTS

__all__ = ["TritonDetector", "Detections", "RequestFailed"]

client_utils = lazy_import("tritonclient.utils", "the Triton client")
json_format = lazy_import("google.protobuf.json_format", "the Triton gRPC client", "pip install 'cat-deploy[serve-client]'")


class RequestFailed(RuntimeError):
    """The server answered a request with an error; ``str()`` is the server's message."""


@dataclass
class Detections:
    boxes: np.ndarray  # float32 [k, 4], xyxy in the image's pixels
    scores: np.ndarray  # float32 [k]
    classes: np.ndarray  # int32 [k], 0-based


def _client_module(protocol: str):
    """``tritonclient.http`` or ``tritonclient.grpc``; :class:`MissingDependency` (one line) when not installed."""
    if protocol not in ("http", "grpc"):
        raise ValueError(f"protocol must be http or grpc, got {protocol!r}")
    return require(f"tritonclient.{protocol}", "the Triton client")


class TritonDetector:
    """One connection to ``model`` on the server at ``url`` (``HOST:PORT``). Not shared between threads."""

    def __init__(self, url: str, protocol: str = "http", model: str = "cat_detect", timeout_s: float = 120.0):
        self.protocol, self.model, self.timeout_s = protocol, model, timeout_s
        self.m = _client_module(protocol)
        kw = {"network_timeout": timeout_s, "connection_timeout": timeout_s} if protocol == "http" else {}
        self.client = self.m.InferenceServerClient(url, **kw)

    def infer_raw(self, inputs) -> dict[str, np.ndarray]:
        """Send prepared ``InferInput`` objects (any dtype or shape: for testing what the server refuses)."""
        outputs = [self.m.InferRequestedOutput(n) for n in OUTPUTS]
        try:
            kw = {"client_timeout": self.timeout_s} if self.protocol == "grpc" else {}
            result = self.client.infer(self.model, inputs, outputs=outputs, **kw)
        except client_utils.InferenceServerException as e:
            raise RequestFailed(e.message() or str(e)) from None
        return {n: result.as_numpy(n) for n in OUTPUTS}

    def detect(self, images: Sequence[bytes]) -> list[Detections]:
        """Detections for each encoded image, sent as one request of batch ``len(images)``."""
        arr = np.array([[bytes(b)] for b in images], dtype=object)
        inp = self.m.InferInput(INPUT, list(arr.shape), "BYTES")
        inp.set_data_from_numpy(arr)
        out = self.infer_raw([inp])
        dets = []
        for i in range(len(images)):
            k = int(out["num_dets"][i, 0])
            dets.append(Detections(out["boxes"][i, :k], out["scores"][i, :k], out["classes"][i, :k]))
        return dets

    def statistics(self, model: str) -> dict[str, int]:
        """``inference_count`` (images) and ``execution_count`` (model runs) of ``model`` since the server started:
        fewer executions than images means requests were batched together."""
        stats = self.client.get_inference_statistics(model)
        if self.protocol == "grpc":
            stats = json_format.MessageToDict(stats, preserving_proto_field_name=True)
        s = stats["model_stats"][0]
        return {"inference_count": int(s.get("inference_count", 0)), "execution_count": int(s.get("execution_count", 0))}

    def close(self) -> None:
        self.client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def main(argv=None) -> int:
    return cli.run("python -m cat_deploy.serve.client", _main, argv)


def _main(argv) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", help="image files to send")
    p.add_argument("--url", default="127.0.0.1:8000", help="server HOST:PORT (default: %(default)s)")
    p.add_argument("--protocol", default="http", choices=["http", "grpc"])
    p.add_argument("--model", default="cat_detect")
    cli.add_debug_flag(p)
    a = p.parse_args(argv)
    try:
        det = TritonDetector(a.url, a.protocol, a.model)
    except MissingDependency as e:
        print(f"client: error: {e}", file=sys.stderr)
        return cli.MISSING_DEPENDENCY
    failed = 0
    with det:
        for f in a.images:
            try:
                d = det.detect([Path(f).read_bytes()])[0]
            except (OSError, RequestFailed) as e:
                print(f"client: {f}: {e}", file=sys.stderr)
                failed += 1
                continue
            print(json.dumps({"file": f, "detections": [
                {"class_id": int(c), "score": round(float(s), 5), "bbox_xyxy": [round(float(v), 2) for v in b]}
                for b, s, c in zip(d.boxes, d.scores, d.classes)]}))
    return cli.BAD_INPUT if failed else cli.OK


if __name__ == "__main__":
    sys.exit(main())
