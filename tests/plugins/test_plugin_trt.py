"""The TensorRT side: PTX of the single-launch kernel per compute capability, and the plugin itself.

PTX is produced by triton.compile without a GPU, so its entry point and parameter order are
checked here for every target the plugin supports. Building an engine needs TensorRT and a
GPU (``tensorrt``/``gpu`` markers: skipped otherwise).
"""
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PTR, I32 = ".u64 .ptr .global .align 1", ".u32"


@pytest.mark.parametrize("cc,dtype,filt", [(80, "float32", "paper"), (87, "float32", "paper"),
                                           (89, "float32", "paper"), (90, "float32", "paper"),
                                           (90, "float16", "2d")])
def test_ptx_entry_and_parameter_order(cc, dtype, filt):
    from cat_deploy.plugins.cat_pool_trt import compile_for

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
    from cat_deploy.core.plugin_ids import OP_TYPE, PLUGIN_NAMESPACE
    from cat_deploy.plugins.cat_pool_trt import PLUGIN_ID

    assert PLUGIN_ID == f"{PLUGIN_NAMESPACE}::{OP_TYPE}"


class _Expr:
    """Stand-in for tensorrt.plugin.ShapeExpr holding a concrete value."""

    def __init__(self, v):
        self.v = v.v if isinstance(v, _Expr) else v

    def _op(self, other, f):
        return _Expr(f(self.v, _Expr(other).v))

    __add__ = lambda self, o: self._op(o, lambda a, b: a + b)  # noqa: E731
    __sub__ = lambda self, o: self._op(o, lambda a, b: a - b)  # noqa: E731
    __mul__ = lambda self, o: self._op(o, lambda a, b: a * b)  # noqa: E731
    __floordiv__ = lambda self, o: self._op(o, lambda a, b: a // b)  # noqa: E731
    is_constant = True

    def constant_value(self):
        return self.v


def _fake_tensorrt():
    """Minimal tensorrt / tensorrt.plugin with the documented names the plugin module uses."""
    import types

    trt, trtp = types.ModuleType("tensorrt"), types.ModuleType("tensorrt.plugin")
    trt.float32, trt.float16, trt.plugin = "FP32", "FP16", trtp
    trtp.defs = {}

    def decorator(kind):
        return lambda plugin_id: (lambda fn: trtp.defs.setdefault((kind, plugin_id), fn))

    trtp.register, trtp.autotune, trtp.aot_impl = decorator("register"), decorator("autotune"), decorator("aot")

    class TensorDesc:
        def __init__(self, shape, dtype):
            self.shape_expr, self.dtype = [_Expr(s) for s in shape], dtype

    class KernelLaunchParams:
        pass

    class SymIntExprs(list):
        @classmethod
        def from_tuple(cls, items):
            return cls(items)

    trtp.TensorDesc, trtp.KernelLaunchParams, trtp.SymExprs = TensorDesc, KernelLaunchParams, list
    trtp.SymIntExprs = SymIntExprs
    trtp.from_shape_expr = lambda shape, dtype: TensorDesc([_Expr(s).v for s in shape], dtype)
    trtp.cdiv = lambda a, b: _Expr(-(-_Expr(a).v // _Expr(b).v))
    trtp.SymInt32 = lambda e: ("i32", _Expr(e).v)
    trtp.AutoTuneCombination = lambda types_, layouts="LINEAR": (types_, layouts)
    return trt, trtp


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="real TensorRT installed")
def test_registration_against_a_stand_in_api(monkeypatch):
    """register/autotune/aot_impl bodies run: shapes, formats, launch grid and scalars are consistent."""
    import cat_deploy.plugins.cat_pool_trt as mod
    from cat_deploy.plugins.cat_pool_triton import PluginConfig

    trt, trtp = _fake_tensorrt()
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setitem(sys.modules, "tensorrt.plugin", trtp)
    monkeypatch.setattr(mod, "_registered", False)
    monkeypatch.setenv("CAT_DEPLOY_CC", "80")
    mod.register_plugin()
    pid = "cat_deploy::FusedCatPool"
    x, taps = trtp.TensorDesc((2, 48, 37, 130), trt.float32), trtp.TensorDesc((48, 5), trt.float32)
    channel, spatial = trtp.defs[("register", pid)](x, taps, "paper")
    assert [e.v for e in channel.shape_expr] == [2, 3, 48] and [e.v for e in spatial.shape_expr] == [2, 3, 37, 130]
    assert channel.dtype == spatial.dtype == trt.float32
    assert trtp.defs[("autotune", pid)](x, taps, (channel, spatial))[0][0].count("FP32|FP16") == 4
    name, ptx, launch, extra = trtp.defs[("aot", pid)](x, taps, "paper", (channel, spatial), 0)
    assert name == b"cat_pool_plugin_kernel" and b".target sm_80" in ptx
    assert launch.grid_x.v == PluginConfig().grid(48, 37, 130, 5) and launch.grid_y.v == 2
    assert launch.block_x == 128 and launch.shared_mem >= 0
    assert list(extra) == [("i32", 48), ("i32", 37), ("i32", 130)]


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
