"""fuse_gate / ``export.py --fuse-gate``: one FusedCatGate node per CAT module, same outputs, ONNX Runtime only.

The eager operator is checked against the unfused gate (bitwise) and against the independent float64
reference ``cat_forward_ref``; the ONNX Runtime Python twin (a convenience that calls the same
``cat_gate``, not evidence for the compiled library) against PyTorch and against the float64
reference, so a twin that mixes up its inputs fails. Weights come from ``exercise_cat``.
"""
import importlib.util
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torch.nn as nn
from cat_reference import cat_forward_ref, cat_params, rel_err

from cat_deploy.core.errors import SidecarError
from cat_deploy.core.plugin_ids import DOMAIN, FUSION_CODES, GATE_OP, GATE_OP_TYPE, ORT_OPS_LIBRARY
from cat_deploy.core.sidecar import Sidecar
from cat_deploy.export import ShapeProfile, cat_module_names, deploy_module, export_onnx, output_names
from cat_deploy.export.precision import fp32_keep_list, node_module_map
from cat_deploy.export.tensorrt import EngineBuildError, build_engine
from cat_deploy.layers import CAT, fused_cat_gate, set_fuse_gate, set_gep
from cat_deploy.models import create_model, exercise_cat
from cat_deploy.plugins.cat_pool_ort import graph_has_plugin
from cat_deploy.runtime.runners import OnnxRuntimeRunner
from cat_deploy.serve.triton_repo import TritonRepoError, check_servable
from cat_deploy.validate.__main__ import main as validate_main

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "assets" / "demo" / "cat_retinanet_tiny.pth"
FUSIONS = tuple(FUSION_CODES)
needs_ortx = pytest.mark.skipif(importlib.util.find_spec("onnxruntime_extensions") is None,
                                reason="onnxruntime-extensions is not installed (pip install '.[plugin]')")


