"""The TensorRT side: PTX of the single-launch kernel per compute capability, and the plugin itself.

PTX is produced by triton.compile without a GPU, so its entry point and parameter order are
checked here for every target the plugin supports. The plugin's registration, format choice,
launch parameters and kernel are driven through NVIDIA's own ``tensorrt.plugin`` code of
TensorRT 10.9 and 11.4 (``tests/trt_core.py``). Building an engine needs TensorRT and a GPU
(``tensorrt``/``gpu`` markers: skipped otherwise).
"""
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import trt_core

from cat_deploy.plugins.cat_pool_trt import compile_for

ROOT = Path(__file__).resolve().parents[2]
PTR, I32 = ".u64 .ptr .global .align 1", ".u32"


@pytest.mark.parametrize("cc,dtype,filt", [(80, "float32", "paper"), (87, "float32", "paper"),
                                           (89, "float32", "paper"), (90, "float32", "paper"),
                                           (90, "float16", "2d")])
def test_ptx_entry_and_parameter_order(cc, dtype, filt):
    kernel = compile_for(cc, dtype, filt, 5)
    ptx = kernel.ptx
    assert kernel.name == "cat_pool_plugin_kernel"
    assert re.search(rf"^\.target sm_{cc}a?\b", ptx, re.M)
    assert re.search(r"^\.version 8\.0$", ptx, re.M)  # JIT-able by drivers from CUDA 12.0 on
    entry = re.search(r"\.visible\s+\.entry\s+cat_pool_plugin_kernel\s*\((.*?)\)", ptx, re.S).group(1)
    params = [" ".join(p.split()[1:-1]) for p in entry.split(",")]
    # (inputs x, taps) + (extra scalars C, H, W) + (outputs channel, spatial); Triton's hidden
    # scratch pointers removed.
    assert params == [PTR, PTR, I32, I32, I32, PTR, PTR]
    for i in range(7):  # every declared parameter is read
        assert f"[cat_pool_plugin_kernel_param_{i}]" in ptx
    assert "cat_pool_plugin_kernel_param_7" not in ptx
    assert kernel.num_warps * 32 == 128 and kernel.shared < 48 * 1024


