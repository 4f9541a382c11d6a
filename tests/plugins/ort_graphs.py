"""One-node ONNX graphs of the fused CAT nodes, and ONNX Runtime sessions with the compiled operator library."""
import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper

from cat_deploy.core.plugin_ids import DOMAIN, GATE_OP_TYPE, OP_TYPE, PLUGIN_NAMESPACE

ELEM = {np.float32: TensorProto.FLOAT, np.float16: TensorProto.FLOAT16}


def _model(node, inputs, outputs, dtype) -> bytes:
    t = ELEM[dtype]
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(n, t, None) for n in inputs],
                              [helper.make_tensor_value_info(n, t, None) for n in outputs])
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(DOMAIN, 1)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=9).SerializeToString()


def pool_model(gmp_filter: int, dtype=np.float32) -> bytes:
    """``channel, spatial = FusedCatPool(x, taps)`` with the attributes the exporter writes."""
    node = helper.make_node(OP_TYPE, ["x", "taps"], ["channel", "spatial"], domain=DOMAIN, gmp_filter=gmp_filter,
                            plugin_namespace=PLUGIN_NAMESPACE, aot=1)
    return _model(node, ["x", "taps"], ["channel", "spatial"], dtype)


def gate_model(fusion: int, dtype=np.float32) -> bytes:
    """``y = FusedCatGate(x, channel_logits, spatial_logits, exterior)``."""
    node = helper.make_node(GATE_OP_TYPE, ["x", "c", "s", "exterior"], ["y"], domain=DOMAIN, fusion=fusion)
    return _model(node, ["x", "c", "s", "exterior"], ["y"], dtype)


def session(model: bytes, library, threads: int = 2) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.register_custom_ops_library(str(library))
    opts.intra_op_num_threads = threads
    return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])
