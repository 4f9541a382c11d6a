"""gep="plugin": one FusedCatPool node per CAT module, and its ONNX Runtime twin matches PyTorch."""
import importlib.util

import numpy as np
import onnx
import pytest
import torch
import torch.nn as nn

from cat_deploy.export import ShapeProfile, cat_module_names, deploy_module, export_onnx, output_names
from cat_deploy.core.plugin_ids import DOMAIN, OP_TYPE, PLUGIN_NAMESPACE
from cat_deploy.layers import fused_cat_pool
from cat_deploy.plugins.cat_pool_ort import graph_has_plugin
from cat_deploy.export.precision import node_module_map
from cat_deploy.layers import CAT, set_gep
from cat_deploy.layers.pooling import cat_pool
from cat_deploy.models import create_model
from cat_deploy.runtime.runners import OnnxRuntimeRunner

needs_ortx = pytest.mark.skipif(importlib.util.find_spec("onnxruntime_extensions") is None,
                                reason="onnxruntime-extensions is not installed (pip install '.[plugin]')")


class TwoCat(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.a = CAT(16, gep="plugin", gmp_filter="paper")
        self.down = nn.Conv2d(16, 24, 3, stride=2, padding=1)
        self.b = CAT(24, gep="plugin", gmp_filter="2d", entropy_norm="minmax_signed")
        with torch.no_grad():  # colla-factors off 0 so the pooled maps reach the output
            for m in (self.a, self.b):
                for p in (m.channel_factors, m.spatial_factors, m.exterior_factors):
                    p.normal_()

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
def test_onnxruntime_twin_two_sizes(two_cat):
    model, path = two_cat
    ref_model = TwoCat().eval()
    ref_model.load_state_dict(model.state_dict())
    set_gep(ref_model, "stable")
    with OnnxRuntimeRunner(path, device="cpu") as runner:  # the runner registers the twin itself
        for shape in [(2, 3, 24, 20), (1, 3, 33, 17)]:
            x = torch.randn(shape)
            with torch.no_grad():
                ref = ref_model(x).numpy()
            out = runner.infer({"images": x.numpy()})["out"]
            np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


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
