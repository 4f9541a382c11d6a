"""Layers: CAT attention and its pooling operators, plus the attention registry."""
from .cat import CAT, set_gep
from .create_attn import ATTENTION_LAYERS, get_attn
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
