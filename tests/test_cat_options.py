"""Every argument that changes CAT's output is saved in checkpoints and rebuilt by load_model."""
import dataclasses
import inspect

import pytest
import torch
import torch.nn as nn
from timm.layers import make_divisible

from cat_deploy import CATOptions, load_model, save_checkpoint
from cat_deploy.layers import CAT
from cat_deploy.models import create_model, exercise_cat

# fuse_gate: an export switch with the same outputs (set by export.py --fuse-gate), not saved in checkpoints
NOT_OPTIONS = {"self", "channels", "device", "dtype", "kwargs", "fuse_gate"}

# Non-default values of every field, spread over configurations that can hold them together
# (rd_channels overrides rd_ratio and rd_divisor; without the MLP neither matters).
CONFIGS = [
    dict(rd_channels=6, act_layer="silu", gmp_filter="2d", gmp_kernel_size=3, gmp_sigma=0.9,
         entropy_norm="minmax_signed", interior_norm="softmax", fusion="eq1", spatial_kernel_size=5, gep="reference"),
    dict(rd_ratio=0.25, rd_divisor=8, act_layer="gelu", gmp_filter="none", entropy_norm="none"),
    dict(channel_mlp=False, gmp_kernel_size=7),
]


def test_every_cat_argument_is_an_option():
    args = set(inspect.signature(CAT.__init__).parameters) - NOT_OPTIONS
    fields = {f.name for f in dataclasses.fields(CATOptions)}
    assert args <= fields, f"CAT arguments missing from CATOptions (not saved in checkpoints): {sorted(args - fields)}"
    defaults = CATOptions()
    covered = {k for c in CONFIGS for k, v in c.items() if getattr(defaults, k) != v}
    assert covered == fields, f"no non-default value tested for {sorted(fields - covered)}"


@pytest.mark.parametrize("opts", CONFIGS, ids=lambda o: ",".join(o))
def test_round_trip_non_default_options(opts, tmp_path):
    model = exercise_cat(create_model("shufflenetv2", attn="cat", num_classes=5, cat=opts), 0, (64, 64)).eval()
    path = save_checkpoint(model, tmp_path / "m.pth")
    loaded = load_model(path)
    assert loaded.config.cat == CATOptions(**opts)
    mods = [m for m in loaded.modules() if isinstance(m, CAT)]
    assert mods
    for m in mods:
        if opts.get("channel_mlp", True):
            want = opts.get("rd_channels") or make_divisible(m.channels * opts.get("rd_ratio", 1 / 16),
                                                             opts.get("rd_divisor", 1), round_limit=0.0)
            assert m.mlp[0].out_features == want
            assert type(m.mlp[1]).__name__.lower() == {"silu": "silu", "gelu": "gelu"}.get(opts.get("act_layer"), "relu")
        else:
            assert isinstance(m.mlp, nn.Identity)
        assert m.gmp_taps.shape[1] == opts.get("gmp_kernel_size", 5)
        assert m.conv.kernel_size[0] == opts.get("spatial_kernel_size", 7)
        assert (m.gmp_filter, m.entropy_norm, m.fusion, m.interior_norm, m.gep) == tuple(
            opts.get(k, getattr(CATOptions(), k)) for k in ("gmp_filter", "entropy_norm", "fusion", "interior_norm", "gep"))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        y = model(x)
        assert torch.isfinite(y).all() and torch.equal(y, loaded(x))


def test_checkpoint_without_new_fields_loads(tmp_path):
    """Checkpoints written before rd_channels / rd_divisor / act_layer were saved load with the defaults."""
    model = create_model("shufflenetv2", attn="cat", num_classes=5)
    path = save_checkpoint(model, tmp_path / "old.pth")
    ck = torch.load(path, weights_only=True)
    for k in ("rd_channels", "rd_divisor", "act_layer"):
        del ck["config"]["cat"][k]
    torch.save(ck, path)
    assert load_model(path).config.cat == CATOptions()


def test_unknown_activation_is_one_line():
    with pytest.raises(ValueError, match="act_layer 'swishy'"):
        create_model("shufflenetv2", attn="cat", num_classes=5, cat=dict(act_layer="swishy"))
