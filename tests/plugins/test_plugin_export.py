"""gep="plugin": one FusedCatPool node per CAT module, and its ONNX Runtime twin matches PyTorch.

The twin is a convenience, not evidence about the plugin: it runs ``cat_pool``, the very function
PyTorch runs. What these tests show is that the graph around the node is right, and (against the
independent float64 reference) that the statistics the twin returns are the spec's.
"""
import importlib.util

import numpy as np
import onnx
import pytest
import torch
import torch.nn as nn
from cat_reference import cat_pool_ref
from cat_weights import assert_cat_reaches_output
from plugin_cases import STATS, error_ratios

from cat_deploy.export import ShapeProfile, cat_module_names, deploy_module, export_onnx, output_names
from cat_deploy.core.plugin_ids import DOMAIN, OP_TYPE, PLUGIN_NAMESPACE
from cat_deploy.layers import fused_cat_pool
from cat_deploy.plugins import ort_library
from cat_deploy.plugins.cat_pool_ort import graph_has_plugin
from cat_deploy.export.precision import node_module_map
from cat_deploy.layers import CAT, set_gep
from cat_deploy.layers.pooling import cat_pool
from cat_deploy.models import create_model, exercise_cat
from cat_deploy.runtime.runners import OnnxRuntimeRunner

needs_ortx = pytest.mark.skipif(importlib.util.find_spec("onnxruntime_extensions") is None,
                                reason="onnxruntime-extensions is not installed (pip install '.[plugin]')")


@pytest.fixture
def twin_only(monkeypatch):
    """The runner falls back to the Python twin, as where the compiled library is not built."""
    monkeypatch.setattr(ort_library, "library_path", lambda: None)