def test_module_imports_without_tensorrt():
    code = ("import sys, importlib.util; import cat_deploy.plugins.cat_pool_trt as m; "
            "assert ('tensorrt' in sys.modules) == (importlib.util.find_spec('tensorrt') is not None); "
            "print(m.PLUGIN_ID)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "cat_deploy::FusedCatPool"


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed")
def test_register_without_tensorrt_says_how_to_install():
    from cat_deploy.plugins.cat_pool_trt import register_plugin

    with pytest.raises(ImportError, match="pip install"):
        register_plugin()


def test_ids_match_the_onnx_node():
    from cat_deploy.core.plugin_ids import GMP_FILTER_CODES, OP_TYPE, PLUGIN_NAMESPACE
    from cat_deploy.plugins.cat_pool_trt import PLUGIN_ID

    assert PLUGIN_ID == f"{PLUGIN_NAMESPACE}::{OP_TYPE}"
    assert GMP_FILTER_CODES == {"none": 0, "paper": 1, "2d": 2}  # the INT attribute's codes (docs/plugin.md)


# ----------------------------------------------------------------------------- NVIDIA's own plugin front end
# The plugin is registered with, and built through, NVIDIA's real ``tensorrt.plugin`` code of
# TensorRT 10.9 and 11.4 (tests/trt_bindings), with only the compiled core stood in for
# (tests/trt_core.py). The node attributes come from an exported ONNX file, exactly as the
# parser reads them.


@pytest.fixture(scope="module")
def plugin_onnx(tmp_path_factory):
    """The FusedCatPool nodes of an exported two-CAT model: (attributes, taps shape) per node."""
    from cat_deploy.export import ShapeProfile, export_onnx
    from test_plugin_export import TwoCat

    path = tmp_path_factory.mktemp("trt") / "two_cat.onnx"
    export_onnx(TwoCat().eval(), path, ShapeProfile.make((48, 40), batch=2, dynamic=True), ["out"])
    model = onnx.load(str(path))
    inits = {i.name: list(i.dims) for i in model.graph.initializer}
    return [({a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}, inits[n.input[1]])
            for n in model.graph.node if n.op_type == "FusedCatPool"]


@pytest.fixture(params=trt_core.FRONT_END_VERSIONS)
def nvidia_trt(request, monkeypatch):
    """NVIDIA's ``tensorrt`` (front end of one version) with cat_deploy::FusedCatPool registered through it."""
    import cat_deploy.plugins.cat_pool_trt as mod

    saved = {k: m for k, m in sys.modules.items() if k == "tensorrt" or k.startswith("tensorrt.")}
    trt = trt_core.load_tensorrt(request.param, sys.modules)
    monkeypatch.setattr(mod, "_registered", False)
    monkeypatch.setenv("CAT_DEPLOY_CC", "80")
    try:
        mod.register_plugin()
        yield trt
    finally:
        trt_core.restore_modules(saved)


def _dims(*ds):
    const = trt_core._ExprBuilder().constant
    return tuple(trt_core.symbol(d) if isinstance(d, str) else const(d) for d in ds)


@pytest.mark.parametrize("node_index,dtype", [(0, "float32"), (1, "float16")])
def test_plugin_builds_through_nvidia_front_end(nvidia_trt, plugin_onnx, node_index, dtype):
    """register/autotune/aot_impl as TensorRT calls them: fields, shapes, formats, launch grid, scalars, PTX."""
    from cat_deploy.plugins.cat_pool_triton import PluginConfig

    trt = nvidia_trt
    attrs, (C, k) = plugin_onnx[node_index]
    dt = trt.float16 if dtype == "float16" else trt.float32
    layer = trt_core.build_plugin_layer(trt, "FusedCatPool", attrs, [(_dims("B", C, "H", "W"), dt), (_dims(C, k), dt)])
    creator = trt.get_plugin_registry().get_creator("FusedCatPool", "1", "cat_deploy")
    assert [f.name for f in creator.field_names] == ["gmp_filter"]  # plugin_namespace and aot stay with the parser
    assert [(f.name, f.type, f.data.tolist()) for f in layer.fields] == [
        ("gmp_filter", trt.PluginFieldType.INT32, [attrs["gmp_filter"]])]
    assert isinstance(layer.plugin, trt.IPluginV3QuickAOTBuild)  # aot=1: the ahead-of-time implementation
    assert layer.output_types == [dt, dt]
    assert (dt, trt.TensorFormat.LINEAR) in [(f.type, f.format) for f in layer.formats]
    kernel = compile_for(80, dtype, ("none", "paper", "2d")[attrs["gmp_filter"]], k)
    for B, H, W in [(2, 37, 130), (1, 7, 121), (8, 5, 3)]:  # W=121: a tile halo of 2r vs r differs
        env = {"B": B, "H": H, "W": W}
        assert [[e.evaluate(env) for e in s] for s in layer.output_shapes] == [[B, 3, C], [B, 3, H, W]]
        grid = [g.expr.evaluate(env) for g in layer.launch.grid]
        assert grid == [PluginConfig().grid(C, H, W, k), B, 1]
        assert [e.evaluate(env) for e in layer.launch.extra_args] == [C, H, W]
    assert [b.expr.get_constant_value() for b in layer.launch.block] == [kernel.num_warps * 32, 1, 1]
    assert layer.launch.shared_mem.expr.get_constant_value() == kernel.shared
    assert layer.launch.extra_arg_dtypes == [trt.PluginArgDataType.INT32] * 3
    assert layer.kernel_name == kernel.name.encode() and layer.ptx == kernel.ptx.encode()
    entry = re.search(r"\.entry\s+\w+\s*\((.*?)\)", layer.ptx.decode(), re.S).group(1)
    assert len(entry.split(",")) == 2 + len(layer.launch.extra_args) + 2  # inputs, scalars, outputs


def test_string_gmp_filter_is_refused_in_one_line(nvidia_trt, plugin_onnx):
    """An ONNX file from before gmp_filter became an INT: the parser passes "paper" plus its NUL as CHAR."""
    trt = nvidia_trt
    attrs, (C, k) = plugin_onnx[0]
    old = {**attrs, "gmp_filter": b"paper"}
    with pytest.raises(ValueError, match="re-export") as e:
        trt_core.build_plugin_layer(trt, "FusedCatPool", old, [(_dims("B", C, "H", "W"), trt.float32),
                                                                (_dims(C, k), trt.float32)])
    assert "\n" not in str(e.value)


def test_filter_name_accepts_what_tensorrt_delivers():
    from cat_deploy.plugins.cat_pool_trt import filter_name

    assert filter_name(np.array([1], np.int32)) == "paper" and filter_name(np.array([0], np.int32)) == "none"
    assert filter_name(2) == "2d"
    assert filter_name(b"paper\x00") == "paper" and filter_name("2d\x00\x00") == "2d"
    for bad in (np.array([3], np.int32), np.array([1, 2], np.int32), "box"):
        with pytest.raises(ValueError, match="0 \\(none\\), 1 \\(paper\\), 2 \\(2d\\)"):
            filter_name(bad)


@pytest.mark.skipif(tuple(int(v) for v in np.__version__.split(".")[:2]) < (2, 4), reason="needs NumPy >= 2.4")
@pytest.mark.parametrize("version", trt_core.FRONT_END_VERSIONS)
def test_why_gmp_filter_is_an_int32_array(version, monkeypatch):
    """Through NVIDIA's front end: a str attribute keeps the parser's NUL; an ``int`` one fails on 10.x.

    TensorRT 10.x converts a declared ``int`` with ``int(field.data)``, a 1-element array, which
    NumPy >= 2.4 refuses; 11.x indexes ``field.data[0]``. So the plugin declares an int32 array.
    """
    from typing import Tuple, Union

    saved = {k: m for k, m in sys.modules.items() if k == "tensorrt" or k.startswith("tensorrt.")}
    try:
        trt = trt_core.load_tensorrt(version, sys.modules)
        import tensorrt.plugin as trtp

        got = {}
        for ann, value in ((int, 1), (str, "paper")):
            ns = f"probe_{ann.__name__}"
            trtp.register(f"{ns}::P")(_probe_desc(trtp, ann))
            trtp.aot_impl(f"{ns}::P")(_probe_aot(trtp, ann, got, Tuple, Union))
            try:
                trt_core.build_plugin_layer(trt, "P", {"f": value, "plugin_namespace": ns, "aot": 1},
                                            [(_dims(4), trt.float32)])
            except TypeError as e:
                got[ann] = e
        assert got[str] == "paper\x00"
        if version.startswith("10."):
            assert isinstance(got[int], TypeError)
        else:
            assert got[int] == 1
    finally:
        trt_core.restore_modules(saved)


def _probe_desc(trtp, ann):
    def desc(x: trtp.TensorDesc, f: ann) -> trtp.TensorDesc:
        return x.like()
    return desc


def _probe_aot(trtp, ann, got, Tuple, Union):
    def aot(x: trtp.TensorDesc, f: ann, outputs: Tuple[trtp.TensorDesc], tactic: int
            ) -> Tuple[Union[str, bytes], Union[str, bytes], trtp.KernelLaunchParams, trtp.SymIntExprs]:
        got[ann] = f
        return "k", "ptx", trtp.KernelLaunchParams(), trtp.SymIntExprs(0)
    return aot


@pytest.mark.tensorrt
@pytest.mark.gpu
def test_engine_with_plugin_matches_pytorch(tmp_path):
    """Build an engine from a graph with FusedCatPool nodes and compare it with PyTorch (gep="stable")."""
    import numpy as np
    import torch

    from cat_deploy.export import ShapeProfile, export_onnx
    from cat_deploy.export.tensorrt import build_engine
    from cat_deploy.layers import set_gep
    from cat_deploy.runtime.tensorrt import TensorRTRunner
    from test_plugin_export import TwoCat

    torch.manual_seed(0)
    model = TwoCat().eval()
    profile = ShapeProfile.make((64, 96), batch=2, dynamic=True)
    onnx_path, engine_path = tmp_path / "m.onnx", tmp_path / "m.engine"
    export_onnx(model, onnx_path, profile, ["out"])
    build_engine(onnx_path, engine_path, profile, register_plugin=True, log=lambda s: None)
    set_gep(model, "stable")
    with TensorRTRunner(engine_path) as runner:
        for shape in [(2, 3, 64, 96), (1, 3, 40, 72)]:
            x = torch.randn(shape)
            with torch.no_grad():
                ref = model(x).numpy()
            out = runner.infer({"images": x.numpy()})["out"]
            np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