def _load_cli():
    spec = importlib.util.spec_from_file_location("export_cli_gate", ROOT / "export.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def gate_nodes(model: onnx.ModelProto):
    return [n for n in model.graph.node if n.op_type == GATE_OP_TYPE]


def feature_map(shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * 2 + 0.3


@pytest.mark.parametrize("fusion", FUSIONS)
def test_eager_fused_gate_is_the_unfused_gate_and_the_float64_reference(fusion):
    m = exercise_cat(CAT(24, rd_channels=4, fusion=fusion), seed=3).eval()
    x = feature_map((2, 24, 9, 13))
    with torch.no_grad():
        plain = m(x)
        set_fuse_gate(m, True)
        fused = m(x)
        m64 = m.double()
        fused64 = m64(x.double()).numpy()
    assert torch.equal(fused, plain)
    ref = cat_forward_ref(x.double().numpy(), cat_params(m64.state_dict()), fusion=fusion)
    assert rel_err(fused64, ref).max() <= 1e-12  # float64 against float64 (as tests/layers/test_cat_reference.py)
    assert "fuse_gate=True" in repr(m)


def test_fused_gate_is_export_only_and_checks_fusion():
    x = torch.randn(1, 4, 3, 3, requires_grad=True)
    c, s, e = torch.randn(1, 4), torch.randn(1, 1, 3, 3), torch.tensor([0.3, 0.7])
    with pytest.raises(RuntimeError, match="export only"):
        fused_cat_gate(x, c, s, e, "algorithm1").sum().backward()
    with pytest.raises(ValueError, match="fusion"):
        fused_cat_gate(x, c, s, e, "eq2")


class TwoCat(nn.Module):
    """Two CAT modules, one per fusion, with the fused gate (and the fused pooling on the second)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.a = exercise_cat(CAT(16, rd_channels=4, fusion="algorithm1", fuse_gate=True), seed=0)
        self.down = nn.Conv2d(16, 24, 3, stride=2, padding=1)
        self.b = exercise_cat(CAT(24, rd_channels=4, fusion="eq1", gep="plugin", fuse_gate=True), seed=1)

    def forward(self, x):
        return self.b(self.down(self.a(self.conv(x))))


@pytest.fixture(scope="module")
def two_cat(tmp_path_factory):
    torch.manual_seed(0)
    model = TwoCat().eval()
    path = tmp_path_factory.mktemp("gate") / "two_cat.onnx"
    export_onnx(model, path, ShapeProfile.make((24, 20), batch=2, dynamic=True, min_imgsz=(16, 16),
                                               max_imgsz=(48, 48)), ["out"])
    return model, path


def test_node_spec(two_cat):
    model, path = two_cat
    graph = onnx.load(str(path)).graph
    nodes = gate_nodes(onnx.load(str(path)))
    assert len(nodes) == 2 and graph_has_plugin(path)
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer}
    for node, cat, code in zip(nodes, (model.a, model.b), (0, 1)):
        assert node.domain == DOMAIN and len(node.input) == 4 and len(node.output) == 1
        assert {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute} == {"fusion": code}
        # exterior: softmax(C_w, S_w), constant-folded to an initializer
        np.testing.assert_allclose(inits[node.input[3]], cat.exterior_factors.detach().softmax(0).numpy(), rtol=1e-6)


@needs_ortx
def test_onnxruntime_twin_two_sizes(two_cat):
    model, path = two_cat
    ref_model = TwoCat().eval()
    ref_model.load_state_dict(model.state_dict())
    set_fuse_gate(ref_model, False)
    set_gep(ref_model, "stable")
    with OnnxRuntimeRunner(path, device="cpu") as runner:  # the runner registers the twins itself
        for shape in [(2, 3, 24, 20), (1, 3, 33, 17)]:
            x = torch.randn(shape)
            with torch.no_grad():
                ref = ref_model(x).numpy()
            out = runner.infer({"images": x.numpy()})["out"]
            np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


@needs_ortx
@pytest.mark.parametrize("fusion", FUSIONS)
def test_onnxruntime_twin_matches_float64_reference(tmp_path, fusion):
    """One CAT module with the fused gate, through ONNX Runtime, against cat_forward_ref per element."""
    m = exercise_cat(CAT(13, rd_channels=4, fusion=fusion, fuse_gate=True), seed=5).eval()
    path = tmp_path / "cat.onnx"
    with torch.no_grad():
        torch.onnx.export(m, (torch.zeros(2, 13, 9, 11),), str(path), dynamo=False, opset_version=17,
                          input_names=["images"], output_names=["out"],
                          dynamic_axes={"images": {0: "b", 2: "h", 3: "w"}, "out": {0: "b", 2: "h", 3: "w"}})
    assert len(gate_nodes(onnx.load(str(path)))) == 1
    params = cat_params(m.state_dict())
    with OnnxRuntimeRunner(path, device="cpu") as runner:
        for shape, seed in [((2, 13, 9, 11), 0), ((1, 13, 17, 5), 1)]:
            x = feature_map(shape, seed).numpy()
            out = runner.infer({"images": x})["out"]
            err = rel_err(out, cat_forward_ref(x.astype(np.float64), params, fusion=fusion))
            assert err.max() <= 1e-5, f"worst relative error {err.max():.2e}"  # float32 vs float64 (test_cat_reference)


@pytest.fixture(scope="module")
def detector_graph(tmp_path_factory):
    torch.manual_seed(0)
    model = exercise_cat(create_model("retinanet_tiny", num_classes=6), seed=0).eval()
    set_fuse_gate(model, True)
    path = tmp_path_factory.mktemp("gate_det") / "det.onnx"
    export_onnx(deploy_module(model, "host"), path, ShapeProfile.make((64, 96)), output_names(model, "host"),
                simplify=False)
    return model, onnx.load(str(path)), path


def test_detector_one_gate_per_cat_module_and_no_gate_ops_left(detector_graph):
    model, proto, _ = detector_graph
    graph, modules = proto.graph, cat_module_names(model)
    owner = node_module_map(graph, modules)
    nodes = gate_nodes(proto)
    assert len(modules) > 0 and sorted(owner[n.name] for n in nodes) == sorted(modules)  # exactly one per module
    inside = [n.op_type for n in graph.node if n.name in owner]
    assert "Sigmoid" not in inside  # both gate sigmoids are inside the node
    consumers = {i for n in graph.node if n.name not in owner for i in n.input} | {o.name for o in graph.output}
    for m in modules:  # what leaves each module is the gate's output, not a Mul/Add
        leaving = [n for n in graph.node if owner.get(n.name) == m and consumers & set(n.output)]
        assert [n.op_type for n in leaving] == [GATE_OP_TYPE], m


def test_fp16_and_int8_keep_the_gate_fp32(detector_graph):
    model, proto, _ = detector_graph
    gates = {n.name for n in gate_nodes(proto)}
    modules = cat_module_names(model)
    assert gates <= set(fp32_keep_list(proto, modules)) and gates <= set(fp32_keep_list(proto, modules, True))


def test_tensorrt_and_triton_refuse_a_fused_gate_graph(detector_graph, tmp_path):
    _, _, path = detector_graph
    with pytest.raises(EngineBuildError, match="--fuse-gate"):  # before TensorRT is needed
        build_engine(path, tmp_path / "det.engine", ShapeProfile.make((64, 96)))
    for backend in ("auto", "onnxruntime"):
        with pytest.raises(TritonRepoError, match="--fuse-gate"):
            check_servable(path, False, "stable", (1, 1), backend, fused_gate=True)
    assert check_servable(path, False, "stable", (1, 1), "python", fused_gate=True) == "python"


def test_sidecar_records_custom_ops_and_refuses_inconsistent_ones(tmp_path):
    side = Sidecar.from_json((ROOT / "tests" / "core" / "fixtures" / "demo_static_host.onnx.json").read_text())
    assert side.version == 1 and side.custom_ops == () and "custom_ops" not in side.to_dict()
    gate = side.replace(custom_ops=(GATE_OP,), custom_ops_library=ORT_OPS_LIBRARY)
    back = Sidecar.from_json(gate.to_json())
    assert back.version == 2 and back.custom_ops == (GATE_OP,) and back.custom_ops_library == ORT_OPS_LIBRARY
    data = json.loads(gate.to_json())
    for change, words in [({"version": 1}, "version 2"), ({"custom_ops": ["FusedCatGate"]}, "domain::op_type"),
                          ({"custom_ops": []}, "lists no custom_ops")]:
        with pytest.raises(SidecarError, match=words):
            Sidecar.from_dict({**data, **change})


def test_cli_format_trt_with_fuse_gate_is_refused_in_one_line(tmp_path, capsys):
    rc = _load_cli().main(["--ckpt", str(DEMO), "--format", "trt", "--fuse-gate", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "TensorRT fuses the gate" in err[0] and "drop --fuse-gate" in err[0]
    assert not (tmp_path / "o" / "cat.onnx").exists()


def test_cli_fp16_with_fuse_gate_works_or_refuses_in_one_line(tmp_path, capsys):
    """FP16 needs ModelOpt, and ModelOpt types custom nodes with TensorRT (checked: without TensorRT its AutoCast
    fails with "name 'trt' is not defined"): without them, exit 3 and one error line after the files kept."""
    if importlib.util.find_spec("modelopt") and importlib.util.find_spec("tensorrt"):
        pytest.skip("ModelOpt and TensorRT are installed: the fp16 export would run (not covered here)")
    out = tmp_path / "o"
    rc = _load_cli().main(["--ckpt", str(DEMO), "--precision", "fp16", "--fuse-gate", "--val-images", "0",
                           "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 3 and err[-1].startswith("export.py: error:") and ("ModelOpt" in err[-1] or "TensorRT" in err[-1])
    assert not (out / "cat.onnx").exists()


@needs_ortx
@pytest.mark.slow
@pytest.mark.parametrize("gep", ["stable", "plugin"])
def test_cli_export_of_the_demo_detector_passes_parity_with_the_twin(tmp_path, capsys, gep):
    out = tmp_path / "o"
    rc = _load_cli().main(["--ckpt", str(DEMO), "--fuse-gate", "--gep", gep, "--out", str(out), "--val-images", "2",
                           "--per-module", "--device", "cpu"])
    log = capsys.readouterr().out
    assert rc == 0 and "parity: PASSED" in log
    side = json.loads((out / "cat.onnx.json").read_text())
    pool = ["ai.onnx.contrib::FusedCatPool"] if gep == "plugin" else []
    assert side["version"] == 2 and side["custom_ops"] == sorted([GATE_OP] + pool)
    assert side["custom_ops_library"] == ORT_OPS_LIBRARY and side["options"]["fuse_gate"] is True
    per_module = side["parity"]["per_module"]
    assert per_module["passed"] and len(per_module["modules"]) == 16 and not per_module["not_found"]
    assert all(r["tensor"] in {o for n in gate_nodes(onnx.load(str(out / "cat.onnx"))) for o in n.output}
               for r in per_module["modules"])  # the module outputs compared are the gate nodes'
    if gep == "stable":  # the standalone validator on the same artefact
        assert validate_main(["--ckpt", str(DEMO), "--artefact", str(out / "cat.onnx"), "--val-images", "0",
                              "--per-module", "--device", "cpu"]) == 0
