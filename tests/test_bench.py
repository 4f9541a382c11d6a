"""The benchmark's parity gate runs on weights where CAT's pooling reaches the output."""
import pytest
import torch
from cat_weights import assert_cat_reaches_output

from cat_deploy import bench
from cat_deploy.layers import CAT


@pytest.mark.parametrize("model_key,variant,size", [("resnet50", "cat-stable", (64, 64)),
                                                    ("detector", "cat-reference", (96, 320))])
def test_bench_models_exercise_cat(model_key, variant, size):
    model = bench.build(model_key, variant, size)
    gep = {m.gep for m in model.modules() if isinstance(m, CAT)}
    assert gep == {variant.split("-")[1]}
    assert_cat_reaches_output(model, torch.randn(1, 3, *size))
