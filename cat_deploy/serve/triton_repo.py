"""``export.py --triton-repo DIR``: a Triton Inference Server model repository for an exported detector.

Layout (``NAME`` = ``cat_detect`` by default)::

    DIR/README.md               how to serve it, and the request/response tensors
    DIR/NAME/config.pbtxt       ensemble: IMAGE (encoded JPEG/PNG bytes) -> num_dets, boxes, scores, classes
    DIR/NAME_pre/               Python backend: decode + letterbox + normalise (cat_deploy's own code)
    DIR/NAME_net/               the network: ``onnxruntime`` (model.onnx) or ``tensorrt_plan`` (model.plan),
                                or ``python`` (cat_deploy's runner in the Python backend; see below)
    DIR/NAME_post/              Python backend: decode boxes + NMS + map to image pixels, pad to max_det

Every model batches (``max_batch_size`` = the export profile's max batch; dynamic batching on,
so concurrent requests merge into one network call). The ``python`` network backend runs
:func:`cat_deploy.runtime.backends.open_model`'s runner (ONNX Runtime, TensorRT) inside
Triton: for Triton builds without the onnxruntime backend (the server bundled with
``nvidia-pytriton``), and for ``--gep plugin`` ONNX files, whose fused-pooling node ONNX
Runtime runs through onnxruntime-extensions. An engine built with ``--gep plugin`` carries
its ``FusedCatPool`` kernels inside the plan (TensorRT AOT plugin): ``tensorrt_plan`` loads
it with no plugin library. The Python-backend models import ``cat_deploy``: install it in
the server's Python (``pip install 'cat-deploy[runtime]' 'numpy<2'``: nvidia-pytriton pins NumPy<2 for the
Python-backend stub of this Triton release) or point ``EXECUTION_ENV_PATH`` at an
environment that has it.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import SidecarError
from ..core.files import atomic_write
from ..core.optional import lazy_import
from ..core.plugin_ids import GATE_OP
from ..core.sidecar import Sidecar, read_sidecar
from .detector import INPUT, NET_PREFIX, OUTPUTS, ServeConfig

__all__ = ["TritonRepoOptions", "TritonRepoError", "write_triton_repository", "check_servable", "to_pbtxt", "BACKENDS"]

onnx = lazy_import("onnx", "export.py --triton-repo (reads the graph's tensor shapes)")

BACKENDS = ("auto", "onnxruntime", "tensorrt", "python")
# Triton 2.51 (NGC 24.10) is the server nvidia-pytriton 0.7 bundles, the one this repository was run on here.
# A TensorRT plan must come from the TensorRT version of the container that serves it.
TRITON_IMAGE = "nvcr.io/nvidia/tritonserver:24.10-py3"
_ONNX_DTYPES = {1: "TYPE_FP32", 10: "TYPE_FP16", 11: "TYPE_FP64", 6: "TYPE_INT32", 7: "TYPE_INT64", 9: "TYPE_BOOL",
                3: "TYPE_INT8", 2: "TYPE_UINT8"}


class TritonRepoError(ValueError):
    """The artefact cannot become a Triton repository as asked; one line saying what to do."""


class Enum(str):
    """A protobuf enum value: written bare in text format (``TYPE_FP32``), not quoted."""


@dataclass(frozen=True)
class TritonRepoOptions:
    name: str = "cat_detect"
    backend: str = "auto"  # auto: tensorrt_plan for .engine/.plan, onnxruntime for .onnx
    serve: ServeConfig = ServeConfig()
    pre_instances: int = 2
    post_instances: int = 1
    net_instances: int = 1
    max_queue_delay_us: int = 2000


def to_pbtxt(msg: dict[str, Any], indent: int = 0) -> str:
    """Protobuf text format of a nested dict (lists repeat the field; :class:`Enum` values unquoted)."""
    pad = "  " * indent
    lines = []
    for key, value in msg.items():
        for v in value if isinstance(value, list) and (not value or isinstance(value[0], dict)) else [value]:
            if isinstance(v, dict):
                lines += [f"{pad}{key} {{", to_pbtxt(v, indent + 1), f"{pad}}}"]
            elif isinstance(v, list):
                lines.append(f"{pad}{key}: [ {', '.join(_scalar(x) for x in v)} ]")
            else:
                lines.append(f"{pad}{key}: {_scalar(v)}")
    return "\n".join(line for line in lines if line)


def _scalar(v) -> str:
    if isinstance(v, Enum):
        return str(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(str(v))


def _tensor(name: str, dtype: str, dims: list[int]) -> dict[str, Any]:
    return {"name": name, "data_type": Enum(dtype), "dims": [int(d) for d in dims]}


def _onnx_io(onnx_path: Path) -> tuple[list[dict], list[dict]]:
    """Inputs and outputs of the ONNX graph as Triton tensors (batch dimension dropped, symbolic dims -1)."""
    model = onnx.load(str(onnx_path), load_external_data=False)
    init = {i.name for i in model.graph.initializer}

    def tensors(values):
        out = []
        for v in values:
            if v.name in init:
                continue
            t = v.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim][1:]
            out.append(_tensor(v.name, _ONNX_DTYPES.get(t.elem_type, "TYPE_FP32"), dims))
        return out

    return tensors(model.graph.input), tensors(model.graph.output)


def check_servable(artefact: str | os.PathLike, engine: bool, gep: str, batch_range: tuple[int, int],
                   backend: str = "auto", fused_gate: bool = False) -> str:
    """The network's backend for an artefact (``engine``: a TensorRT plan, else ONNX) exported with ``gep``
    for batches ``batch_range`` (min, max), or :class:`TritonRepoError` (one line) when Triton cannot serve
    it as asked; ``fused_gate``: the graph has FusedCatGate nodes (``--fuse-gate``). ``export.py`` calls this before exporting, the repository writer again on the files."""
    if backend not in BACKENDS:
        raise TritonRepoError(f"--triton-backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "auto":
        backend = "tensorrt" if engine else "onnxruntime"
    if backend == "tensorrt" and not engine:
        raise TritonRepoError(f"'{artefact}' is ONNX: the tensorrt_plan backend needs an engine (export.py --format trt), "
                              "or use --triton-backend onnxruntime")
    if backend == "onnxruntime" and engine:
        raise TritonRepoError(f"'{artefact}' is a TensorRT engine: use --triton-backend tensorrt (or auto)")
    if backend == "onnxruntime" and gep == "plugin":
        raise TritonRepoError(f"'{artefact}' has fused-pooling nodes (--gep plugin), which Triton's onnxruntime backend "
                              "cannot run: serve the TensorRT engine (AOT plugin, self-contained), use "
                              "--triton-backend python, or re-export with --gep stable")
    if fused_gate and backend != "python":
        raise TritonRepoError(f"'{artefact}' has fused-gate nodes (--fuse-gate), which run on ONNX Runtime with "
                              "cat-deploy's ops library only (neither TensorRT nor Triton's onnxruntime backend "
                              "has them): use --triton-backend python, or re-export without --fuse-gate")
    lo, hi = batch_range
    if lo != hi and lo != 1:
        raise TritonRepoError(f"'{artefact}' accepts batches {lo}..{hi}; Triton sends any batch from 1: "
                              "re-export with --dynamic (min batch 1)")
    if lo == hi and hi != 1:
        raise TritonRepoError(f"'{artefact}' was exported for batch {hi} only (static); Triton needs every batch "
                              f"1..{hi}: re-export with python export.py --dynamic --batch {hi}")
    return backend


def _onnx_of(artefact: Path, sidecar: Sidecar, engine: bool) -> Path:
    """The ONNX file whose graph gives the tensor shapes (an engine's: the one it was built from)."""
    onnx_path = artefact if not engine else artefact.with_name(sidecar.onnx or artefact.stem + ".onnx")
    if not onnx_path.is_file():
        raise TritonRepoError(f"the ONNX file '{onnx_path}' the engine was built from is needed for its tensor shapes: "
                              "keep it beside the engine")
    return onnx_path


def write_triton_repository(artefact: str | os.PathLike, out_dir: str | os.PathLike,
                            opts: TritonRepoOptions = TritonRepoOptions()) -> dict[str, Any]:
    """Write the repository for ``artefact`` (an exported ``.onnx`` or ``.engine`` with its sidecar).

    Returns ``{"repository", "models": {name: config path}, "backend", "max_batch_size", "notes"}``.
    Raises :class:`TritonRepoError` (one line) when the artefact cannot be served as asked.

    Example::

        write_triton_repository("out/cat.onnx", "triton_repo")
        # docker run --rm -p8000:8000 -p8001:8001 -v $PWD/triton_repo:/models \\
        #     nvcr.io/nvidia/tritonserver:<ver>-py3 tritonserver --model-repository=/models
    """
    artefact = Path(artefact)
    try:
        sidecar = read_sidecar(artefact)
    except SidecarError as e:
        raise TritonRepoError(str(e)) from None
    if sidecar.task != "detect":
        raise TritonRepoError(f"'{artefact}' is a {sidecar.task} model; the repository serves detectors")
    engine = artefact.suffix.lower() in (".engine", ".plan")
    max_batch = sidecar.profile.max[0]
    backend = check_servable(artefact, engine, sidecar.gep, (sidecar.profile.min[0], max_batch), opts.backend,
                             GATE_OP in sidecar.custom_ops)
    inputs, outputs = _onnx_io(_onnx_of(artefact, sidecar, engine))
    h, w = sidecar.input_size
    net_in = [_tensor(inputs[0]["name"], "TYPE_FP32", [3, h, w])]
    root = Path(out_dir)
    name = opts.name
    batching = {"max_queue_delay_microseconds": opts.max_queue_delay_us}
    notes = []
    if max_batch == 1:
        notes.append(f"'{artefact.name}' takes batch 1 only, so requests are not merged: re-export with "
                     "--dynamic --batch 8 for dynamic batching")

    configs = {
        f"{name}_pre": _python_config(f"{name}_pre", max_batch, opts.pre_instances, batching,
                                      [_tensor(INPUT, "TYPE_STRING", [1])],
                                      net_in + [_tensor("letterbox", "TYPE_FP64", [5])], opts.serve),
        f"{name}_net": _net_config(f"{name}_net", backend, max_batch, opts.net_instances, batching, net_in, outputs),
        f"{name}_post": _python_config(f"{name}_post", max_batch, opts.post_instances, batching,
                                       [{**o, "name": NET_PREFIX + o["name"]} for o in outputs]
                                       + [_tensor("letterbox", "TYPE_FP64", [5])],
                                       _detection_outputs(opts.serve.max_det), opts.serve),
        name: _ensemble_config(name, max_batch, inputs[0]["name"], [o["name"] for o in outputs], opts.serve.max_det),
    }
    written = {}
    for model, config in configs.items():
        version = root / model / "1"
        version.mkdir(parents=True, exist_ok=True)
        header = _header(model, artefact, sidecar, backend)
        written[model] = _write_text(root / model / "config.pbtxt", header + to_pbtxt(config) + "\n")
    _write_versions(root, name, artefact, sidecar, backend)
    _write_text(root / "README.md", _readme(root, name, artefact, backend, max_batch, opts, notes, sidecar))
    return {"repository": root, "models": written, "backend": backend, "max_batch_size": max_batch, "notes": notes}


def _write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def _copy(src: Path, dst: Path) -> Path:
    return atomic_write(dst, lambda tmp: shutil.copyfile(src, tmp))


def _python_config(name, max_batch, instances, batching, inputs, outputs, serve: ServeConfig) -> dict[str, Any]:
    return {"name": name, "backend": "python", "max_batch_size": max_batch, "input": inputs, "output": outputs,
            "dynamic_batching": batching, "instance_group": [{"kind": Enum("KIND_CPU"), "count": instances}],
            "parameters": [{"key": "serve_config", "value": {"string_value": serve.to_json()}}]}


def _net_config(name, backend, max_batch, instances, batching, inputs, outputs) -> dict[str, Any]:
    kind = {"tensorrt": "KIND_GPU", "onnxruntime": "KIND_AUTO", "python": "KIND_CPU"}[backend]
    cfg: dict[str, Any] = {"name": name}
    if backend == "python":
        cfg["backend"] = "python"
    else:
        cfg["platform"] = {"tensorrt": "tensorrt_plan", "onnxruntime": "onnxruntime_onnx"}[backend]
    cfg.update({"max_batch_size": max_batch, "input": inputs, "output": outputs, "dynamic_batching": batching,
                "instance_group": [{"kind": Enum(kind), "count": instances}]})
    return cfg


def _detection_outputs(max_det: int) -> list[dict[str, Any]]:
    return [_tensor("num_dets", "TYPE_INT32", [1]), _tensor("boxes", "TYPE_FP32", [max_det, 4]),
            _tensor("scores", "TYPE_FP32", [max_det]), _tensor("classes", "TYPE_INT32", [max_det])]


def _ensemble_config(name, max_batch, net_input: str, net_outputs: list[str], max_det: int) -> dict[str, Any]:
    def io(keys, prefix=""):
        return [{"key": k, "value": prefix + k} for k in keys]

    steps = [
        {"model_name": f"{name}_pre", "model_version": -1, "input_map": io([INPUT]),
         "output_map": [{"key": net_input, "value": "_" + net_input}, {"key": "letterbox", "value": "_letterbox"}]},
        {"model_name": f"{name}_net", "model_version": -1, "input_map": io([net_input], "_"),
         "output_map": io(net_outputs, "_")},
        {"model_name": f"{name}_post", "model_version": -1,
         "input_map": [{"key": NET_PREFIX + k, "value": "_" + k} for k in net_outputs]
         + [{"key": "letterbox", "value": "_letterbox"}], "output_map": io(list(OUTPUTS))},
    ]
    return {"name": name, "platform": "ensemble", "max_batch_size": max_batch,
            "input": [_tensor(INPUT, "TYPE_STRING", [1])], "output": _detection_outputs(max_det),
            "ensemble_scheduling": {"step": steps}}


def _header(model: str, artefact: Path, sidecar: Sidecar, backend: str) -> str:
    lines = [f"# Written by cat-deploy (export.py --triton-repo) from {artefact.name}; regenerate rather than edit."]
    if model.endswith("_net") and backend == "tensorrt" and sidecar.gep == "plugin":
        lines.append("# FusedCatPool (cat_deploy::FusedCatPool) is a TensorRT AOT plugin: its kernels are serialized "
                     "in model.plan,")
        lines.append("# so this model needs no plugin library (no LD_PRELOAD, no --backend-config plugin path).")
    return "\n".join(lines) + "\n"


def _write_versions(root: Path, name: str, artefact: Path, sidecar: Sidecar, backend: str) -> None:
    """Version 1 of each model: the network file (+ sidecar, which the ``python`` network and the pre/post
    models read for input size, normalisation, classes and detector head settings) and the model.py stubs."""
    net = root / f"{name}_net" / "1"
    fname = {"tensorrt": "model.plan", "onnxruntime": "model.onnx"}.get(backend, "model" + artefact.suffix)
    _copy(artefact, net / fname)
    sidecar.write(net / fname)
    if backend == "python":
        _write_text(net / "model.py", _stub("NetworkModel"))
    for part, cls in (("pre", "PreprocessModel"), ("post", "PostprocessModel")):
        d = root / f"{name}_{part}" / "1"
        _write_text(d / "sidecar.json", sidecar.to_json())
        _write_text(d / "model.py", _stub(cls))


def _stub(cls: str) -> str:
    return (f'"""Triton Python-backend model; the code is cat_deploy\'s (pip install cat-deploy in the server\'s '
            f'Python)."""\nfrom cat_deploy.serve.triton_models import {cls} as TritonPythonModel  # noqa: F401\n')


def _readme(root, name, artefact, backend, max_batch, opts: TritonRepoOptions, notes, sidecar) -> str:
    s = opts.serve
    net = {"tensorrt": "tensorrt_plan (model.plan)", "onnxruntime": "onnxruntime_onnx (model.onnx)",
           "python": "python (cat_deploy's runner on " + artefact.suffix + ")"}[backend]
    h, w = sidecar.input_size
    text = f"""# Triton model repository for `{artefact.name}`

Written by `export.py --triton-repo`. Models:

| model | backend | what |
|---|---|---|
| `{name}` | ensemble | `IMAGE` (encoded JPEG/PNG/BMP/WebP bytes, BYTES [1]) -> detections |
| `{name}_pre` | python | decode, letterbox to {h}x{w}, normalise (cat_deploy.serve.detector) |
| `{name}_net` | {net} | the network, max batch {max_batch}, dynamic batching |
| `{name}_post` | python | decode boxes, NMS (conf {s.conf}, iou {s.iou}), boxes to image pixels |

Response: `num_dets` INT32 [1], `boxes` FP32 [{s.max_det}, 4] (x1, y1, x2, y2 in the sent image's pixels),
`scores` FP32 [{s.max_det}], `classes` INT32 [{s.max_det}] (0-based: {', '.join(sidecar.class_names)});
rows past `num_dets` are zero. Requests above {s.max_bytes} bytes or {s.max_pixels} pixels are refused with a message.

Serve it with the NGC container (GPU: add `--gpus all`). The Python-backend models import
`cat_deploy` (with NumPy<2, as nvidia-pytriton pins for this release's Python-backend stub), so the container needs them: build
`FROM {TRITON_IMAGE}` with `RUN pip install 'cat-deploy[runtime]' 'numpy<2'`, or:

```bash
docker run --rm -p8000:8000 -p8001:8001 -v $PWD/{root.name}:/models {TRITON_IMAGE} \\
    bash -c "pip install 'cat-deploy[runtime]' 'numpy<2' && tritonserver --model-repository=/models"
```

Without Docker, on this machine: `python -m cat_deploy.serve --repo {root}` runs the Triton server
bundled with `nvidia-pytriton` on 127.0.0.1 (it has the Python backend only: write the repository
with `--triton-backend python`) in an environment with `cat-deploy[serve]` (`--python ENV/bin/python`;
nvidia-pytriton pins NumPy<2, so keep it apart from a NumPy 2 environment). Client: `python -m cat_deploy.serve.client --url 127.0.0.1:8001 --protocol grpc IMAGE.jpg`.
"""
    if sidecar.gep == "plugin" and backend == "tensorrt":
        text += ("\nThe engine's fused CAT pooling (`cat_deploy::FusedCatPool`) is a TensorRT AOT plugin: its "
                 "kernels are inside `model.plan`, so no plugin library is loaded.\n")
    for n in notes:
        text += f"\nNote: {n}.\n"
    return text
