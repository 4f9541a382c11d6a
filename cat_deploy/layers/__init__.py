"""Layers: CAT attention, its pooling operators and their fused export op, plus the attention registry."""
from .cat import CAT, cat_module_names, set_fuse_gate, set_gep
from .create_attn import ATTENTION_LAYERS, get_attn
from .fused import FusedCatGate, FusedCatPool, cat_gate, fused_cat_gate, fused_cat_pool
from .pooling import (
    cat_pool,
    gaussian_blur,
    gaussian_kernel1d,
    global_avg_pool,
    global_entropy_pool,
    global_max_pool,
    minmax_normalize,
    stable_entropy_pool,
)

__all__ = [
    "CAT",
    "FusedCatGate",
    "FusedCatPool",
    "cat_gate",
    "cat_module_names",
    "fused_cat_gate",
    "fused_cat_pool",
    "set_fuse_gate",
    "set_gep",
    "ATTENTION_LAYERS",
    "get_attn",
    "cat_pool",
    "gaussian_blur",
    "gaussian_kernel1d",
    "global_avg_pool",
    "global_entropy_pool",
    "global_max_pool",
    "minmax_normalize",
    "stable_entropy_pool",
]
