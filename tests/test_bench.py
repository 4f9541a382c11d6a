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


def test_fused_variants_are_timed_on_onnx_runtime_with_the_compiled_library_only(tmp_path):
    model = bench.build("resnet50", "cat-plugin-gate", (64, 64))
    cats = [m for m in model.modules() if isinstance(m, CAT)]
    assert cats and all(m.gep == "plugin" and m.fuse_gate for m in cats)
    assert not any(m.fuse_gate for m in bench.build("resnet50", "cat-plugin", (64, 64)).modules() if isinstance(m, CAT))
    library = tmp_path / "libcat_deploy_ort_ops.so"
    for variant in bench.FUSED:
        assert "cat-stable" in bench.not_timed_reason(variant, "torch-cpu", library)
        assert "not built" in bench.not_timed_reason(variant, "ort-cpu", None)
        assert bench.not_timed_reason(variant, "ort-cpu", library) is None
    assert bench.not_timed_reason("cat-stable", "ort-cpu", None) is None
