"""Attention name -> layer class, for side-by-side baselines.

timm's own string registry (``timm.layers.create_attn``) cannot be extended,
so the project keeps this small map. SE, ECA and CBAM are timm's layers.
"""
from __future__ import annotations

from functools import partial
from typing import Optional, Type

import torch.nn as nn
from timm.layers import EcaModule, SEModule
from timm.layers.cbam import CbamModule

from .cat import CAT

ATTENTION_LAYERS: dict[str, Type[nn.Module]] = {
    "cat": CAT,
    "se": SEModule,
    "eca": EcaModule,
    "cbam": CbamModule,
}


def get_attn(name: Optional[str], **kwargs) -> Optional[Type[nn.Module]]:
    """Layer class for ``name`` (``None``/``"none"`` -> ``None``); ``kwargs`` are bound with ``partial``."""
    if name is None or name == "none":
        return None
    try:
        cls = ATTENTION_LAYERS[name]
    except KeyError:
        raise ValueError(f"unknown attention {name!r}; choose one of {sorted(ATTENTION_LAYERS)} or none") from None
    return partial(cls, **kwargs) if kwargs else cls
