import pytest
import timm
import torch

from cat_deploy.layers import CAT


def randomize_factors(m: CAT, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in (m.channel_factors, m.spatial_factors, m.exterior_factors):
            p.copy_(torch.randn(p.shape, generator=g))
    return m


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_dtype_finite(dtype):
    m = randomize_factors(CAT(32, dtype=dtype))
    x = torch.randn(2, 32, 9, 13, dtype=dtype) * 5
    y = m(x)
    assert y.shape == x.shape and y.dtype == dtype and torch.isfinite(y).all()


def test_initial_colla_factors():
    m = CAT(64)
    assert torch.equal(m.channel_factors, torch.zeros(3))
    assert torch.equal(m.spatial_factors, torch.zeros(3))
    assert torch.equal(m.exterior_factors, torch.zeros(2))
    assert torch.allclose(m.exterior_factors.softmax(0), torch.tensor([0.5, 0.5]))
    # At init C'_A = 0 and the spatial input to the 7x7 conv is 0: the gate is 0.5*0.5 + 0.5*0.5.
    x = torch.randn(2, 64, 8, 8)
    assert torch.allclose(m(x), 0.5 * x, atol=1e-6)


def test_every_parameter_gets_gradient():
    m = CAT(32)
    x = torch.randn(2, 32, 8, 8)
    m(x).square().sum().backward()
    # From the zero init only the colla-factors move; one optimiser step later every parameter learns.
    for p in (m.channel_factors, m.spatial_factors):
        assert p.grad is not None and p.grad.abs().sum() > 0
    torch.optim.SGD(m.parameters(), lr=0.1).step()
    m.zero_grad()
    m(x).square().sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


SWITCHES = [
    ("gmp_filter", "2d"),
    ("gmp_filter", "none"),
    ("gmp_sigma", 2.0),
    ("gmp_kernel_size", 3),
    ("entropy_norm", "minmax_signed"),
    ("entropy_norm", "none"),
    ("channel_mlp", False),
    ("interior_norm", "softmax"),
    ("fusion", "eq1"),
    ("spatial_kernel_size", 3),
]


@pytest.mark.parametrize("name,value", SWITCHES)
def test_each_switch_changes_output(name, value):
    # 128 channels: an 8-unit MLP bottleneck, so ReLU cannot zero a whole statistic by chance.
    x = torch.randn(2, 128, 11, 10) * 2
    a = randomize_factors(CAT(128))
    b = randomize_factors(CAT(128, **{name: value}))
    if name == "spatial_kernel_size":
        b.conv.weight.data.copy_(a.conv.weight.data[:, :, 2:5, 2:5])
    else:
        b.load_state_dict(a.state_dict(), strict=False)
    assert not torch.allclose(a(x), b(x), atol=1e-5), f"{name}={value} did not change the output"


def test_gep_formulations_agree():
    x = torch.randn(2, 32, 11, 10) * 4
    a = randomize_factors(CAT(32, gep="reference"))
    b = CAT(32, gep="stable")
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(a(x), b(x), rtol=1e-5, atol=1e-5)


def test_bad_option_message():
    with pytest.raises(ValueError, match="fusion must be one of"):
        CAT(8, fusion="concat")


def test_timm_resnet_contract():
    model = timm.create_model("resnet18", block_args=dict(attn_layer=CAT), num_classes=5)
    assert sum(isinstance(m, CAT) for m in model.modules()) == 8
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 5)
