"""The fused pooling kernels against cat_pool in float64, on the CPU under TRITON_INTERPRET=1.

The interpreter must be selected before triton is imported, so the kernels run in one
subprocess (``interp_cases.py``) and these tests read its JSON. On a CUDA machine the
``gpu`` tests also run the compiled kernels.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from plugin_cases import CASES  # noqa: E402  (the table only; does not import triton)

FP32_TOL = 1e-5
FP16_TOL = 2e-3  # FP16 output rounding (2^-11) plus FP16 input of the float64 reference
STATS = ("ch_avg", "ch_max", "ch_ent", "sp_avg", "sp_max", "sp_ent")


@pytest.fixture(scope="module")
def results():
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    proc = subprocess.run([sys.executable, str(HERE / "interp_cases.py")], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("plan", ["fused", "single"])
@pytest.mark.parametrize("case", list(CASES))
def test_matches_float64_reference(results, case, plan):
    shape, filt, dtype, *_ = CASES[case]
    res = results[case][plan]
    B, C, H, W = shape
    assert res["shapes"] == [[B, 3, C], [B, 3, H, W]]
    assert res["dtype"] == str(dtype)
    assert res["finite"]
    tol = FP32_TOL if dtype == torch.float32 else FP16_TOL
    worst = max(zip(res["errors"], STATS))
    assert worst[0] <= tol, f"{case}/{plan}: {worst[1]} relative error {worst[0]:.2e} > {tol:g} ({filt})"


def test_filter_changes_gmp_only(results):
    """Sanity of the case table: with 'none' the GMP error is exactly zero (a max of the input values)."""
    errs = results["none"]["fused"]["errors"]
    assert errs[1] == 0.0 and errs[4] == 0.0


def test_one_read_kernels_compile_for_sm90():
    """The interpreter does not compile: check that the GPU path of cat_pool_fused lowers to PTX."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from cat_deploy.plugins.cat_pool_triton import _merge_kernel, _tiles_kernel

    kernels = [
        (_tiles_kernel, {"x_ptr": "*fp16", "taps_ptr": "*fp32", "C": "i32", "H": "i32", "W": "i32", "CG": "i32",
                         "ch_part_ptr": "*fp32", "sp_ptr": "*fp32", "sp_stride_b": "i32"},
         {"FILTER": 2, "K": 5, "BLOCK_C": 8, "TH": 4, "TW": 64, "SPATIAL_FINAL": False}),
        (_merge_kernel, {"ch_part_ptr": "*fp32", "sp_part_ptr": "*fp32", "C": "i32", "HW": "i32", "T": "i32",
                         "G": "i32", "ch_ptr": "*fp16", "sp_ptr": "*fp16"},
         {"BLOCK": 128, "BLOCK_N": 8, "MERGE_SPATIAL": True}),
    ]
    for fn, sig, const in kernels:
        src = ASTSource(fn, {**sig, **{name: "constexpr" for name in const}}, const)
        compiled = triton.compile(src, target=GPUTarget("cuda", 90, 32))
        assert f".entry {fn.__name__}" in compiled.asm["ptx"]


@pytest.mark.gpu
@pytest.mark.parametrize("filt", ["paper", "2d", "none"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_cuda_kernels(filt, dtype):
    from cat_deploy.layers.pooling import cat_pool, gaussian_kernel1d
    from cat_deploy.plugins.cat_pool_triton import cat_pool_fused, cat_pool_single

    x = (torch.randn(2, 96, 37, 45, device="cuda") * 3).to(dtype)
    taps = gaussian_kernel1d(5).float().cuda().expand(96, -1).contiguous()
    ref = cat_pool(x.double(), taps.double(), filt, "stable")
    tol = FP32_TOL if dtype == torch.float32 else FP16_TOL
    for fn in (cat_pool_fused, cat_pool_single):
        for out, r in zip(fn(x, taps, filt), ref):
            err = ((out.double() - r).abs().amax((0, *range(2, r.ndim))) / r.abs().amax((0, *range(2, r.ndim))))
            assert err.max() <= tol, (fn.__name__, err.tolist())
