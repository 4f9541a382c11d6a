"""INT8 through ModelOpt PTQ: explicit Q/DQ, CAT and edge layers left FP32, run on ONNX Runtime CPU and gated."""
import json
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from cat_deploy.exporter import ExportOptions, run_export
from cat_deploy.export.precision import edge_layers
from cat_deploy.validate.parity import TOLERANCES

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "assets" / "demo" / "cat_retinanet_tiny.pth"


def test_int8_tolerances_are_finite():
    tol = TOLERANCES["int8"]
    assert tol.min_cosine >= 0.98 and tol.max_map_drop <= 0.02


def test_edge_layers_reach_inputs_and_outputs_through_data_movement():
    f32 = TensorProto.FLOAT
    nodes = [helper.make_node("Conv", ["x", "w0"], ["a"], name="stem"),
             helper.make_node("Conv", ["a", "w1"], ["b"], name="body"),
             helper.make_node("Relu", ["b"], ["c"], name="act"),
             helper.make_node("Conv", ["c", "w2"], ["d"], name="head"),
             helper.make_node("Reshape", ["d", "shape"], ["e"], name="flat"),
             helper.make_node("Concat", ["e", "e"], ["y"], axis=1, name="cat"),
             helper.make_node("Conv", ["c", "w2"], ["z0"], name="scored"),
             helper.make_node("Sigmoid", ["z0"], ["z"], name="sig")]  # computed after the conv: not an edge
    weights = [helper.make_tensor(n, f32, [1, 1, 1, 1], [1.0]) for n in ("w0", "w1", "w2")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", f32, [1, 1, 4, 4])],
                              [helper.make_tensor_value_info("y", f32, None), helper.make_tensor_value_info("z", f32, None)],
                              weights + [helper.make_tensor("shape", TensorProto.INT64, [2], [1, -1])])
    assert sorted(edge_layers(helper.make_model(graph))) == ["head", "stem"]


@pytest.mark.slow
def test_demo_detector_int8_on_onnxruntime(tmp_path):
    """The demo detector quantized with 128 synthetic calibration scenes passes the INT8 gate on ORT CPU."""
    from cat_deploy.data.synthetic import generate_dataset

    generate_dataset(tmp_path / "calib", 128, size=(640, 192), seed=0)  # training-distribution scenes
    out = tmp_path / "out"
    result = run_export(ExportOptions(ckpt=str(DEMO), out=str(out), precision="int8",
                                      calib_images=str(tmp_path / "calib" / "images"), val_images=50),
                        log=lambda s: None)
    side = json.loads((out / "cat.onnx.json").read_text())
    parity = side["parity"]
    assert result["passed"] and parity["backend"] == ["CPUExecutionProvider"]
    acc = parity["accuracy"]
    assert acc["map50_ref"] - acc["map50_out"] <= 0.02 and acc["images"] == 50
    assert all(s["cosine"] >= 0.98 for c in parity["cases"] for s in c["outputs"].values())

    report = side["precision"]
    model = onnx.load(str(out / "cat.onnx"))
    producer = {o: n for n in model.graph.node for o in n.output}
    ops = [n.op_type for n in model.graph.node]
    assert report["quantize_linear"] == ops.count("QuantizeLinear") > 0
    assert report["dequantize_linear"] == ops.count("DequantizeLinear") > report["quantize_linear"]  # + weights
    assert report["calibration_images"] == 128

    def quantized(node):
        return any(producer.get(i) is not None and producer[i].op_type == "DequantizeLinear" for i in node.input)

    kept = set(report["fp32_nodes"])
    by_name = {n.name: n for n in model.graph.node}
    cat_nodes = [by_name[n] for n in kept if n in by_name and "/branch2/branch2.8/" in n]  # CAT of every block
    assert len(cat_nodes) > 500 and not [n.name for n in cat_nodes if quantized(n)]
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert sum(quantized(n) for n in convs) >= 60  # the backbone and FPN/head towers run INT8
    for name in ("/backbone/stages.0/stages.0.0/stages.0.0.0/Conv", "/head/cls_logits/Conv", "/head/box_deltas/Conv"):
        assert not quantized(by_name[name]), name
    exps = [n for n in model.graph.node if n.op_type in ("Exp", "Log", "ReduceMax", "ReduceSum")]
    assert exps and not [n.name for n in exps if quantized(n)]
