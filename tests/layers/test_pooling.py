import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cat_deploy.layers import (
    cat_pool,
    gaussian_blur,
    gaussian_kernel1d,
    global_avg_pool,
    global_entropy_pool,
    global_max_pool,
    minmax_normalize,
    stable_entropy_pool,
)


def entropy_f64(x: torch.Tensor, dims) -> np.ndarray:
    """Direct float64 formula: -sum p log p, p = e^x / sum e^x, terms with p == 0 count 0."""
    a = x.double().numpy()
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    a = a - a.max(axis=dims, keepdims=True)
    p = np.exp(a) / np.exp(a).sum(axis=dims, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(p), 0.0)
    return terms.sum(axis=dims)


SHAPES_DIMS = [((2, 8, 5, 7), (2, 3)), ((2, 8, 5, 7), 1), ((3, 4, 6), -1), ((2, 3, 4, 5), (1, 3))]


@pytest.mark.parametrize("shape,dims", SHAPES_DIMS)
@pytest.mark.parametrize("scale,offset", [(1.0, 0.0), (10.0, 0.0), (3.0, 1e4), (5.0, -5e3)])
def test_entropy_matches_float64(shape, dims, scale, offset):
    x = torch.randn(shape) * scale + offset
    want = entropy_f64(x, dims)
    for fn in (global_entropy_pool, stable_entropy_pool):
        got = fn(x, dims).numpy()
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5, err_msg=fn.__name__)


def test_entropy_keepdim_and_bounds():
    x = torch.randn(2, 6, 4, 4)
    h = global_entropy_pool(x, (2, 3), keepdim=True)
    assert h.shape == (2, 6, 1, 1)
    assert (h >= 0).all() and (h <= math.log(16) + 1e-6).all()
    assert torch.allclose(global_entropy_pool(torch.zeros(1, 3, 4, 4), (2, 3)), torch.full((1, 3), math.log(16)))


def test_large_gaps_reference_nan_stable_exact():
    """Logit gaps > ~103 underflow p to 0 in FP32: the paper's form gives 0*log 0 = NaN, the stable form stays exact."""
    x = torch.randn(2, 4, 8, 8) * 300
    assert torch.isnan(global_entropy_pool(x, (2, 3))).any()
    np.testing.assert_allclose(stable_entropy_pool(x, (2, 3)).numpy(), entropy_f64(x, (2, 3)), rtol=1e-4, atol=1e-5)


def test_stable_fp16_input_finite_and_accurate():
    x = (torch.randn(2, 16, 64, 64) * 8).half()
    h = stable_entropy_pool(x, (2, 3))
    assert h.dtype == torch.float16 and torch.isfinite(h).all()
    np.testing.assert_allclose(h.float().numpy(), entropy_f64(x.float(), (2, 3)), rtol=2e-3, atol=2e-3)
    assert torch.isnan(global_entropy_pool(x, (2, 3))).any()  # p underflows in FP16 at this spread


@pytest.mark.parametrize("dims", [(2, 3), 1, (1, 2, 3)])
def test_avg_max_pool(dims):
    x = torch.randn(2, 5, 3, 7) * 100 + 50
    a = x.double().numpy()
    d = (dims,) if isinstance(dims, int) else dims
    np.testing.assert_allclose(global_avg_pool(x, dims).double().numpy(), a.mean(axis=d), rtol=1e-5)
    np.testing.assert_array_equal(global_max_pool(x, dims).numpy(), x.numpy().max(axis=d))
    assert global_max_pool(x, dims, keepdim=True).ndim == 4


def test_gaussian_kernel():
    g = gaussian_kernel1d(5)
    assert torch.isclose(g.sum(), torch.tensor(1.0, dtype=g.dtype))
    assert torch.equal(g, g.flip(0)) and g.argmax() == 2
    # sigma default 1.1 for k=5 (OpenCV's rule)
    r = torch.arange(5, dtype=torch.float64) - 2
    want = torch.exp(-(r**2) / (2 * 1.1**2))
    assert torch.allclose(g, want / want.sum())
    with pytest.raises(ValueError):
        gaussian_kernel1d(4)


def test_separable_blur_equals_2d_conv_with_edge_padding():
    x = torch.randn(2, 3, 9, 11, dtype=torch.float64)
    g = gaussian_kernel1d(5)
    k2 = torch.outer(g, g).view(1, 1, 5, 5).expand(3, 1, 5, 5)
    want = F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), k2, groups=3)
    assert torch.allclose(gaussian_blur(x, g, "hw"), want, atol=1e-12)
    kv = g.view(1, 1, 5, 1).expand(3, 1, 5, 1)
    assert torch.allclose(gaussian_blur(x, g, "h"), F.conv2d(F.pad(x, (0, 0, 2, 2), mode="replicate"), kv, groups=3))


def test_cat_pool_definition():
    x = torch.randn(2, 6, 7, 9, dtype=torch.float64) * 3
    g = gaussian_kernel1d(5)
    ch, sp = cat_pool(x, g, "paper", "reference")
    assert ch.shape == (2, 3, 6) and sp.shape == (2, 3, 7, 9)
    assert torch.allclose(ch[:, 0], x.mean((2, 3)))
    assert torch.allclose(ch[:, 1], gaussian_blur(x, g, "h").amax((2, 3)))
    assert torch.allclose(ch[:, 2], global_entropy_pool(x, (2, 3)))
    assert torch.allclose(sp[:, 0], x.mean(1))
    assert torch.allclose(sp[:, 1], gaussian_blur(x, g, "hw").amax(1))
    assert torch.allclose(sp[:, 2], global_entropy_pool(x, 1))
    ch2, sp2 = cat_pool(x, g, "2d", "stable")
    assert torch.allclose(ch2[:, 1], gaussian_blur(x, g, "hw").amax((2, 3)))
    assert torch.allclose(ch2[:, 2], ch[:, 2]) and torch.allclose(sp2[:, 2], sp[:, 2])
    ch3, _ = cat_pool(x, g, "none", "stable")
    assert torch.allclose(ch3[:, 1], x.amax((2, 3)))


def test_minmax_normalize():
    x = torch.tensor([[1.0, 3.0, 2.0], [5.0, 5.5, 4.0]])
    y = minmax_normalize(x, 1, eps=0)
    assert torch.allclose(y, torch.tensor([[0.0, 1.0, 0.5], [2 / 3, 1.0, 0.0]]))
    assert torch.allclose(minmax_normalize(x, 1, signed=True, eps=0), 2 * y - 1)
    assert torch.isfinite(minmax_normalize(torch.ones(2, 4), 1)).all()  # constant input: no 0/0
