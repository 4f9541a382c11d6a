#!/usr/bin/env python
"""CPU time of the compiled fused CAT operators on ONNX Runtime, next to one elementwise multiply.

    python tools/ort_op_bench.py [--threads 2] [--shape 1 256 56 56] [--runs 300]

Times (per call; median and best of ``--runs`` after a warm-up) one-node graphs of ``Mul`` (x * x),
``FusedCatPool`` (each gmp_filter) and ``FusedCatGate`` on a tensor of ``--shape``, and one CAT module
(``CAT(C)``, exported with ``gep="stable"`` and with ``gep="plugin"``) at the same shape, all on the CPU
provider with ``--threads`` intra-op threads. Needs the built library (python -m cat_deploy.plugins.build)
and, for the CAT module, PyTorch.
"""
from __future__ import annotations

import argparse
import io
import statistics
import time

import numpy as np
import onnxruntime as ort
import torch
from onnx import TensorProto, helper

from cat_deploy.core.plugin_ids import DOMAIN, GATE_OP_TYPE, GMP_FILTER_CODES, OP_TYPE
from cat_deploy.layers import CAT
from cat_deploy.plugins.ort_library import BUILD_HINT, library_path


def one_node(node, inputs: list[str], outputs: list[str]) -> bytes:
    f = TensorProto.FLOAT
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(n, f, None) for n in inputs],
                              [helper.make_tensor_value_info(n, f, None) for n in outputs])
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(DOMAIN, 1)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=9).SerializeToString()


def cat_module(channels: int, gep: str, shape) -> bytes:
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(CAT(channels, gep=gep).eval(), (torch.zeros(shape),), buf, dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["y"])
    return buf.getvalue()


def time_ms(model: bytes, feed: dict, library: str, threads: int, runs: int) -> tuple[float, float]:
    opts = ort.SessionOptions()
    opts.register_custom_ops_library(library)
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    sess = ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])
    for _ in range(max(10, runs // 10)):
        sess.run(None, feed)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, feed)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3, min(times) * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--shape", type=int, nargs=4, default=[1, 256, 56, 56], metavar=("B", "C", "H", "W"))
    p.add_argument("--runs", type=int, default=300)
    a = p.parse_args()
    library = library_path()
    if library is None:
        raise SystemExit(f"ort_op_bench: the compiled operator library is not built: {BUILD_HINT}")
    B, C, H, W = a.shape
    gen = np.random.default_rng(0)
    x = gen.standard_normal(a.shape).astype(np.float32)
    taps = CAT(C).gmp_taps.numpy().astype(np.float32)  # [C, k]
    cases = {"Mul x*x": (one_node(helper.make_node("Mul", ["x", "x"], ["y"]), ["x"], ["y"]), {"x": x})}
    for name, code in GMP_FILTER_CODES.items():
        node = helper.make_node(OP_TYPE, ["x", "taps"], ["channel", "spatial"], domain=DOMAIN, gmp_filter=code)
        cases[f"FusedCatPool {name}"] = (one_node(node, ["x", "taps"], ["channel", "spatial"]), {"x": x, "taps": taps})
    node = helper.make_node(GATE_OP_TYPE, ["x", "c", "s", "e"], ["y"], domain=DOMAIN, fusion=0)
    cases["FusedCatGate"] = (one_node(node, ["x", "c", "s", "e"], ["y"]),
                             {"x": x, "c": gen.standard_normal((B, C)).astype(np.float32),
                              "s": gen.standard_normal((B, 1, H, W)).astype(np.float32),
                              "e": np.array([0.6, 0.4], np.float32)})
    for gep in ("stable", "plugin"):
        cases[f"CAT module gep={gep}"] = (cat_module(C, gep, a.shape), {"x": x})
    print(f"ONNX Runtime {ort.__version__}, CPU, {a.threads} threads, x {list(a.shape)} float32; ms per call")
    for name, (model, feed) in cases.items():
        med, best = time_ms(model, feed, str(library), a.threads, a.runs)
        print(f"  {name:28s} median {med:7.3f}   best {best:7.3f}")


if __name__ == "__main__":
    main()