class TwoCat(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        # 4 MLP units (C/16 would be 1: one ReLU unit can silence a statistic); exercise_cat: every branch matters
        self.a = exercise_cat(CAT(16, rd_channels=4, gep="plugin", gmp_filter="paper"), seed=0)
        self.down = nn.Conv2d(16, 24, 3, stride=2, padding=1)
        self.b = exercise_cat(CAT(24, rd_channels=4, gep="plugin", gmp_filter="2d", entropy_norm="minmax_signed"), seed=1)

    def forward(self, x):
        return self.b(self.down(self.a(self.conv(x))))


def plugin_nodes(model: onnx.ModelProto):
    return [n for n in model.graph.node if n.op_type == OP_TYPE]


def test_eager_forward_is_cat_pool():
    x, taps = torch.randn(2, 8, 9, 7), torch.rand(8, 5)
    for filt in ("paper", "2d", "none"):
        for got, ref in zip(fused_cat_pool(x, taps, filt), cat_pool(x, taps, filt, "stable")):
            assert torch.equal(got, ref)
    with pytest.raises(RuntimeError, match="export only"):
        fused_cat_pool(x.requires_grad_(), taps, "paper")[0].sum().backward()


@pytest.fixture(scope="module")
def two_cat(tmp_path_factory):
    torch.manual_seed(0)
    model = TwoCat().eval()
    path = tmp_path_factory.mktemp("plugin") / "two_cat.onnx"
    export_onnx(model, path, ShapeProfile.make((24, 20), batch=2, dynamic=True, min_imgsz=(16, 16),
                                               max_imgsz=(48, 48)), ["out"])
    return model, path


def test_node_spec(two_cat):
    model, path = two_cat
    graph = onnx.load(str(path))
    nodes = plugin_nodes(graph)
    assert len(nodes) == 2
    inits = {i.name: i for i in graph.graph.initializer}
    for node, (c, code) in zip(nodes, [(16, 1), (24, 2)]):  # gmp_filter "paper" = 1, "2d" = 2
        assert node.domain == DOMAIN and len(node.input) == 2 and len(node.output) == 2
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert attrs == {"gmp_filter": code, "plugin_namespace": PLUGIN_NAMESPACE.encode(), "aot": 1}
        assert {a.name: a.type for a in node.attribute}["gmp_filter"] == onnx.AttributeProto.INT
        assert list(inits[node.input[1]].dims) == [c, 5]  # taps: a constant [C, k]
    assert any(o.domain == DOMAIN and o.version == 1 for o in graph.opset_import)
    assert graph_has_plugin(path) and graph_has_plugin(path.read_bytes())


@needs_ortx
def test_onnxruntime_twin_two_sizes(two_cat, twin_only):
    model, path = two_cat
    ref_model = TwoCat().eval()
    ref_model.load_state_dict(model.state_dict())
    set_gep(ref_model, "stable")
    assert_cat_reaches_output(ref_model, torch.randn(2, 3, 24, 20))
    with OnnxRuntimeRunner(path, device="cpu") as runner:  # the runner registers the twin itself
        assert runner.fused_ops == "twin"
        for shape in [(2, 3, 24, 20), (1, 3, 33, 17)]:
            x = torch.randn(shape)
            with torch.no_grad():
                ref = ref_model(x).numpy()
            out = runner.infer({"images": x.numpy()})["out"]
            np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


class PoolOnly(nn.Module):
    """One FusedCatPool node: the statistics themselves are the graph's outputs."""

    def __init__(self, channels: int, gmp_filter: str):
        super().__init__()
        self.gmp_filter = gmp_filter
        self.register_buffer("taps", CAT(channels).gmp_taps)

    def forward(self, x):
        return fused_cat_pool(x, self.taps, self.gmp_filter)


@needs_ortx
@pytest.mark.parametrize("filt", ["paper", "2d", "none"])
def test_onnxruntime_twin_matches_float64_reference(tmp_path, filt, twin_only):
    """The twin's six statistics against cat_pool_ref (numpy, float64, from docs/cat_spec.md), per element."""
    path = tmp_path / "pool.onnx"
    with torch.no_grad():
        torch.onnx.export(PoolOnly(13, filt).eval(), (torch.zeros(2, 13, 9, 11),), str(path), dynamo=False,
                          opset_version=17, input_names=["images"], output_names=["channel", "spatial"],
                          dynamic_axes={"images": {0: "b", 2: "h", 3: "w"}, "channel": {0: "b"},
                                        "spatial": {0: "b", 2: "h", 3: "w"}})
    assert graph_has_plugin(path)
    gen = np.random.default_rng(7)
    with OnnxRuntimeRunner(path, device="cpu") as runner:
        assert runner.fused_ops == "twin"
        for shape, scale in [((2, 13, 9, 11), 1.0), ((1, 13, 17, 5), 4.0), ((2, 13, 1, 7), 30.0)]:
            x = (gen.standard_normal(shape) * scale).astype(np.float32)
            out = runner.infer({"images": x})
            x64 = x.astype(np.float64)
            ratios = error_ratios((out["channel"], out["spatial"]), cat_pool_ref(x64, filt), x64, "float32")
            assert max(ratios) <= 1.0, dict(zip(STATS, ratios))


def test_detector_one_node_per_cat_module_and_no_exp_log(tmp_path):
    torch.manual_seed(0)
    model = create_model("retinanet_tiny", num_classes=6).eval()
    n_cat = set_gep(model, "plugin")
    modules = cat_module_names(model)
    assert n_cat == len(modules) > 0
    path = tmp_path / "det.onnx"
    export_onnx(deploy_module(model, "host"), path, ShapeProfile.make((64, 96)), output_names(model, "host"),
                simplify=False)
    graph = onnx.load(str(path)).graph
    owner = node_module_map(graph, modules)
    nodes = plugin_nodes(onnx.load(str(path)))
    assert sorted(owner[n.name] for n in nodes) == sorted(modules)  # exactly one per CAT module
    inside = [n.op_type for n in graph.node if n.name in owner]
    assert "Exp" not in inside and "Log" not in inside and "Softmax" not in inside


def test_plain_graph_and_missing_file_need_no_twin(tmp_path):
    path = tmp_path / "plain.onnx"
    export_onnx(nn.Conv2d(3, 4, 3), path, ShapeProfile.make((8, 8)), ["out"], simplify=False)
    assert not graph_has_plugin(path)
    assert not graph_has_plugin(tmp_path / "missing.onnx")
